"""Keep the article of a whole web page and drop its template: menus, teasers, comments, banners.

A captured page holds far more template text than article text (on the 274 pages of the
evaluation corpus, two paragraphs of three), and template text is what pages of one site
share: left in, it makes unrelated articles look alike and an article unlike its own body.
So whole pages (a document with ``<html>``, ``<body>`` or a doctype) are cut down to their
main content before paragraphs are taken; fragments, what scrapers send once they have
extracted a body, keep every paragraph.

The choice works on the tree :mod:`dedup.pipeline.extract` builds, in one linear pass over it:

- Text pieces of 25 characters or more score for the containers above them, more for commas
  and length, less for the share of their characters inside links (the Readability scoring).
- Containers named like template (``related``, ``cookie-banner``, ``caption``...) or hidden
  (``hidden``, ``display: none``, ``class="hidden"``; a hidden paragraph or list item too)
  are pruned, unless they hold most of the page's prose (a wrapper with an unlucky name);
  comment threads (``comments``, ``disqus``, and a comment's own body, ``comment-content``)
  and galleries (``gallery``, ``slideshow``) are pruned even then, as a short post under a
  long thread, or above fifty captioned pictures, is still the article; weaker names
  (``share``, ``menu``, ``byline``...) prune only link-heavy or short text. What is said
  about a picture (``caption``, ``credit``) is kept when it is a sentence the page says once
  ("Officials have ordered the cull of 20,000 birds"): most gold sets keep it with the
  article. Its credits and labels go ("Photo: AP", a name, the same credit line on every
  page of a site), and so does a caption the page shows twice (in a lightbox, or the
  article's first sentence again), which would read as a repeat inside the article; a block
  so named that holds several paragraphs is text all the same.
- Blocks of many short labels, most of them numbers, with hardly a sentence are the text of
  a chart (axis ticks, values, years; often the same chart again at another size) and are
  pruned; tables and lists are data a reader reads, and their cells never count as labels.
- From the best container the choice grows to its parent as long as what the parent adds is
  mostly prose with few links: articles split over many sibling blocks are kept whole, while
  a teaser list (a link per item) or a comment thread (pruned) stops the growth.

The rewrite of :mod:`dedup.pipeline.extract` strips every attribute and every inline tag, so two
things this module needs would be lost; the rewrite passes them on in the markup instead: link
text is framed by :data:`LINK_START`/:data:`LINK_END` characters (removed with the other
controls afterwards), and container start tags carry their :class:`Hint` (what their ``class``,
``id`` or visibility gave) as their only attribute's name.
"""

from __future__ import annotations

import re
from enum import StrEnum

from selectolax.lexbor import LexborNode

from dedup.pipeline import text as words_of

__all__ = [
    "HINTED", "LINK_END", "LINK_MARKS", "LINK_START", "MAX_ELEMENTS", "Hint", "hidden_hint", "hint",
    "is_page",
    "select_main", "written_hint",
]  # fmt: skip

LINK_START = "\x02"
"""Put by the rewrite where ``<a ...>`` was: the link tags themselves must go (an inline tag
would split a paragraph into text nodes), yet the share of link text decides what is template.
A control character, because the parser keeps it as text, whitespace collapsing leaves it alone,
and the rewrite removes it from the input first (a page can still write ``&#2;``, which only
moves a score) and the extractor from the text last."""
LINK_END = "\x03"
"""Put by the rewrite where ``</a>`` was; as :data:`LINK_START`."""
LINK_MARKS = {"a": LINK_START, "A": LINK_START, "/a": LINK_END, "/A": LINK_END}
"""What the rewrite puts in place of ``<a ...>`` and ``</a>``, by the tag as written."""


class Hint(StrEnum):
    """What a container's ``class``, ``id`` or visibility say it holds.

    The rewrite drops every attribute, so the hint travels as the only attribute's name of the
    rewritten start tag (``<div t>``), read back from the parsed node without a second look at
    the attributes. It is one lower-case ASCII letter because the parser lower-cases attribute
    names and the rewrite's own patterns admit exactly ``<name>`` or ``<name x>``.
    """

    TEMPLATE = "t"
    """Named like template (``related``, ``cookie``...)."""
    CAPTION = "k"
    """Named like what is said about a picture (``caption``, ``credit``): template unless it
    says a sentence the page says nowhere else, or holds several paragraphs."""
    DISCUSSION = "c"
    """Named like a comment thread: template, even when it is long."""
    GALLERY = "g"
    """Named like a gallery, a slideshow: template, even when it is long."""
    MAYBE_TEMPLATE = "m"
    """Named weakly like template (``share``, ``menu``...): template if short or mostly links."""
    ARTICLE = "y"
    """Named like an article (``content``, ``story``, ``itemprop=articleBody``)."""
    HIDDEN = "h"
    """Hidden (``hidden``, ``aria-hidden``, ``display: none``): never read."""


