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

import functools
import re
from collections.abc import Iterable, Iterator

from selectolax.lexbor import LexborHTMLParser, LexborNode

from dedup.errors import InputError
from dedup.pipeline import content, kernel
from dedup.pipeline.document import FORMATS

__all__ = ["extract_paragraphs", "looks_like_html", "paragraphs_from_html", "paragraphs_from_text"]

_MAX_DEPTH = 128
"""Open elements the tree builder may hold; the deepest of 274 real pages needs 48."""

_BLOCK = frozenset(
    {"p", "div", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"}
    | {"td", "th", "tr", "table", "ul", "ol", "dl", "article", "section", "main", "figure"}
    | {"figcaption", "address", "center", "details", "summary", "hr", "br"}
)
_RAW_TEXT = ("script", "style", "noscript", "iframe", "textarea", "title", "noembed", "noframes",
             "xmp", "select")  # fmt: skip
"""Dropped with their content while rewriting: text, not markup (a select's is its options)."""
_UNSEEN = frozenset(
    {"template", "svg", "math", "object", "canvas", "datalist", "option", "optgroup", "button"}
    | {"head"}
)
"""Elements whose text is no paragraph of the page (a drawing's labels, a button's)."""
_TEMPLATE = frozenset({"nav", "aside", "footer", "header", "form"})
"""Elements that hold the page's template, not its content; kept when nothing else has text."""
_DROP = _UNSEEN | _TEMPLATE
"""Dropped from the tree, so that the parser decides where they end (a ``</div>`` may)."""
_WRAPPER = 0.5
"""Share of a document's text from which a ``<form>`` is the page's wrapper, not a form:
ASP.NET WebForms put the whole body in one. Forms do not nest, so measuring them is linear."""
_TABLE_PARTS = frozenset({"tbody", "thead", "tfoot", "caption"})
_UNCOUNTED = frozenset({"p", "li", "td", "th", "tr", "hr", "br", "head", "option"}) | _TABLE_PARTS
"""Elements that cannot pile up on the parser's stack without a counted one between them (a
``<li>`` closes an open ``li`` unless a ``dd`` or other special element is in the way)."""
_COUNTED = (_BLOCK | _DROP) - _UNCOUNTED
_OTHER_KEPT = (_BLOCK | _DROP | _TABLE_PARTS) - _COUNTED


def _any_case(names: Iterable[str]) -> str:
    """Match tag names in any case without re.IGNORECASE, which defeats the regex prefix scan."""

    def chars(text: str) -> str:
        return "".join(f"[{c}{c.upper()}]" for c in text)

    tails: dict[str, list[str]] = {}
    for name in sorted(names, key=len, reverse=True):
        tails.setdefault(name[0], []).append(chars(name[1:]))
    return "(?:" + "|".join(f"{chars(c)}(?:{'|'.join(t)})" for c, t in sorted(tails.items())) + ")"


_END = r"(?=[\t\n\f\r />])"
_ATTRS = r"""(?:[^>"'=]++|=[\t\n\f\r ]*+(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z))|["'=])*+"""
"""Up to the tag's ``>``: as in the tokenizer, only a quote right after ``=`` opens a value, and
an open one runs to the end. Possessive, so a tag cut off by the end fails once, not 2**n times."""


def _raw_text(name: str) -> str:
    """Match a raw-text element whole, scanning its content without trying a token per char."""
    tag = _any_case([name])
    end = rf"</{tag}{_END}"
    content = rf"[^<]*+(?:<(?!{end[1:]})[^<]*+)*+"
    return rf"{tag}{_END}{_ATTRS}(?:>{content}(?:{end}{_ATTRS}(?:>|\Z)|\Z)|\Z)"


def _between(pattern: re.Pattern[str]) -> slice:
    """The texts around the matches in the list ``pattern.split`` gives, which holds the text
    before each match, then each of its groups, and the text after the last match."""
    return slice(0, None, pattern.groups + 1)


def _group(pattern: re.Pattern[str], name: str) -> slice:
    """A named group's value (None where it did not take part) for each match, in the list
    ``pattern.split`` gives: one slice of the whole list, so no Python runs per match."""
    return slice(pattern.groupindex[name], None, pattern.groups + 1)


_KEPT_NAME = _any_case(_COUNTED | _OTHER_KEPT)
_TOKEN = re.compile(
    rf"<(?=[A-Za-z/!?])(?!/?{_any_case(_OTHER_KEPT)}>|/{_any_case(_COUNTED)}>)"
    rf"(?:(?<=(?P<open><))(?:(?P<counted>{_any_case(_COUNTED)})|(?P<kept>/?{_KEPT_NAME}))"
    rf"{_END}(?P<attributes>{_ATTRS})(?P<close>>)"
    rf"|{'|'.join(_raw_text(name) for name in _RAW_TEXT)}"
    rf"|(?P<link>/?[aA]){_END}(?P<link_attributes>{_ATTRS})(?:>|\Z)"
    rf"|/?[A-Za-z]{_ATTRS}(?:>|\Z)"
    r"|!--(?:-?>|.*?(?:--!?>|\Z))|[!?][^>]*+(?:>|\Z)|/(?![A-Za-z])[^>]*+(?:>|\Z))",
    re.DOTALL,
)
"""Markup to rewrite. Its groups spell what is left of a match: a kept tag without its
attributes (``open``, the name of a counted element's start tag in ``counted`` or of any other
kept tag in ``kept``, the ``attributes``, which are replaced by a hint, ``close``) or a link's
tag (``link``, replaced by a mark when ``link_attributes`` make it a link); the rest goes.
Other kept tags without attributes fail at once, so most of ``split``'s time is scanning."""
_COUNTED_NAMES = _group(_TOKEN, "counted")
_ATTRIBUTES = _group(_TOKEN, "attributes")
_LINK_TAGS = _group(_TOKEN, "link")
_LINK_ATTRIBUTES = _group(_TOKEN, "link_attributes")
_HREF = re.compile(r"(?:^|[\s/\"'])[hH][rR][eE][fF][\t\n\f\r ]*=")
_NAME = re.compile(r"(?:^|[\s/\"'])[nN][aA][mM][eE][\t\n\f\r ]*=")
"""An ``<a name=...>`` without href is a named anchor, a target and no link, often written
``<a name="top"/>``, which HTML leaves open: its "link text" would run to the page's end.
(An ``<a>`` without href but no name is clickable all the same: a button, a script's link.)"""
_HINT = "(?: [a-z])?"
"""What the rewrite may write after a kept tag's name: a hint (:class:`~.content.Hint`)."""
_GLUED = re.compile(rf"<(?=[A-Za-z/!?])(?!/?{_KEPT_NAME}{_HINT}>)")
"""A ``<`` of text that met a letter once the markup between them was removed (needs ``<<``)."""
_COUNTED_TAG = re.compile(rf"(?P<tag><(?P<closing>/?)(?P<name>{_any_case(_COUNTED)}){_HINT}>)")
"""A counted element's tag as the rewrite leaves it: its name and a hint at most."""
_FLATTEN_TEXTS = _between(_COUNTED_TAG)
_FLATTEN_TAGS = _group(_COUNTED_TAG, "tag")
_FLATTEN_CLOSINGS = _group(_COUNTED_TAG, "closing")
_FLATTEN_NAMES = _group(_COUNTED_TAG, "name")
_PRE = re.compile(r"<[pP][rR][eE]>(.*?)(?:</[pP][rR][eE]>|\Z)", re.DOTALL)
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
_BLANK_MARKUP_LINES = re.compile(r"\n(?:(?:[^\S\n]|&(?:nbsp|#160|#x[aA]0);?)*\n)+")
"""Blank lines of undecoded text, where a line holding only ``&nbsp;`` looks blank too."""
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff]")
"""Controls but tab, line breaks and form feed (which collapse as whitespace), lone surrogates."""
_SEPARATOR = "\x01"
"""Between the parser's text nodes; removed from the input first, so only ``&#1;`` adds one."""
_RESERVED = "\x00" + _SEPARATOR + content.LINK_START + content.LINK_END
"""Characters the rewrite and the parse give a meaning to, removed from the input so that a
page cannot write them raw; NUL, which parsers drop or replace depending on where it is, too."""
_DECODED_CONTROL_CHARS = "".join(
    map(chr, [0, *range(0x02, 0x09), *range(0x0E, 0x20), *range(0x7F, 0x85), *range(0x86, 0xA0)])
)
"""Controls left in the parsed text, written raw or as references; all but the separator."""
_DECODED_CONTROLS = re.compile(f"[{re.escape(_DECODED_CONTROL_CHARS)}]")
_ALNUM = re.compile(r"[^\W_]")
_FORM_TAG = re.compile(f"<{_any_case(['form'])}>")
_TAG = re.compile(r"<[^<>]*>")
_PARSE_MARKS = (*(f"<{name}>" for name in sorted(_DROP)), "<pre>")
"""Start tags as the rewrite leaves them, in any case (:func:`_holds`): of the elements to
drop, then of ``pre``. No character but ASCII letters lowercases to a lone letter of these
names (the Kelvin sign gives a "k")."""
_PLAIN_STARTS = tuple(sorted(_BLOCK - {"table", "tr", "td", "th", "pre"}))
"""Start tags after which the parser's text is in order and apart: no table (whose text the
parser may move) and no ``pre`` (whose first line break it drops)."""
_PLAIN_ENDS = ("br", "p")
"""End tags that always make an element: a ``</p>`` with no paragraph open makes an empty one."""
_REWRITE_MARKS = (*_RESERVED, "<<")
"""What the rewrite looks for before it starts: the reserved characters, then ``<<``."""
_HTML_HINT = re.compile(
    r"<!doctype\s+html|</?(?:p|div|br|html|body|li|ul|ol|h[1-6]|table|tr|td|article|section|main"
    r"|span|a|blockquote|pre|header|footer|strong|em|b|i|img)\b[^<>]*>",
    re.IGNORECASE,
)


