"""Turn one scraped document (HTML or plain text) into its paragraphs, in document order.

Paragraphs are the unit the rest of the pipeline compares, so this module decides where one
ends: at block elements and ``<br>`` in HTML, at blank lines in text. Whitespace is collapsed
and control characters removed, nothing else: the strings are quoted back in reports.

Lexbor builds the tree, but its tree builder is quadratic in the depth of open elements (and
worse for misnested formatting elements): 100,000 nested ``<div>`` take minutes, 40 KB of
crafted ``<b>``/``<i>`` take seconds. So the markup is rewritten first, by one regular
expression and C-level joins: comments, raw-text elements (script, style...) and every inline or
unknown tag go, the tags left lose their attributes, and when the document could nest deeper
than ``_MAX_DEPTH`` a linear pass turns the excess into plain breaks. With inline tags gone,
each text node the parser builds is a paragraph piece, so Lexbor's C code merges and joins
them and no Python walks the tree.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from selectolax.lexbor import LexborHTMLParser

from dedup.errors import InputError

__all__ = ["extract_paragraphs", "looks_like_html", "paragraphs_from_html", "paragraphs_from_text"]

FORMATS = ("auto", "html", "text")

_MAX_DEPTH = 128
"""Open elements the tree builder may hold; the deepest of 274 real pages needs 48."""

_BLOCK = frozenset(
    "p div li dt dd h1 h2 h3 h4 h5 h6 blockquote pre td th tr table ul ol dl article section main"
    " figure figcaption address center details summary hr br".split()
)
_RAW_TEXT = "script style noscript iframe textarea title noembed noframes xmp".split()
"""Dropped with their content while rewriting: their content is text, not markup."""
_DROP = frozenset(
    "template svg math object canvas select datalist button head nav aside footer header form".split()
)
"""Dropped from the tree, so that the parser decides where they end (a ``</div>`` may)."""
_TABLE_PARTS = frozenset("tbody thead tfoot caption".split())
_UNCOUNTED = frozenset("p li dt dd td th tr hr br head".split()) | _TABLE_PARTS
"""Elements that close their own kind, so cannot pile up on the parser's stack by themselves."""
_COUNTED = (_BLOCK | _DROP) - _UNCOUNTED
_OTHER_KEPT = (_BLOCK | _DROP | _TABLE_PARTS) - _COUNTED


def _any_case(names: Iterable[str]) -> str:
    """Match tag names in any case without re.IGNORECASE, which defeats the regex prefix scan."""
    by_initial: dict[str, list[str]] = {}
    for name in sorted(names, key=lambda name: (-len(name), name)):
        by_initial.setdefault(name[0], []).append(name[1:])
    return "(?:" + "|".join(
        f"[{c}{c.upper()}](?:{'|'.join(''.join(f'[{x}{x.upper()}]' for x in rest) for rest in tails)})"
        for c, tails in sorted(by_initial.items())
    ) + ")"


_END = r"(?=[\t\n\f\r />])"
_ATTRS = r"""(?:[^>"']+|"[^"]*"|'[^']*'|["'])*"""


def _raw_text(name: str) -> str:
    """Match a raw-text element whole, scanning its content without trying a token per char."""
    tag = _any_case([name])
    end = rf"</{tag}{_END}"
    return rf"{tag}{_END}{_ATTRS}(?:>[^<]*(?:<(?!{end[1:]})[^<]*)*(?:{end}{_ATTRS}(?:>|\Z)|\Z)|\Z)"