HINTED = frozenset(
    {"div", "section", "article", "main", "ul", "ol", "dl", "table", "figure", "blockquote"}
)
"""Container start tags whose attributes are read for a hint."""
MAX_ATTRIBUTES = 2_000
"""Characters of a tag's attributes read for its hint."""
MAX_NAMES = 200
"""Characters of its class and id values read for a hint (real ones are a few words)."""
MAX_ELEMENTS = 100_000
"""Beyond this many tags the page is kept whole: no real page comes near it (the largest of
the corpus has 7,400 nodes), hostile ones may, and their cost must stay the parser's."""

_PAGE = re.compile(r"<(?:[hH][tT][mM][lL]|[bB][oO][dD][yY])[\t\n\f\r />]|<![dD][oO][cC][tT]")
_SP = r"[\t\n\f\r ]*"
_CLASS_ID = re.compile(
    rf"""(?:^|[\s/"'])(class|id){_SP}={_SP}(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))"""
)
_HIDDEN = re.compile(
    rf"""(?:^|[\s/"'])(?:hidden(?=[\s/=]|$)|aria-hidden{_SP}={_SP}["']?true"""
    rf"""|style{_SP}={_SP}["']?[^"'>]{{0,200}}?display{_SP}:{_SP}none"""
    rf"""|class{_SP}={_SP}["']?(?:[^"'<>=]{{0,200}}?\s)?hidden(?=[\s"'/>]|$))"""
)
_ARTICLE_BODY = re.compile(rf"""itemprop{_SP}={_SP}["']?articlebody\b""")
_DISCUSSION = re.compile(r"comment|disqus|repl(?:y|ies)|respond")
"""Names of comment threads: template, and never the wrapper of an article however long."""
_CAPTION = re.compile(r"caption|credit")
"""Names of what is said about a picture: its caption, its credit."""
_TEMPLATE = re.compile(
    r"cookie|consent|gdpr|newsletter|subscri|sign-?up"
    r"|related|recommend|outbrain|taboola|sponsor|advert|promo|sidebar|trending|popular"
    r"|more-?(?:stories|news|posts|articles)|read-?more|also-?read"
)
"""Names of containers that hold template whatever their text looks like."""
_GALLERY = re.compile(r"gallery|slideshow|carousel")
"""Names of a row of pictures with their captions: template, even when it is long."""
_MAYBE_TEMPLATE = re.compile(
    r"share|sharing|social|menu|\bnav|footer|masthead|breadcrumb|pagination|pager|\btags?\b"
    r"|byline|author|banner|widget|modal|popup|overlay|\bads?\b|-ad-|\bmeta\b"
)
"""Names of containers that hold template when their text is short or mostly links."""
_ARTICLE = re.compile(r"article|\bbody\b|content|entry|\bmain\b|\bpost\b|story|\btext\b|blog")
"""Names of containers that hold an article (all these patterns read lower-cased text)."""

_WEIGHT: dict[str, float] = {
    Hint.TEMPLATE: 0.3, Hint.DISCUSSION: 0.3, Hint.GALLERY: 0.3, Hint.CAPTION: 0.3,
    Hint.MAYBE_TEMPLATE: 0.6, Hint.ARTICLE: 1.5, Hint.HIDDEN: 0.0,
}  # fmt: skip
"""Factor on a container's score for its hint."""
_WRITTEN = {hint: " " + hint for hint in Hint}
"""A hint as the rewrite writes it after a tag's name: its only attribute."""

