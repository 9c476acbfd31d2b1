"""Paragraph extraction: the seed document, HTML and text rules, hostile input, any input."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.errors import InputError
from dedup.pipeline import extract, kernel
from dedup.pipeline.extract import (
    extract_paragraphs,
    looks_like_html,
    paragraphs_from_html,
    paragraphs_from_text,
)
from tests.helpers import is_clean_paragraph, timed_html

SEED = Path(__file__).parent.parent / "examples" / "000_25903e5ddf5549c1.txt"


# The seed document


def test_seed_has_its_26_paragraphs_twice() -> None:
    """The doubled article gives 26 paragraphs, the second half repeating the first."""
    paragraphs = extract_paragraphs(SEED.read_text(encoding="utf-8"))
    assert 26 == len(paragraphs)
    assert paragraphs[:13] == paragraphs[13:]


def test_seed_inline_link_stays_in_its_paragraph() -> None:
    """The ``Read |`` teaser and its link text are one paragraph, quoted as written."""
    paragraphs = extract_paragraphs(SEED.read_text(encoding="utf-8"))
    assert "Read | How the Taliban engineered Afghanistan's 'political collapse'" == paragraphs[5]


def test_seed_dots_between_paragraphs_are_not_paragraphs() -> None:
    """The stray ``.`` between ``</p>`` and ``<p>`` is dropped, not kept as a paragraph."""
    paragraphs = extract_paragraphs(SEED.read_text(encoding="utf-8"))
    assert [] == [p for p in paragraphs if not any(ch.isalnum() for ch in p)]
    assert "." not in paragraphs


# HTML rules


def test_inline_elements_join_their_paragraph() -> None:
    """Inline and unknown elements add their text to the paragraph around them."""
    html = "<p>Read | <a href='/x'>Title</a></p><div>a<b>b</b><i>c</i> <my-tag>d</my-tag></div>"
    assert ["Read | Title", "abc d"] == paragraphs_from_html(html)


def test_br_splits_its_block() -> None:
    """A ``<br>`` ends a paragraph inside any block."""
    assert ["a", "b"] == paragraphs_from_html("<div>a<br>b</div>")
    assert ["line one", "line two"] == paragraphs_from_html("<p>line one<br/>line two</p>")


def test_block_elements_separate_paragraphs() -> None:
    """Lists, headings, table cells and unclosed paragraphs each give their own paragraph."""
    html = (
        "<h1>Title</h1><ul><li>one<li>two</ul><table><tr><td>a<td>b</tr></table>"
        "<P CLASS=x>upper<p>lower<blockquote>quote</blockquote><hr>after"
    )
    expected = ["Title", "one", "two", "a", "b", "upper", "lower", "quote", "after"]
    assert expected == paragraphs_from_html(html)


def test_text_between_blocks_is_a_paragraph_when_it_has_words() -> None:
    """Loose text between blocks is its own paragraph unless it has no letter or digit."""
    assert ["a", "loose words", "b"] == paragraphs_from_html("<p>a</p>loose words<p>b</p>")
    assert ["a", "b"] == paragraphs_from_html("<p>a</p> . <p>b</p>-- *<p>|</p>")


def test_invisible_elements_are_dropped_with_their_content() -> None:
    """Scripts, styles, navigation, forms, comments and the like never reach a paragraph."""
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<nav><a>Home</a></nav><header>Logo</header><p>kept<!-- hidden --> text</p>"
        "<script>var s = '<p>no</p>';</script><noscript>no</noscript><template>no</template>"
        "<form><input value=no><button>no</button><select><option>no</select></form>"
        "<svg><text>no</text></svg><textarea>no</textarea><iframe>no</iframe>"
        "<aside>no</aside><footer>no</footer></body></html>"
    )
    assert ["kept text"] == paragraphs_from_html(html)


def test_dropped_element_ends_where_the_parser_says() -> None:
    """An unclosed ``<header>`` ends with its parent, so the content after it survives."""
    assert ["Content"] == paragraphs_from_html("<div><header>Logo</div><p>Content")


def test_entities_are_decoded() -> None:
    """Character references become the characters they name."""
    html = "<p>&amp; &lt;b&gt; &eacute;t&eacute; &#8212; &#x263A;&nbsp;x</p>"
    assert ["& <b> été — ☺ x"] == paragraphs_from_html(html)


def test_whitespace_is_collapsed_and_case_kept() -> None:
    """Runs of any whitespace become one space; letters keep their case."""
    html = "<p>  Hello\n\t WORLD\u00a0\u2003Again </p>"
    assert ["Hello WORLD Again"] == paragraphs_from_html(html)


def test_pre_splits_on_blank_lines() -> None:
    """Preformatted text is cut at its blank lines, each part collapsed like any paragraph."""
    html = "<pre class=code>first\n  line\n\n \nsecond <b>bold</b>\n&nbsp;\nthird</pre>after"
    assert ["first line", "second bold", "third", "after"] == paragraphs_from_html(html)


def test_attribute_with_markup_does_not_leak() -> None:
    """Quoted attribute values, even holding ``>`` or tags, are never text."""
    html = """<p title='a > b' data-x="<div>no</div>">yes</p><a b'c="d">e</a>"""
    assert ["yes", "e"] == paragraphs_from_html(html)