_KEPT_NAME = _any_case(_COUNTED | _OTHER_KEPT)
_TOKEN = re.compile(
    rf"<(?:(?<=(<))(/?{_KEPT_NAME})(?=[\t\n\f\r /]){_ATTRS}(>|\Z)"
    rf"|{'|'.join(_raw_text(name) for name in _RAW_TEXT)}"
    rf"|/?(?!{_KEPT_NAME}>)[A-Za-z]{_ATTRS}(?:>|\Z)"
    r"|!--(?:-?>|.*?(?:--!?>|\Z))|[!?][^>]*(?:>|\Z)|/(?![A-Za-z])[^>]*(?:>|\Z))",
    re.DOTALL,
)
"""Markup to rewrite: its groups spell a kept tag without attributes, anything else goes.
Kept tags that have no attributes already do not match, and cost ``split`` nothing."""
_COUNTED_START = re.compile(rf"<{_any_case(_COUNTED)}>")
_KEPT_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)>")
_PRE = re.compile(r"<[pP][rR][eE]>(.*?)(?:</[pP][rR][eE]>|\Z)", re.DOTALL)
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff]")
"""Controls that are not whitespace (whitespace collapses to a space instead), lone surrogates."""
_SEPARATOR = "\x01"
"""Between the parser's text nodes; the input has lost its own copies with the other controls."""
_DECODED_CONTROLS = re.compile("[\x00\x02-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
"""The controls character references can still produce, all but the separator."""
_SPLIT = re.compile(f"{_SEPARATOR}[\\s{_SEPARATOR}]*")
_ALNUM = re.compile(r"[^\W_]")
_DROP_SELECTOR = ", ".join(sorted(_DROP))
_HTML_HINT = re.compile(
    r"<!doctype\s+html|</?(?:p|div|br|html|body|li|ul|ol|h[1-6]|table|tr|td|article|section|main"
    r"|span|a|blockquote|pre|header|footer|strong|em|b|i|img)\b[^<>]*>",
    re.IGNORECASE,
)


def looks_like_html(text: str) -> bool:
    """Tell markup from prose that merely mentions ``a < b``, for the ``auto`` format."""
    return _HTML_HINT.search(text) is not None


def paragraphs_from_html(html: str) -> list[str]:
    """Split a web page where a browser would start a new block."""
    return _html_paragraphs(html, None)


def paragraphs_from_text(text: str) -> list[str]:
    """Split plain text the way people write it: paragraphs between blank lines."""
    return _text_paragraphs(text, None)


def extract_paragraphs(
    text: str, fmt: str = "auto", max_paragraphs: int | None = None
) -> list[str]:
    """Give callers one entry point that also refuses documents with too many paragraphs."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "html" or (fmt == "auto" and looks_like_html(text)):
        return _html_paragraphs(text, max_paragraphs)
    return _text_paragraphs(text, max_paragraphs)


def _text_paragraphs(text: str, limit: int | None) -> list[str]:
    """Split on blank lines once line ends and controls can no longer hide one."""
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _collect(_BLANK_LINES.split(text), limit)


def _html_paragraphs(html: str, limit: int | None) -> list[str]:
    """Parse the rewritten markup, drop what is never shown, cut the text between nodes."""
    html = _rewrite(html)
    tree = LexborHTMLParser(html)
    lowered = html.lower()
    if any(f"<{name}>" in lowered for name in _DROP):
        for node in tree.css(_DROP_SELECTOR):
            node.decompose()
    root = tree.root
    if root is None:
        return []
    root.merge_text_nodes()
    text = _DECODED_CONTROLS.sub("", root.text(separator=_SEPARATOR))
    return _collect(_SPLIT.split(text), limit)


def _rewrite(html: str) -> str:
    """Reduce markup to the tags that decide paragraphs, in a form Lexbor parses in linear time."""
    for char in "\x00" + _SEPARATOR:
        if char in html:
            html = html.replace(char, "")
    html = "".join(filter(None, _TOKEN.split(html)))
    if next(itertools.islice(_COUNTED_START.finditer(html), _MAX_DEPTH, None), None):
        html = _flatten(html)
    return _PRE.sub(_split_pre, html) if "<pre>" in html.lower() else html


def _split_pre(match: re.Match[str]) -> str:
    """Keep the blank lines of preformatted text as the paragraph breaks they are."""
    return "<pre>" + _BLANK_LINES.sub("<br>", match.group(1)) + "</pre>"


def _flatten(html: str) -> str:
    """Cap the stack the tree builder scans per tag, so deep nesting costs linear time."""
    # A model of that stack pushes counted elements and pops one only when an end tag matches
    # its top: it may overestimate the real depth, never underestimate it by more than the
    # uncounted elements (p, li, td...) each counted one can hold. Beyond the cap, blocks become
    # breaks, other kept elements vanish, dropped ones are cut out here with their content.
    parts = _KEPT_TAG.split(html)
    out = [parts[0]]
    stack: list[str] = []
    skip_name, skip_depth = "", 0
    for i in range(1, len(parts), 3):
        closing, name, text = parts[i], parts[i + 1].lower(), parts[i + 2]
        if skip_depth:
            if name == skip_name:
                skip_depth += -1 if closing else 1
            if skip_depth:
                continue
            tag = ""
        elif not closing and name in _COUNTED:
            stack.append(name)
            if len(stack) <= _MAX_DEPTH:
                tag = f"<{name}>"
            elif name in _DROP:
                stack.pop()
                skip_name, skip_depth = name, 1
                continue
            else:
                tag = "<br>" if name in _BLOCK else ""
        elif closing and stack and stack[-1] == name:
            kept = len(stack) <= _MAX_DEPTH
            stack.pop()
            tag = f"</{name}>" if kept else "<br>" if name in _BLOCK else ""
        else:
            tag = f"<{closing}{name}>"
        out += (tag, text)
    return "".join(out)


def _collect(pieces: Iterable[str], limit: int | None) -> list[str]:
    """Keep pieces with something to read, and stop as soon as there are too many."""
    paragraphs: list[str] = []
    for piece in pieces:
        paragraph = " ".join(piece.split())
        if paragraph and _ALNUM.search(paragraph):
            if limit is not None and len(paragraphs) >= limit:
                raise InputError(f"document has more than {limit} paragraphs")
            paragraphs.append(paragraph)
    return paragraphs