_PARAGRAPH = frozenset(
    {"p", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "th"}
    | {"figcaption", "address", "summary", "tr", "br"}
)
"""Elements whose text belongs to the container around them."""
_INITIAL = {"div": 5, "article": 8, "main": 5, "section": 3, "td": 3, "blockquote": 3}
_INITIAL |= dict.fromkeys(("ol", "ul", "dl", "li", "dd", "dt"), -3)
_PIECE_WEIGHT = {"li": 0.5, "dd": 0.5, "dt": 0.5, "th": 0.5}
_PIECE_WEIGHT |= dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), 0.0)
"""List items weigh less than prose; headings do not count."""
_PAGE_LEVEL = frozenset({"html", "body", "head", "-document"})
_OUTSIDE_BODY = _PAGE_LEVEL - {"body"}
_IDEOGRAPHS = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_DIGIT = re.compile(r"\d")
_CELLS = frozenset({"td", "th", "li", "dt", "dd"})
"""Where short numbers are data a reader reads (a table, a list), not a chart's labels."""
_COMMA = re.compile(r"[,\u060c\uff0c\u3001]")
_MARKS = re.compile(f"([{LINK_START}{LINK_END}])")
_NOTICE = re.compile(r"\W*(?:©|\(c\)|copyright\W*(?:©|\(c\)|(?:19|20)[0-9][0-9]))")
"""A copyright notice's start ("Copyright 2006", "© 2006", "(c) 2006"); a sentence about
copyright does not start so."""
MAX_NOTICE = 300
"""Characters from which a piece is no copyright notice."""

_UNMARKED = 0
"""Neither kept nor above a kept block: a block goes where its parent goes, so it is removed
below a block on the path and stays below a kept one."""
_ON_PATH = 1
"""Above a kept block: stays for the kept blocks below it; its own text and other children go."""
_KEPT = 2
"""A block of the main content: stays with everything below it but pruned blocks."""

MIN_PIECE = 25
"""Characters from which a piece of text counts as prose."""
GROW_PROSE = 0.6
"""Share of prose in what a parent adds for the choice to grow to it."""
GROW_LINKS = 0.75
"""Links per added prose piece above which a parent's addition is a teaser list."""
WRAPPER = 0.5
"""Share of the page's prose from which a container named like template is a wrapper."""
GRAPHIC_LABELS = 8
"""Text pieces from which a block without prose may be a chart's labels."""
GRAPHIC_CHARS = 12
"""Characters per piece under which such a block is labels."""
CAPTION_PIECES = 3
"""Prose pieces from which a block named like a caption is text: a caption is a sentence or
two, and a picture's caption is no place for paragraphs."""
CAPTION_WORDS = 6
"""Words from which a prose piece of a caption is a sentence about the picture; shorter, it
is a credit ("Photo by A. Photographer/Agency") or a label (a name, "Image copyright")."""
MAYBE_PROSE = 0.2
"""Share of the page's prose from which a container with a weak template name is kept."""
UNSURE = 0.3
"""Share of the page's prose under which the chosen block is one part of spread content."""
SPREAD = 2 / 3
"""Share of the page's prose the block taken instead of an unsure choice holds."""
SPREAD_LINKS = 0.35
"""Share of link text from which that block is a page of teasers, and the choice stays."""
SPREAD_ANCHORS = 3
"""Links per prose piece it adds to the choice from which that block is teasers too."""


def is_page(html: str) -> bool:
    """Whether a document is a whole page (its template included) rather than a fragment."""
    return _PAGE.search(html) is not None


def written_hint(attrs: str) -> str | None:
    """What the rewrite writes in place of a container's attributes: its hint, or nothing."""
    found = hint(attrs)
    return None if found is None else _WRITTEN[found]


def hidden_hint(attrs: str) -> str | None:
    """What the rewrite writes in place of another element's attributes: hidden, or nothing.
    A paragraph or list item the page hides (``class="hidden"``, ``display: none``) is no
    more read than a hidden container."""
    lowered = attrs[:MAX_ATTRIBUTES].lower()
    if ("hidden" in lowered or "none" in lowered) and _HIDDEN.search(lowered):
        return _WRITTEN[Hint.HIDDEN]
    return None


