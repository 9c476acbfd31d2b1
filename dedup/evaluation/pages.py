"""Where a captured page holds its article, so that cases can change the body inside its template.

A case that puts another body in a page (the same article under another site's template) or
pastes a page's body twice (a template bug) needs the element that holds the article: the
deepest one around nine in ten of the page's paragraphs that match its body. Pages whose body
cannot be found that way are left out of those cases, and counted.
"""

from __future__ import annotations

from collections import Counter

from selectolax.lexbor import LexborHTMLParser, LexborNode

from dedup.pipeline import text

_PARAGRAPHS = "p, li, blockquote, pre, dd, h2, h3, h4, h5, h6"
_MIN_WORDS = 5
_FOUND = 0.5
"""Share of the body's paragraphs that must be found in the page."""
_AROUND = 0.9
"""Share of the found paragraphs the chosen element must hold."""


def _key(paragraph: str) -> str:
    return " ".join(text.words(paragraph))


def _locate(tree: LexborHTMLParser, paragraphs: list[str]) -> LexborNode | None:
    wanted = {_key(p) for p in paragraphs if len(text.words(p)) >= _MIN_WORDS}
    if not wanted:
        return None
    found: dict[str, LexborNode] = {}
    for node in tree.css(_PARAGRAPHS):
        key = _key(node.text(deep=True))
        if key in wanted and key not in found:
            found[key] = node
    if len(found) < _FOUND * len(wanted):
        return None
    counts: Counter[int] = Counter()
    nodes: dict[int, LexborNode] = {}
    depth: dict[int, int] = {}
    for node in found.values():
        chain = []
        parent = node.parent
        while parent is not None:
            chain.append(parent)
            parent = parent.parent
        for level, ancestor in enumerate(reversed(chain)):
            counts[ancestor.mem_id] += 1
            nodes[ancestor.mem_id] = ancestor
            depth[ancestor.mem_id] = level
    around = [m for m, n in counts.items() if n >= _AROUND * len(found)]
    if not around:
        return None
    best = nodes[max(around, key=lambda m: depth[m])]
    if best.tag in ("html", "body", "-document"):
        return None
    return best


def with_body(page: str, paragraphs: list[str], body_html: str) -> str | None:
    """The page with its article replaced by ``body_html``; None when it cannot be found."""
    tree = LexborHTMLParser(page)
    container = _locate(tree, paragraphs)
    if container is None:
        return None
    container.inner_html = body_html
    return str(tree.html)


def doubled(page: str, paragraphs: list[str]) -> str | None:
    """The page with the element holding its article repeated inside itself (a template bug)."""
    tree = LexborHTMLParser(page)
    container = _locate(tree, paragraphs)
    if container is None:
        return None
    inner = container.inner_html or ""
    container.inner_html = inner + "\n" + inner
    return str(tree.html)