def test_control_characters_are_removed_from_html() -> None:
    """NUL and other controls vanish from paragraphs, even when written as references."""
    assert ["abcd e"] == paragraphs_from_html("<p>a\x00b\x01c\x7fd&#2;\x0ce</p>")


def test_empty_html_gives_no_paragraphs() -> None:
    """Markup without readable text gives an empty list, for the caller to judge."""
    for html in ("", "<p></p>", "<div> . </div>", "<script>alert(1)</script>", "<!-- x -->"):
        assert [] == paragraphs_from_html(html)


# Plain text rules


def test_text_paragraphs_are_separated_by_blank_lines() -> None:
    """One or more blank lines end a paragraph; single newlines join lines with a space."""
    text = "first line\nsecond line\n\n\nnext\n \t \nlast  one\n"
    assert ["first line second line", "next", "last one"] == paragraphs_from_text(text)


def test_text_line_ends_are_normalised() -> None:
    """CRLF and lone CR count as newlines, so they can make blank lines too."""
    assert ["a b", "c d", "e"] == paragraphs_from_text("a\r\nb\r\n\r\nc\rd\r\re")


def test_text_controls_are_removed() -> None:
    """Controls other than whitespace are dropped; NUL is replaced by nothing."""
    assert ["abc", "d e"] == paragraphs_from_text("a\x00b\x07c\n\nd\x0ce\x1b")


def test_text_keeps_markup_characters() -> None:
    """Plain text is not parsed: angle brackets and entities are quoted as they are."""
    assert ["<p>a</p> &amp;", "x"] == extract_paragraphs("<p>a</p> &amp;\n\nx", fmt="text")


def test_text_without_words_gives_no_paragraphs() -> None:
    """Text with no letter or digit gives an empty list."""
    assert [] == paragraphs_from_text(" \n\n ... \n\n--")


# Format selection and limits


def test_looks_like_html_on_markup() -> None:
    """Real tags of common elements, or a doctype, mark a document as HTML."""
    for text in ("<p>hi</p>", "<!DOCTYPE html><title>x</title>", "text<BR>more", '<DIV class="a">'):
        assert looks_like_html(text)


def test_looks_like_html_on_prose() -> None:
    """Comparisons and stray brackets in prose are not markup."""
    for text in ("a < b and c > d", "if x<y then", "1 <2> 3", "<<quoted>>", "plain words", ""):
        assert not looks_like_html(text)


def test_auto_format_detects_both_ways() -> None:
    """``auto`` parses markup as HTML and anything else as text."""
    assert ["a", "b"] == extract_paragraphs("<p>a</p><p>b</p>")
    assert ["a < b", "c > d"] == extract_paragraphs("a < b\n\nc > d")


def test_explicit_format_wins() -> None:
    """``html`` parses even tagless text as HTML, ``text`` never parses tags."""
    assert ["x & y"] == extract_paragraphs("x &amp; y\n\n", fmt="html")
    assert ["<p>a</p><p>b</p>"] == extract_paragraphs("<p>a</p><p>b</p>", fmt="text")


def test_unknown_format_is_refused() -> None:
    """Only auto, html and text are formats."""
    for fmt in ("markdown", "", "HTML", "txt"):
        with pytest.raises(ValueError, match="format"):
            extract_paragraphs("text", fmt=fmt)