def hint(attrs: str) -> Hint | None:
    """The hint a container's attributes give: hidden, template, article, or nothing.

    Ids made of three or more words are headings' anchors ("sharing-with-a-team"), not
    names of page parts, and are ignored. Only the first ``MAX_ATTRIBUTES`` characters are
    read: real class and style attributes are short, crafted ones must cost nothing.
    """
    lowered = attrs[:MAX_ATTRIBUTES].lower()  # cheap tests first: most tags have none of these
    if ("hidden" in lowered or "none" in lowered) and _HIDDEN.search(lowered):
        return Hint.HIDDEN
    if "articlebody" in lowered and _ARTICLE_BODY.search(lowered):
        return Hint.ARTICLE
    if "class" not in lowered and "id" not in lowered:
        return None
    names = []
    for match in _CLASS_ID.finditer(lowered):
        value = match.group(2) or match.group(3) or match.group(4) or ""
        if match.group(1) == "id" and value.count("-") + value.count("_") >= 3:
            continue
        names.append(value)
    text = " ".join(names)[:MAX_NAMES]
    discussion = _DISCUSSION.search(text) is not None
    if _CAPTION.search(text):
        return Hint.CAPTION
    if not text or _ARTICLE.search(text):
        if discussion and any(
            _DISCUSSION.search(name) and _ARTICLE.search(name) for name in text.split()
        ):
            return Hint.DISCUSSION  # one name for both: a comment's body ("comment-content")
        template = _TEMPLATE.search(text) or _GALLERY.search(text)
        return Hint.ARTICLE if text and not discussion and not template else None
    if discussion:
        return Hint.DISCUSSION
    if _TEMPLATE.search(text):
        return Hint.TEMPLATE
    if _GALLERY.search(text):
        return Hint.GALLERY
    if _MAYBE_TEMPLATE.search(text):
        return Hint.MAYBE_TEMPLATE
    return None


class _Block:
    """An element of the tree with the sums of the text below it."""

    __slots__ = (
        "anchors", "caption", "cell", "chars", "container", "count", "good", "goods", "hint",
        "inside", "links", "node", "numbers", "parent", "pruned", "pruned_chars", "pruned_good",
        "repeated", "said", "score", "scored", "state", "tag",
    )  # fmt: skip

    def __init__(self, node: LexborNode, tag: str, parent: _Block | None, hint: str) -> None:
        self.node = node
        self.tag = tag
        self.parent = parent
        self.hint = hint
        """A :class:`Hint`'s letter, or empty."""
        self.cell: bool = tag in _CELLS or (parent is not None and parent.cell)
        """Inside a table cell or a list item."""
        self.chars = self.links = self.good = self.goods = self.anchors = 0
        self.count = self.numbers = 0
        """Text pieces outside cells, and those of them with a digit."""
        self.pruned_chars = self.pruned_good = 0
        self.pruned = self.scored = self.inside = False
        self.score = 0.0
        self.state = _UNMARKED
        """:data:`_UNMARKED`, :data:`_ON_PATH` or :data:`_KEPT`, once the main content is chosen."""
        self.container: _Block | None = None
        self.caption: _Block | None = None
        """The innermost block named like a caption that holds this one, or itself."""
        self.said = 0
        """Sentences below it (a caption's: :data:`CAPTION_WORDS` words or more)."""
        self.repeated = False
        """A caption whose sentence the page says again elsewhere."""


class _Piece:
    """A text node: its block, its text and how much of it is link text."""

    __slots__ = ("block", "chars", "credit", "links", "node", "notice", "text")

    def __init__(self, block: _Block, node: LexborNode, text: str, chars: int, links: int):
        self.block, self.node, self.text, self.chars, self.links = block, node, text, chars, links
        self.notice = chars >= MIN_PIECE and _notice(text)
        """A copyright notice: no prose to score the blocks above it, though kept with them."""
        self.credit = False
        """A caption's piece that is no sentence (a credit, a label): removed even where its
        caption is kept."""


def _blocks_and_pieces(root: LexborNode) -> tuple[list[_Block], list[_Piece]]:
    """The elements in document order and the text pieces with something to read."""
    blocks: dict[int, _Block] = {}
    order: list[_Block] = []
    pieces: list[_Piece] = []
    in_link = False
    for node in root.traverse(include_text=True):
        parent_node = node.parent
        parent = blocks.get(parent_node.mem_id) if parent_node is not None else None
        if not node.is_text_node:
            attrs = node.attributes  # the rewrite left a Hint as the only attribute name, or none
            block = _Block(node, node.tag or "", parent, next(iter(attrs), "") if attrs else "")
            blocks[node.mem_id] = block
            order.append(block)
            continue
        text = node.text_content or ""
        if parent is None:
            continue
        if LINK_START not in text and LINK_END not in text:
            chars = _length(text)
            links = chars if in_link else 0
        else:
            chars = links = 0
            for part in _MARKS.split(text):
                if part in (LINK_START, LINK_END):
                    in_link = part == LINK_START
                    parent.anchors += in_link
                else:
                    length = _length(part)
                    chars += length
                    links += length if in_link else 0
        if chars:
            pieces.append(_Piece(parent, node, text, chars, links))
    return order, pieces