def looks_like_html(text: str) -> bool:
    """Tell markup from prose that merely mentions ``a < b``, for the ``auto`` format."""
    return _HTML_HINT.search(text) is not None


def paragraphs_from_html(html: str, *, main_content: bool = True) -> list[str]:
    """Split a web page where a browser would start a new block.

    A whole page is cut down to its main content first (:mod:`dedup.pipeline.content`) unless
    ``main_content`` is false; a fragment keeps every paragraph. A document whose content
    has no text gives the text of the whole page, template included.
    """
    return _html_paragraphs(html, None, main_content)


def paragraphs_from_text(text: str) -> list[str]:
    """Split plain text the way people write it: paragraphs between blank lines."""
    return _text_paragraphs(text, None)


def extract_paragraphs(
    text: str, fmt: str = "auto", max_paragraphs: int | None = None, *, main_content: bool = True
) -> list[str]:
    """Give callers one entry point that also refuses documents with too many paragraphs."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "html" or (fmt == "auto" and looks_like_html(text)):
        return _html_paragraphs(text, max_paragraphs, main_content)
    return _text_paragraphs(text, max_paragraphs)


def _text_paragraphs(text: str, limit: int | None) -> list[str]:
    """Split on blank lines once line ends and controls can no longer hide one."""
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    pieces = (" ".join(piece.split()) for piece in _pieces(_BLANK_LINES, text))
    return _keep_readable(pieces, limit)


def _html_paragraphs(html: str, limit: int | None, main_content: bool = True) -> list[str]:
    """The paragraphs of the page's main content, or of the whole page when that leaves none.

    Selection may keep nothing of a page that has text, and the template elements (menus,
    headers, footers, forms) may hold all of it; the page's whole text is still the page, and
    better compared than refused. So when the main content has no paragraph the whole body
    gives them, and when it has none either, the template elements too: only a document
    without any text gives no paragraph.
    """
    page = main_content and content.is_page(html)
    html = _rewrite(html, hints=page)
    paragraphs = _parse(html, limit, page, _DROP)
    if paragraphs or not _ALNUM.search(_TAG.sub("", html)):
        return paragraphs
    if page:
        paragraphs = _parse(html, limit, False, _DROP)
    return paragraphs or _parse(html, limit, False, _UNSEEN)


def _parse(html: str, limit: int | None, select: bool, drop: frozenset[str]) -> list[str]:
    """Parse the rewritten markup, drop the ``drop`` elements (but a form wrapping the page),
    keep the main content if ``select``, cut the text between nodes."""
    small = select and html.count("<") <= content.MAX_ELEMENTS
    # plain markup holds no dropped element and no pre: it is cut before they are looked for
    if not small and (found := _plain_pieces(html, limit)) is not None:
        return found
    *drops, pre = _holds(html, _PARSE_MARKS)
    dropped = any(drops)
    if pre:
        html = _PRE.sub(_split_pre, html)
    tree = LexborHTMLParser(html)
    root = tree.root
    if root is None:
        return []
    if dropped:
        forms = "form" in drop and _FORM_TAG.search(html) is not None
        wrappers = _wrappers(tree, root) if forms else set()
        for node in tree.css(", ".join(sorted(drop))):
            if node.mem_id not in wrappers:
                node.decompose()
    root.merge_text_nodes()
    if small:
        content.select_main(root)
    return _readable_pieces(root.text(separator=_SEPARATOR), limit)


def _readable_pieces(text: str, limit: int | None) -> list[str]:
    """The paragraphs of the parser's text: its pieces between separators, controls dropped,
    whitespace collapsed, those with something to read."""
    compiled = kernel.compiled
    if compiled is not None:  # the steps below in one pass
        paragraphs = compiled.readable_pieces(text, _SEPARATOR, _DECODED_CONTROL_CHARS)
        if limit is not None and len(paragraphs) > limit:
            raise _too_many(limit)
        return paragraphs
    # Whitespace is collapsed in one pass over the whole text rather than piece by piece: the
    # separator is not whitespace, so the pieces come out collapsed as the text path makes
    # them, with empty ones where separators were only whitespace apart.
    pieces = " ".join(_DECODED_CONTROLS.sub("", text).split()).split(_SEPARATOR)
    return _keep_readable(map(str.strip, pieces), limit)


def _plain_pieces(html: str, limit: int | None) -> list[str] | None:
    """The paragraphs of rewritten markup made only of text, start tags of
    :data:`_PLAIN_STARTS`, ``</p>``, ``</br>`` and the references ``html.escape`` writes, cut
    by the kernel in one pass without a tree: each such tag makes an element (``</p>`` an
    empty one where no paragraph is open), so the tree's text nodes are the text between
    the tags, in order. None for other markup (an end tag the parser may ignore, so that the
    text around it joins, a table that moves text, any other reference), or without the
    kernel."""
    compiled = kernel.compiled
    if compiled is None:
        return None
    paragraphs = compiled.markup_pieces(
        html, _PLAIN_STARTS, _PLAIN_ENDS, _SEPARATOR, _DECODED_CONTROL_CHARS
    )
    if paragraphs is not None and limit is not None and len(paragraphs) > limit:
        raise _too_many(limit)
    return paragraphs


def _holds(text: str, needles: tuple[str, ...]) -> list[bool]:
    """Which of the ``needles`` the text holds, ASCII letters in either case: in one pass of
    the kernel. Without it, needles without letters are looked for one by one (``in``, the
    fastest search), those with letters (tags, ``<name>``, which cannot overlap) by one
    pattern matching any of them."""
    compiled = kernel.compiled
    if compiled is not None:
        found = compiled.holds(text, needles)
        return [(found >> k) & 1 == 1 for k in range(len(needles))]
    pattern = _tag_pattern(needles)
    tags = {match.group().lower() for match in pattern.finditer(text)} if pattern else set()
    return [needle in tags if _letters(needle) else needle in text for needle in needles]


def _letters(needle: str) -> bool:
    return any(c.isalpha() for c in needle)


@functools.cache
def _tag_pattern(needles: tuple[str, ...]) -> re.Pattern[str] | None:
    """A pattern matching any of the needles that hold letters, in either case (as
    :func:`_any_case` spells them); None when none does."""
    tags = [
        "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in needle)
        for needle in needles
        if _letters(needle)
    ]
    return re.compile("|".join(tags)) if tags else None


def _wrappers(tree: LexborHTMLParser, root: LexborNode) -> set[int]:
    """The forms that hold most of the document's text, or most of its prose: the page's
    wrapper, not a form. Prose counts apart because a page's menus and footers can outweigh
    its text in characters of short lines (a page of classified ads in a form)."""
    total, prose = _text_size(root)
    wrappers = set()
    for form in tree.css("form"):
        text, form_prose = _text_size(form)
        if text > _WRAPPER * total or form_prose > _WRAPPER * prose:
            wrappers.add(form.mem_id)
    return wrappers


def _text_size(node: LexborNode) -> tuple[int, int]:
    """Characters of a node's text, whitespace left out, and of its prose: its text pieces of
    :data:`~dedup.pipeline.content.MIN_PIECE` characters or more."""
    text = node.text(separator=_SEPARATOR)
    size = len(text) - sum(text.count(c) for c in " \n\t\r\f" + _SEPARATOR)
    prose = 0
    for piece in text.split(_SEPARATOR):
        length = len(piece.strip())
        if length >= content.MIN_PIECE:
            prose += length
    return size, prose


def _rewrite(html: str, hints: bool = False) -> str:
    """Reduce markup to the tags that decide paragraphs, in a form Lexbor parses in linear time.

    With ``hints``, containers keep their :class:`~dedup.pipeline.content.Hint` as their only
    attribute, for the main-content selection; links become
    :data:`~dedup.pipeline.content.LINK_MARKS` either way.
    """
    *reserved, glued = _holds(html, _REWRITE_MARKS)
    if any(reserved):
        for char in _RESERVED:
            html = html.replace(char, "")
        glued = "<<" in html
    parts = _TOKEN.split(html)
    counted = parts[_COUNTED_NAMES]
    parts[_ATTRIBUTES] = (
        [
            (
                content.written_hint(attrs)
                if name and name.lower() in content.HINTED
                else content.hidden_hint(attrs)
            )
            if attrs
            else None
            for name, attrs in zip(counted, parts[_ATTRIBUTES], strict=True)
        ]
        if hints
        else [None] * len(counted)
    )
    marks = content.LINK_MARKS
    parts[_LINK_TAGS] = [
        (marks[tag] if "ame" not in attrs and "AME" not in attrs else _link_mark(tag, attrs))
        if tag
        else None
        for tag, attrs in zip(parts[_LINK_TAGS], parts[_LINK_ATTRIBUTES], strict=True)
    ]
    parts[_LINK_ATTRIBUTES] = [None] * len(counted)
    html = "".join(filter(None, parts))
    if glued:
        html = _GLUED.sub("&lt;", html)
    if len(counted) - counted.count(None) > _MAX_DEPTH:
        html = _flatten(html)
    return html


def _link_mark(tag: str, attrs: str) -> str | None:
    """The mark for a link's start or end tag; none for the start of a named anchor (asked
    only of tags whose attributes hold "ame" or "AME": the rest are links at no cost)."""
    attrs = attrs[: content.MAX_ATTRIBUTES]
    if tag[0] != "/" and _NAME.search(attrs) and not _HREF.search(attrs):
        return None
    return content.LINK_MARKS[tag]


def _split_pre(match: re.Match[str]) -> str:
    """Keep the blank lines of preformatted text as the paragraph breaks they are."""
    return "<pre>" + _BLANK_MARKUP_LINES.sub("<br>", match.group(1)) + "</pre>"


def _flatten(html: str) -> str:
    """Cap the stack the tree builder scans per tag, so deep nesting costs linear time."""
    # A model of that stack pushes counted elements and pops one only when an end tag matches
    # its top: it may overestimate the real depth, never underestimate it by more than the
    # uncounted elements (p, li, td...) each counted one can hold. Beyond the cap, blocks become
    # breaks, other counted elements vanish, dropped ones are cut out with their content.
    parts = _COUNTED_TAG.split(html)
    texts, tags = parts[_FLATTEN_TEXTS], parts[_FLATTEN_TAGS]
    closings, names = parts[_FLATTEN_CLOSINGS], parts[_FLATTEN_NAMES]
    stack: list[str] = []
    skip_name, skip_depth = "", 0
    for i, (closing, name) in enumerate(zip(closings, map(str.lower, names), strict=True)):
        if skip_depth:
            if name == skip_name:
                skip_depth += -1 if closing else 1
            tags[i] = ""
            if skip_depth:
                texts[i + 1] = ""
        elif not closing:
            stack.append(name)
            if len(stack) > _MAX_DEPTH and name in _DROP:
                stack.pop()
                skip_name, skip_depth = name, 1
                tags[i] = texts[i + 1] = ""
            elif len(stack) > _MAX_DEPTH:
                tags[i] = "<br>" if name in _BLOCK else ""
        elif stack and stack[-1] == name:
            if len(stack) > _MAX_DEPTH:
                tags[i] = "<br>" if name in _BLOCK else ""
            stack.pop()
    out = [""] * (len(texts) + len(tags))
    out[::2], out[1::2] = texts, tags
    return "".join(out)


def _pieces(separator: re.Pattern[str], text: str) -> Iterator[str]:
    """Split lazily, so that refusing a document early skips the rest of it."""
    start = 0
    for match in separator.finditer(text):
        yield text[start : match.start()]
        start = match.end()
    yield text[start:]


def _keep_readable(pieces: Iterable[str], limit: int | None) -> list[str]:
    """Keep the pieces (whitespace already collapsed) with something to read, stopping as soon
    as there are too many."""
    paragraphs: list[str] = []
    for paragraph in pieces:
        if paragraph and _ALNUM.search(paragraph):
            if limit is not None and len(paragraphs) >= limit:
                raise _too_many(limit)
            paragraphs.append(paragraph)
    return paragraphs


def _too_many(limit: int) -> InputError:
    return InputError(f"document has more than {limit} paragraphs")