def test_max_paragraphs_allows_exactly_the_limit() -> None:
    """A document with as many paragraphs as allowed is accepted; dropped dots do not count."""
    assert 26 == len(extract_paragraphs(SEED.read_text(encoding="utf-8"), max_paragraphs=26))
    assert ["a", "b"] == extract_paragraphs("a\n\nb", max_paragraphs=2)


def test_max_paragraphs_refuses_more() -> None:
    """One paragraph too many raises InputError with a message naming the limit."""
    seed = SEED.read_text(encoding="utf-8")
    with pytest.raises(InputError, match=r"^document has more than 25 paragraphs$"):
        extract_paragraphs(seed, max_paragraphs=25)
    with pytest.raises(InputError, match="more than 1 paragraphs"):
        extract_paragraphs("a\n\nb", fmt="text", max_paragraphs=1)
    with pytest.raises(InputError, match="more than 0 paragraphs"):
        extract_paragraphs("<p>a</p>", max_paragraphs=0)


def test_max_paragraphs_stops_a_huge_document() -> None:
    """A million paragraphs against a limit of ten are refused without building the list."""
    with pytest.raises(InputError):
        extract_paragraphs("<p>x</p>" * 1_000_000, max_paragraphs=10)


# Hostile input


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 100_000 + "x" + "</div>" * 100_000,
        "<b>" * 100_000 + "x" + "</b>" * 100_000,
        "<div>" * 100_000 + "x",
        "<b>" * 100_000 + "x",
        "<div><b><p><span><li><table><td><dl><dd>" * 20_000 + "x",
        "<li><p><dd>" * 50_000 + "x",
    ],
    ids=["div", "b", "div-unclosed", "b-unclosed", "mixed-unclosed", "list-items"],
)
def test_deep_nesting_is_fast(html: str) -> None:
    """100,000 levels of nesting give the one paragraph inside, without recursion or hang."""
    assert ["x"] == timed_html(html)


def test_deep_nesting_keeps_every_level() -> None:
    """Text at each of 100,000 nested levels still gives one paragraph per level."""
    assert ["x"] * 100_000 == timed_html("<div>x" * 100_000)


def test_deeply_nested_dropped_elements_stay_dropped() -> None:
    """Content nested far inside a dropped element is dropped, what follows is kept."""
    assert ["y"] == timed_html("<nav>" * 100_000 + "x" + "</nav>" * 100_000 + "<p>y</p>")


def test_a_million_empty_paragraphs() -> None:
    """A million empty paragraphs give none, quickly."""
    assert [] == timed_html("<p></p>" * 1_000_000)


def test_quadratic_parser_paths_are_avoided() -> None:
    """Shapes that make the tree builder quadratic or worse stay fast."""
    bold = "".join(f"<b {i}>" for i in range(5_000))
    italic = "".join(f"<i {i}>" for i in range(5_000))
    assert ["x" * 5_000] == timed_html(bold + italic + "x</b>" * 5_000)
    options = "".join(f"<option value={i}>{i}</option>" for i in range(30_000))
    assert ["x"] == timed_html(f"<select>{options}</select>x")
    assert ["x"] == timed_html("<div><table></div></table>" * 50_000 + "x")


def test_huge_word_and_nul_bytes() -> None:
    """A five-million-letter word stays whole; NUL bytes vanish."""
    assert ["w" * 5_000_000] == timed_html("<p>" + "w" * 5_000_000 + "</p>")
    assert ["ab" * 100_000] == timed_html("<p>" + "a\x00b" * 100_000 + "\x00" * 100_000)
    assert ["ab", "c"] == paragraphs_from_text("a\x00b\x00\n\x00\nc")


def test_truncated_tags_are_fast() -> None:
    """A page cut off inside a long tag is read up to the cut, without regex backtracking."""
    assert ["text"] == timed_html("<p>text</p><div" + " a=b" * 100_000)
    assert ["text"] == timed_html("<p>text</p><div class='cut" + " a=b" * 100_000)
    assert ["text"] == timed_html("<p>text</p><script" + ' a="b' * 100_000)
    assert [] == timed_html("<" * 1_000_000)


def test_broken_markup_is_read_like_a_browser() -> None:
    """Unbalanced, misnested and truncated markup gives the text a browser would show."""
    assert ["x", "y"] == paragraphs_from_html("<div><p><b>x</div></p></b>y</i>")
    assert ["a < b <c"] == paragraphs_from_html("<p>a < b <<i>c")
    assert ["tail"] == paragraphs_from_html("<!-- open comment <p>x</p> -- > --!>tail")
    assert ["kept"] == paragraphs_from_html("<p>kept<p title='x>y")