def _notice(text: str) -> bool:
    """Whether a piece is a copyright notice: the same line under every page of a site (only
    the year changes), which must not make its footer the page's best block where the page
    has little other text. Notices are short: a long piece starting with one is a credit
    run into a paragraph."""
    return len(text) <= MAX_NOTICE and _NOTICE.match(text.lower()) is not None


def _length(text: str) -> int:
    """Characters of a piece of text, an ideograph or syllable counting as three letters (it
    carries about as much as a short word), so that Chinese, Japanese and Korean prose weighs
    what prose in other scripts does."""
    stripped = text.strip()
    if stripped.isascii():
        return len(stripped)
    return len(stripped) + 2 * len(_IDEOGRAPHS.findall(stripped))


def _sum_up(order: list[_Block], pieces: list[_Piece]) -> int:
    """Add each piece's counts to its block and each block's to its parent; prune blocks.

    A block named like template is kept when it holds most of the page's prose: it wraps the
    article (``layout-with-sidebar``); a comment thread never does, however long it is next to
    a short post. A chart's labels go whatever the block's name. Returns the characters of
    prose in the whole page.
    """
    for piece in pieces:
        block = piece.block
        block.chars += piece.chars
        block.links += piece.links
        if not block.cell:
            block.count += 1
            block.numbers += _DIGIT.search(piece.text) is not None
        if piece.chars >= MIN_PIECE and piece.links < 0.5 * piece.chars and not piece.notice:
            block.good += piece.chars
            block.goods += 1
    for block in reversed(order):
        parent = block.parent
        if parent is not None:
            parent.chars += block.chars
            parent.links += block.links
            parent.good += block.good
            parent.goods += block.goods
            parent.count += block.count
            parent.numbers += block.numbers
            parent.anchors += block.anchors
    total = sum(block.good for block in order if block.parent is None)
    _read_captions(order, pieces)
    for block in order:
        parent = block.parent
        wrapper = block.good > WRAPPER * total and block.hint not in _NEVER_WRAPPERS
        own = (bool(block.hint) and not wrapper and _prunes(block, total)) or _graphic(block)
        block.pruned = own or (parent is not None and parent.pruned)
        if block.tag not in _PARAGRAPH:
            block.container = block
        elif parent is not None:
            block.container = parent.container
    for block in reversed(order):
        if block.pruned and (block.parent is None or not block.parent.pruned):
            block.pruned_chars, block.pruned_good = block.chars, block.good
        parent = block.parent
        if parent is not None and not parent.pruned:
            parent.pruned_chars += block.pruned_chars
            parent.pruned_good += block.pruned_good
    return total


def _read_captions(order: list[_Block], pieces: list[_Piece]) -> None:
    """Count each caption's sentences, mark its credits, and mark the captions the page says
    twice: a sentence of a caption whose words come again in another piece of the page (the
    caption in a lightbox too, or the article's first sentence under its picture)."""
    if not any(block.hint == Hint.CAPTION for block in order):
        return
    for block in order:
        parent = block.parent
        inherited = parent.caption if parent is not None else None
        block.caption = block if block.hint == Hint.CAPTION else inherited
    times: dict[str, int] = {}  # how many pieces of the page say these words
    sentences: list[tuple[_Piece, str]] = []
    for piece in pieces:
        caption = piece.block.caption
        if caption is not None and caption.goods >= CAPTION_PIECES:
            caption = None  # paragraphs under a picture: text, whatever their block's name
        if piece.chars < MIN_PIECE or piece.notice:
            piece.credit = caption is not None
            continue
        found = words_of.words(piece.text)
        key = " ".join(found)
        times[key] = times.get(key, 0) + 1
        if caption is None:
            continue
        if len(found) >= CAPTION_WORDS and piece.links < 0.5 * piece.chars:
            sentences.append((piece, key))
        else:
            piece.credit = True
    for piece, key in sentences:
        caption = piece.block.caption
        while caption is not None:  # a caption inside a caption says it for both
            caption.said += 1
            caption.repeated = caption.repeated or times[key] > 1
            parent = caption.parent
            caption = parent.caption if parent is not None else None


def _graphic(block: _Block) -> bool:
    """Whether a block is the text of a chart: many short labels, most of them numbers (axis
    ticks, values, years), a sentence at most per ``GRAPHIC_LABELS`` of them (a title). A list
    of short names is not one."""
    labels = block.count - block.goods  # cells count as prose only: fewer labels, never more
    return (
        labels >= GRAPHIC_LABELS
        and block.goods * GRAPHIC_LABELS <= labels
        and 2 * block.numbers >= labels
        and block.chars - block.good < GRAPHIC_CHARS * labels
        and block.tag not in _PARAGRAPH
    )


_ALWAYS_PRUNED = (Hint.TEMPLATE, Hint.DISCUSSION, Hint.GALLERY, Hint.HIDDEN)
_NEVER_WRAPPERS = (Hint.DISCUSSION, Hint.GALLERY)


def _prunes(block: _Block, total: int) -> bool:
    """Whether a hinted block is template: always for strong names and hidden blocks, for
    weak names only when its text is mostly links or crumbs and a small part of the page's
    prose (a lightbox holding the article is named like template, and is not)."""
    if block.hint in _ALWAYS_PRUNED:
        return True
    if block.hint == Hint.CAPTION:
        return block.goods < CAPTION_PIECES and (block.repeated or not block.said)
    if block.hint == Hint.MAYBE_TEMPLATE:
        crumbs = block.links > 0.3 * block.chars or block.good < 0.5 * block.chars
        return crumbs and block.good < MAYBE_PROSE * total
    return False