def test_lone_surrogates_are_dropped() -> None:
    """Text that is not valid Unicode loses the invalid code points, in both formats."""
    assert ["ab"] == paragraphs_from_html("<p>a\ud800b</p>")
    assert ["ab"] == paragraphs_from_text("a\udfffb")


# Any input

TAG_NAMES = [
    "p", "div", "span", "b", "a", "li", "ul", "table", "tr", "td", "br", "pre", "h2", "dl", "dd",
    "nav", "header", "form", "button", "select", "option", "svg", "math", "template", "head",
    "script", "style", "textarea", "title", "noscript", "iframe", "x-widget", "body", "html",
]  # fmt: skip
ATTRIBUTES = ["", " class=x", " title='a>b'", ' data-x="<p>q</p>"', " '", ' a="', " =", "/"]
FRAGMENTS = [
    "<!--", "-->", "<!-- c -->", "<!doctype html>", "<?xml?>", "</", "<", ">", "<<", "&amp;",
    "&nbsp;", "&#0;", "&#1;", "&#x2028;", "&", "\n\n", "\r\n", " ", "\t", "\x00", "\x01", "\x85",
    ".", "word", "Wörd", "٣", "\u200b",
]  # fmt: skip

tags = st.builds(
    lambda closing, name, attrs: f"<{closing}{name}{attrs}>",
    st.sampled_from(["", "/"]),
    st.sampled_from(TAG_NAMES + [name.upper() for name in TAG_NAMES]),
    st.sampled_from(ATTRIBUTES),
)
tag_soup = st.lists(st.one_of(tags, st.sampled_from(FRAGMENTS), st.text(max_size=8))).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    document=st.one_of(st.text(), tag_soup),
    fmt=st.sampled_from(["auto", "html", "text"]),
    limit=st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
)
def test_any_input_gives_clean_paragraphs(document: str, fmt: str, limit: int | None) -> None:
    """Any text or tag soup, in any format, gives clean paragraphs or an InputError."""
    try:
        paragraphs = extract_paragraphs(document, fmt=fmt, max_paragraphs=limit)
    except InputError:
        assert limit is not None
        return
    assert isinstance(paragraphs, list)
    assert [] == [p for p in paragraphs if not (isinstance(p, str) and is_clean_paragraph(p))]
    assert limit is None or len(paragraphs) <= limit


PIECE_CHARACTERS = st.one_of(
    st.sampled_from(["\x01", " ", "\t", "\n", "\x85", "\xa0", "\u2028", "\u3000", "\x0b"]),
    st.sampled_from(["\x00", "\x02", "\x1f", "\x7f", "\x84", "\x9f", "_", "-", ".", "²"]),
    st.characters(),
)


@pytest.mark.usefixtures("compiled_kernel")
@settings(max_examples=500, deadline=None)
@given(st.text(PIECE_CHARACTERS, max_size=40), st.integers(1, 4))
def test_kernel_cuts_the_parsed_text_as_python_does(text: str, limit: int) -> None:
    """The kernel's pieces of the parser's text (separators, controls, every kind of
    whitespace, readable or not) and its limit are those of the Python steps."""

    def pieces() -> list[str] | str:
        try:
            return extract._readable_pieces(text, limit)
        except InputError as exc:
            return str(exc)

    found = pieces()
    with mock.patch.object(kernel, "compiled", None):
        assert pieces() == found


MARKUP_CHARACTERS = st.one_of(
    st.sampled_from(["<", ">", "/", "<<", "\x00", "\x01", "\x02", "\x03", "\u212a", "\u0130"]),
    st.sampled_from(["p", "P", "r", "R", "e", "E", "n", "a", "v", "V", "<PrE>", "<nav>"]),
    st.characters(),
)


@pytest.mark.usefixtures("compiled_kernel")
@settings(max_examples=500, deadline=None)
@given(st.lists(MARKUP_CHARACTERS, max_size=30).map("".join))
def test_kernel_finds_the_marks_the_patterns_find(text: str) -> None:
    """The kernel's one pass finds the tags (ASCII letters in either case, nothing else: not
    the Kelvin sign), reserved characters and ``<<`` that a search per mark finds."""
    for marks in (extract._PARSE_MARKS, extract._REWRITE_MARKS):
        found = extract._holds(text, marks)
        with mock.patch.object(kernel, "compiled", None):
            assert extract._holds(text, marks) == found