def _score(pieces: list[_Piece]) -> list[_Block]:
    """Readability's scores: each prose piece credits the three containers above it."""
    candidates: list[_Block] = []
    for piece in pieces:
        block = piece.block
        if piece.chars < MIN_PIECE or block.pruned or piece.notice:
            continue
        weight = _PIECE_WEIGHT.get(block.tag, 1.0) * (1 - piece.links / piece.chars)
        score = (1 + len(_COMMA.findall(piece.text)) + min(piece.chars // 100, 3)) * weight
        ancestor = block.container
        for divider in (1, 2, 6):
            if ancestor is None or ancestor.tag in _PAGE_LEVEL:
                break
            if not ancestor.scored:
                ancestor.scored = True
                ancestor.score = _INITIAL.get(ancestor.tag, 0)
                candidates.append(ancestor)
            ancestor.score += score / divider
            ancestor = ancestor.parent
    for block in candidates:
        link_share = block.links / block.chars if block.chars else 0.0
        block.score *= (1 - link_share) * _WEIGHT.get(block.hint, 1.0)
    candidates.sort(key=lambda block: -block.score)
    return candidates


def _ancestors(block: _Block) -> list[_Block]:
    chain = []
    node: _Block | None = block
    while node is not None:
        chain.append(node)
        node = node.parent
    return chain[::-1]


def _choose(candidates: list[_Block]) -> _Block:
    """The block holding the article: the best candidate, moved up where the text says so."""
    top = candidates[0]
    rivals = [c for c in candidates[1:5] if c.score >= 0.75 * top.score]
    if len(rivals) >= 2:  # several strong blocks: the article is their common ancestor
        common = None
        for level in zip(*(_ancestors(c) for c in [top, *rivals]), strict=False):
            if any(b is not level[0] for b in level):
                break
            common = level[0]
        if common is not None and common.tag not in _PAGE_LEVEL:
            top = common
    parent, last = top.parent, top.score
    while parent is not None and parent.tag not in _PAGE_LEVEL:
        if parent.scored:
            if parent.score < top.score / 3:
                break
            if parent.score > last:
                top = parent
                break
            last = parent.score
        parent = parent.parent
    while top.parent is not None and top.parent.tag not in _PAGE_LEVEL:
        parent = top.parent
        added = (parent.chars - parent.pruned_chars) - (top.chars - top.pruned_chars)
        prose = (parent.good - parent.pruned_good) - (top.good - top.pruned_good)
        links = parent.anchors - top.anchors
        if added > 0 and (
            prose < GROW_PROSE * added or links > GROW_LINKS * max(parent.goods - top.goods, 1)
        ):
            break
        top = parent
    return top


def _unpruned(order: list[_Block]) -> int:
    """Characters of prose in the page outside pruned blocks."""
    return sum(block.good - block.pruned_good for block in order if block.parent is None)


def _widen(top: _Block, prose: int) -> _Block:
    """The block holding the page's content when the chosen one holds little of its prose.

    Scores favour the longest block, and some pages spread their content over many blocks
    that no single one dominates: a forum thread's posts, a blog's front page, a table
    layout's rows and cells. When the choice holds under ``UNSURE`` of the page's prose
    (outside pruned blocks), its smallest ancestor holding ``SPREAD`` of it is taken instead
    (the body itself, on a page without wrappers), unless that ancestor's text is largely
    links, or what it adds has several links per piece of prose: then the rest of the prose is
    teasers around a short article, and the choice stays. It stays too when the climb meets a
    block whose class, id or itemprop name it the article (``story``, ``articleBody``) and
    that holds less: the page says where its content ends.
    """
    if top.good - top.pruned_good >= UNSURE * prose:
        return top
    block = top
    while block.parent is not None and block.parent.tag not in _OUTSIDE_BODY:
        if block is not top and block.hint == Hint.ARTICLE:
            return top  # the page names its article's block: the rest of its prose is outside
        block = block.parent
        if block.good - block.pruned_good >= SPREAD * prose:
            break
    added = max(block.goods - top.goods, 1)
    if block is top or block.links >= SPREAD_LINKS * block.chars:
        return top
    return block if block.anchors - top.anchors < SPREAD_ANCHORS * added else top


def select_main(root: LexborNode) -> None:
    """Remove from the tree everything but the page's main content (nothing when unsure)."""
    order, pieces = _blocks_and_pieces(root)
    _sum_up(order, pieces)
    candidates = _score(pieces)
    if not candidates or candidates[0].score <= 0:
        return
    top = _widen(_choose(candidates), _unpruned(order))
    kept = [top]
    parent = top.parent
    if parent is not None:
        threshold = min(max(10.0, top.score * 0.2), top.score * 0.75)
        for block in order:
            if block.parent is parent and block is not top and not block.pruned:
                link_share = block.links / block.chars if block.chars else 1.0
                if (block.scored and block.score >= threshold) or (
                    block.tag == "p" and block.chars > 80 and link_share < 0.25
                ):
                    kept.append(block)
    for block in kept:
        block.state = _KEPT
        ancestor = block.parent
        while ancestor is not None and ancestor.state == _UNMARKED:
            ancestor.state = _ON_PATH
            ancestor = ancestor.parent
    # Only blocks whose parent stays are removed: a removed block's descendants are gone
    # with it, and their nodes must not be touched again.
    for block in order:
        parent = block.parent
        if block.state == _UNMARKED and parent is not None:
            block.inside = parent.inside
        else:
            block.inside = block.state == _KEPT
        outside = block.state == _UNMARKED and parent is not None and parent.state == _ON_PATH
        if outside or (block.pruned and block.inside and parent is not None and not parent.pruned):
            block.node.decompose()
    kept_pieces = []
    for piece in pieces:
        block = piece.block
        if block.state == _ON_PATH or (piece.credit and block.inside and not block.pruned):
            piece.node.decompose()
        elif block.inside and not block.pruned:
            kept_pieces.append(piece)
    _trim(kept_pieces)


def _prose(piece: _Piece) -> bool:
    return (
        piece.chars >= MIN_PIECE
        and piece.links < 0.5 * piece.chars
        and _PIECE_WEIGHT.get(piece.block.tag, 1.0) > 0
    )


def _trim(pieces: list[_Piece]) -> None:
    """Drop the crumbs before the article's first sentence and after its last (a headline, a
    date, a byline, share buttons, tags); short lines between its sentences stay."""
    prose = [i for i, piece in enumerate(pieces) if _prose(piece)]
    if not prose:
        return
    for piece in pieces[: prose[0]] + pieces[prose[-1] + 1 :]:
        piece.node.decompose()