FRAGMENT_PARTS = st.one_of(
    st.sampled_from(["<p>", "</p>", "<P>", "</P>", "<br>", "</br>", "<BR/>", "<hr>", "</hr>"]),
    st.sampled_from(["<div>", "</div>", "<li>", "</li>", "<ul>", "</ul>", "<h2>", "</h2>"]),
    st.sampled_from(["<table>", "<td>", "<pre>", "<nav>", "<span>", "<a href='x'>", "</a>"]),
    st.sampled_from(["&amp;", "&lt;", "&gt;", "&quot;", "&#x27;", "&#39;", "&nbsp;", "&copy;"]),
    st.sampled_from(["&amp", "&#1;", "&AMP;", "&", "<", ">", "<!-- c -->", "<p class='x'>"]),
    st.sampled_from([" ", "\n", "\r\n", "\r", "\t", "\x0c", "\xa0", "\ufeff", "\ud800"]),
    st.sampled_from(["a", "B", "1", "é", "東", "\x02", "\x85", "_"]),
    st.characters(),
)


@pytest.mark.usefixtures("compiled_kernel")
@settings(max_examples=1000, deadline=None)
@given(st.lists(FRAGMENT_PARTS, max_size=30).map("".join), st.sampled_from([None, 2]))
def test_plain_markup_cut_by_the_kernel_is_what_the_parser_gives(
    fragment: str, limit: int | None
) -> None:
    """Where the kernel cuts plain markup without a tree, it finds the paragraphs (and the
    refusal past the limit) that the parser's tree gives; other markup goes to the parser."""

    def paragraphs() -> list[str] | str:
        try:
            return extract.extract_paragraphs(fragment, "html", limit)
        except InputError as exc:
            return str(exc)

    found = paragraphs()
    with mock.patch.object(extract, "_plain_pieces", lambda html, limit: None):
        assert paragraphs() == found


def test_plain_markup_of_paragraphs_is_cut_without_a_tree() -> None:
    """Paragraphs as scrapers send them (``<p>`` and ``</p>``, breaks, the references
    ``html.escape`` writes) take the kernel's path; an end tag the parser may ignore does not,
    nor does a dropped element or pre, which are looked for only when this path fails."""
    assert not set(extract._PLAIN_STARTS + extract._PLAIN_ENDS) & (extract._DROP | {"pre"})
    if kernel.compiled is None:
        assert extract._plain_pieces("<p>a</p>", None) is None
        return
    assert ["a & b", "c"] == extract._plain_pieces("<p>a &amp; b</p><P>c<br>", None)
    assert extract._plain_pieces("a</div>b", None) is None


@pytest.mark.usefixtures("compiled_kernel")
def test_pages_give_the_same_paragraphs_with_either_path() -> None:
    """Whole pages and fragments cut the same with the kernel and without."""
    page = (
        "<html><body><nav><a href='/'>Home</a></nav><article><h1>Title \x02here</h1>"
        "<p>First\u00a0paragraph of  the story,\n with a <a href='x'>link</a>.</p>"
        "<p>_ -- </p><p>Second one&#1;cut\u2028here ²</p></article></body></html>"
    )
    for html in (page, page.split("<article>")[1], SEED.read_text(encoding="utf-8")):
        found = paragraphs_from_html(html)
        with mock.patch.object(kernel, "compiled", None):
            assert paragraphs_from_html(html) == found
        assert found


@pytest.mark.usefixtures("compiled_kernel")
def test_kernel_refuses_arguments_it_cannot_follow() -> None:
    """A separator that is not one character, or is dropped, and dropped characters past
    U+00FF raise ValueError; so do marks that are empty, not ASCII, too many or too long."""
    assert kernel.compiled is not None
    for separator, dropped in (("", ""), ("\x01\x01", ""), ("\x01", "\x01"), ("\x01", "東")):
        with pytest.raises(ValueError, match="readable_pieces"):
            kernel.compiled.readable_pieces("a\x01b", separator, dropped)
    for needles in (("",), ("東",), ("a",) * 65, ("a" * 32,)):
        with pytest.raises(ValueError, match="holds"):
            kernel.compiled.holds("a", needles)
