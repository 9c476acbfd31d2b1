"""Whole pages cut down to their article: what is kept, what goes, and at what cost."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.pipeline.extract import extract_paragraphs, paragraphs_from_html
from tests.helpers import is_clean_paragraph, timed_html

ARTICLE = [
    "The council approved the budget for the new river bridge on Tuesday, after a long debate.",
    "Supporters said the crossing would cut the commute from the northern villages in half, "
    "and that the <a href='/tolls'>toll plan</a> was fair.",
    "Opponents questioned the cost, the noise and who would pay for repairs in later years.",
    "Work is due to start in the spring, while the old ferry keeps running until it opens.",
]
TEMPLATE = (
    "<nav><a href='/'>Home</a></nav>",
    "<div class='menu'><ul>"
    + "".join(f"<li><a href='/s/{n}'>Section {n}</a></li>" for n in range(8))
    + "</ul></div>",
    "<div class='cookie-banner'><p>We use cookies to improve your experience, and to show "
    "you adverts that are relevant to you.</p><a href='/ok'>Accept</a></div>",
)
RELATED = (
    "<div class='related'><h2>Related</h2><ul>"
    + "".join(
        f"<li><a href='/r/{n}'>Another story number {n} about the river</a><p>A teaser of the "
        f"other story, long enough, with a comma, to look like prose {n}.</p></li>"
        for n in range(5)
    )
    + "</ul></div>"
)
COMMENTS = (
    "<div id='comments'>"
    + "".join(
        f"<div class='comment'><p>I live by the river and I think this bridge is a waste of "
        f"money, frankly, and nobody asked us about it at all, reader {n} says.</p></div>"
        for n in range(6)
    )
    + "</div>"
)

FOOTER = "<footer><p>Copyright The Paper. All rights reserved.</p></footer>"


def page(article_html: str) -> str:
    """A whole page with the usual template around an article."""
    head = "<!doctype html><html><head><title>Bridge</title></head><body>"
    return head + "".join(TEMPLATE) + article_html + RELATED + COMMENTS + FOOTER + "</body></html>"


def expected_article() -> list[str]:
    """The article's paragraphs as extracted (links joined into their sentence)."""
    return [p.replace("<a href='/tolls'>", "").replace("</a>", "") for p in ARTICLE]


def test_whole_page_gives_the_article_only() -> None:
    """Menus, banners, related stories, comments and footers around an article are dropped."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE)
    html = page(f"<article><h1>Bridge approved</h1><div class='byline'>By A. Writer</div>{body}"
                "<div class='share'><a href='/fb'>Share</a></div></article>")  # fmt: skip
    assert expected_article() == paragraphs_from_html(html)


def test_article_split_over_sibling_blocks_is_kept_whole() -> None:
    """An article written as one block per paragraph is kept whole."""
    blocks = "".join(f"<div class='para'><div><p>{p}</p></div></div>" for p in ARTICLE)
    assert expected_article() == paragraphs_from_html(page(f"<div class='story'>{blocks}</div>"))


def test_fragment_keeps_every_paragraph() -> None:
    """Without ``<html>``, ``<body>`` or a doctype a document is a fragment: nothing is dropped."""
    html = "".join(f"<p>{p}</p>" for p in ARTICLE) + RELATED + COMMENTS
    paragraphs = paragraphs_from_html(html)
    assert expected_article() == paragraphs[:4]
    assert 4 + 1 + 10 + 6 == len(paragraphs)


def test_main_content_can_be_turned_off() -> None:
    """``main_content=False`` keeps the whole page's text."""
    html = page("".join(f"<p>{p}</p>" for p in ARTICLE))
    everything = extract_paragraphs(html, "html", main_content=False)
    assert set(expected_article()) < set(everything)
    assert len(everything) > 25


def test_wrapper_named_like_template_keeps_the_article() -> None:
    """A container holding most of the page's prose is kept whatever its class says."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE * 5)
    html = page(f"<div class='layout-with-sidebar'><div class='x'>{body}</div></div>")
    assert expected_article() * 5 == paragraphs_from_html(html)


def test_form_wrapping_the_whole_page_keeps_the_article() -> None:
    """A page whose body is one ``<form>`` (ASP.NET WebForms) is read like any other page."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE)
    article = f"<div class='main'><article id='main-article-block'><h1>Bridge</h1>{body}</article>"
    html = page(article + "</div>").replace(
        "<body>", "<body><form method='post' id='form1'><input type=hidden name=state value=x>"
    )
    assert expected_article() == paragraphs_from_html(html.replace("</body>", "</form></body>"))


def test_form_beside_the_article_is_dropped() -> None:
    """A form holding a small part of the page's text (a sign-up box) is no article text."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE)
    signup = (
        "<form action='/subscribe'><p>Sign up for the morning briefing, with the news of the "
        "valley, every day before breakfast.</p><input name=email><button>Go</button></form>"
    )
    assert expected_article() == paragraphs_from_html(page(f"<article>{body}{signup}</article>"))


def test_page_whose_selection_keeps_nothing_gives_its_whole_body() -> None:
    """When the chosen block has nothing to read (a row of commas scores like prose), the
    page's whole body gives the paragraphs, rather than no report at all."""
    html = (
        "<html><body><div><p>Opening times of the town library</p><p>Monday to Friday</p></div>"
        "<div><p>" + ", " * 30 + "</p></div><footer>Contact</footer></body></html>"
    )
    assert ["Opening times of the town library", "Monday to Friday"] == paragraphs_from_html(html)


def test_page_of_template_only_gives_its_template() -> None:
    """A page whose only text is in menus, headers and footers gives that text; a page
    without any text gives nothing."""
    html = (
        "<html><body><header><h1>The Paper</h1></header><nav><a href='/'>Home</a></nav>"
        "<main><img src='a.jpg'><button>Play</button></main>"
        "<footer><p>Contact the newsroom</p></footer></body></html>"
    )
    assert ["The Paper", "Home", "Contact the newsroom"] == paragraphs_from_html(html)
    nothing = "<html><body><nav> </nav><button>Play</button><svg><text>1</text></svg></body></html>"
    assert [] == paragraphs_from_html(nothing)


def test_hidden_blocks_are_dropped() -> None:
    """Blocks hidden by ``hidden``, ``aria-hidden`` or ``display: none`` are template."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE)
    hidden = (
        "<div hidden><p>A hidden promotion that is long enough, with a comma, to count.</p></div>"
        "<div style='color: red; display:none'><p>Another hidden block of text, with a comma, "
        'long enough.</p></div><div aria-hidden="true"><p>A third one, with a comma and '
        "more than enough words in it.</p></div>"
    )
    assert expected_article() == paragraphs_from_html(page(f"<div>{body}{hidden}</div>"))


def test_page_without_prose_is_kept_whole() -> None:
    """A page with no sentence to go by (only short lines) keeps every line: nothing to choose."""
    html = "<html><body><div><p>Menu</p><p>Login</p></div><div><p>Price list</p></div></body>"
    assert ["Menu", "Login", "Price list"] == paragraphs_from_html(html)


def test_link_marks_never_reach_paragraphs() -> None:
    """Link text joins its sentence; raw or referenced marks in the input vanish."""
    html = "<html><body><p>a\x02b\x03c <a href=x>link</a>d &#2;e&#3;</p></body></html>"
    assert ["abc linkd e"] == paragraphs_from_html(html)


@pytest.mark.parametrize(
    "html",
    [
        "<html><body>" + "<div>x" * 100_000,
        "<!doctype html>" + "<div class='content'>" * 100_000 + "x",
        "<html>"
        + "<div class='comments'><p>some words, a comma, enough to count</p></div>" * 40_000,
        "<html>"
        + "<div><a href=x>a long link text</a>, and prose with commas, here</div>" * 30_000,
        "<html><div" + " style=x" * 400_000 + " none>x",
        "<html>" + ("<div" + " class='a" * 300 + " none>x") * 3_000,
    ],
    ids=["flat", "deep-hinted", "pruned", "linked", "long-attributes", "many-attributes"],
)
def test_whole_page_selection_is_fast(html: str) -> None:
    """Main-content selection on huge or deep pages stays within the hostile budget."""
    assert timed_html(html)


PAGE_ATTRIBUTES = [
    "", " class='comments'", " id=content", " class='share menu'", " hidden",
    " style='display: none'", " itemprop=articleBody", " class='sidebar main'", " href=x",
]  # fmt: skip
page_tags = st.builds(
    lambda closing, name, attrs: f"<{closing}{name}{attrs}>",
    st.sampled_from(["", "/"]),
    st.sampled_from(["div", "section", "article", "ul", "li", "p", "a", "table", "td", "span"]),
    st.sampled_from(PAGE_ATTRIBUTES),
)
page_text = st.sampled_from(
    ["word", "a longer sentence of prose, with a comma, that counts as text", "\x02", ".", " "]
)
page_soup = st.lists(st.one_of(page_tags, page_text, st.text(max_size=6))).map(
    lambda parts: "<html><body>" + "".join(parts)
)


@settings(max_examples=300, deadline=None)
@given(document=page_soup)
def test_main_content_only_removes_paragraphs(document: str) -> None:
    """On any page, selection keeps clean paragraphs, each one a paragraph of the whole text."""
    selected = paragraphs_from_html(document)
    everything = paragraphs_from_html(document, main_content=False)
    assert [] == [p for p in selected if not is_clean_paragraph(p)]
    assert set(selected) <= set(everything)


def test_long_comment_thread_under_a_short_post_is_dropped() -> None:
    """A thread holding most of the page's prose is still comments, not the article's wrapper."""
    post = "".join(f"<p>{p}</p>" for p in ARTICLE[:2])
    thread = (
        "<ol class='comment-list'>"
        + "".join(
            f"<li><div><p>Reader {n} writes: the bridge will change the valley, I think, and I "
            f"would like to know who pays for the road to it, and when the work starts.</p></div>"
            "</li>"
            for n in range(12)
        )
        + "</ol>"
    )
    html = page(f"<main><article>{post}</article><div>{thread}</div></main>")
    assert expected_article()[:2] == paragraphs_from_html(html)


CAPTION = "The river at dawn, seen from the old ferry landing, before the work begins."


def test_caption_sentence_is_kept_and_its_credits_dropped() -> None:
    """A caption that says a sentence about the picture stays with the article; its credit
    and label, inside the caption or in a block of their own, go."""
    caption = (
        "<div class='wp-caption aligncenter'><img src='a.jpg'><p class='wp-caption-text'>"
        f"{CAPTION}</p><p>Photo by A. Photographer/Agency</p></div>"
        "<div class='image-credit'>Photo by A. Photographer/Agency</div>"
        "<div class='caption'><img src='b.jpg'><p>The old ferry</p></div>"
    )
    body = "".join(f"<p>{p}</p>{caption if i == 1 else ''}" for i, p in enumerate(ARTICLE))
    expected = expected_article()
    expected.insert(2, CAPTION)
    assert expected == paragraphs_from_html(page(f"<article>{body}</article>"))


@pytest.mark.parametrize(
    "again",
    [
        f"<div class='lightbox'><p>{CAPTION}</p></div>",
        f"<div class='caption'><img src='a-large.jpg'><p>{CAPTION.upper()}</p></div>",
    ],
)
def test_caption_the_page_says_twice_is_dropped(again: str) -> None:
    """A caption whose sentence the page shows again (in a lightbox, or the same caption at
    another size) goes: kept, it would be a repeat inside the article."""
    caption = f"<div class='caption'><img src='a.jpg'><p>{CAPTION}</p></div>"
    body = "".join(f"<p>{p}</p>{caption if i == 1 else ''}" for i, p in enumerate(ARTICLE))
    found = paragraphs_from_html(page(f"<article>{body}</article>{again}"))
    assert CAPTION not in found and CAPTION.upper() not in found


def test_caption_restating_the_article_is_dropped() -> None:
    """A caption that repeats a sentence of the article, its quotes typed otherwise, goes."""
    first = ARTICLE[0].replace("Tuesday,", "Tuesday’s meeting,")
    article = [first, *ARTICLE[1:]]
    typed = first.replace("\u2019", "'")
    caption = f"<div class='caption'><img src='a.jpg'><p>{typed}</p></div>"
    body = caption + "".join(f"<p>{p}</p>" for p in article)
    found = paragraphs_from_html(page(f"<article>{body}</article>"))
    assert [first, *expected_article()[1:]] == found


def chart(title: str) -> str:
    """The text a chart leaves in a page: a title, axis ticks, values, years."""
    labels = ["$915", "billion", "600", "300", "0", *(f"’{year}" for year in range(17, 29))]
    return f"<div><p>{title}</p>" + "".join(f"<div><p>{x}</p></div>" for x in labels) + "</div>"


def test_chart_labels_are_dropped() -> None:
    """A chart's labels, here in two sizes of one chart, are not paragraphs of the article."""
    graphic = chart("Interest on the debt, per year") + chart("Interest on the debt, per year")
    body = "".join(f"<p>{p}</p>{graphic if i == 1 else ''}" for i, p in enumerate(ARTICLE))
    assert expected_article() == paragraphs_from_html(page(f"<article>{body}</article>"))


def test_tables_and_lists_of_short_items_are_kept() -> None:
    """Numbers in a table and a list of short names are data the article gives, not a chart."""
    table = (
        "<table>"
        + "".join(
            f"<tr><td><div>Span {n}</div></td><td>{n * 40} m</td><td>{1990 + n}</td></tr>"
            for n in range(1, 7)
        )
        + "</table>"
    )
    names = "<ul>" + "".join(f"<li>{name}</li>" for name in ("Oak", "Ash", "Elm") * 3) + "</ul>"
    body = "".join(f"<p>{p}</p>" for p in ARTICLE[:2]) + table + names
    body += "".join(f"<p>{p}</p>" for p in ARTICLE[2:])
    cells = [f"{cell}" for n in range(1, 7) for cell in (f"Span {n}", f"{n * 40} m", 1990 + n)]
    lines = [str(cell) for cell in cells] + ["Oak", "Ash", "Elm"] * 3
    expected = expected_article()[:2] + lines + expected_article()[2:]
    assert expected == paragraphs_from_html(page(f"<article>{body}</article>"))


def test_named_anchor_left_open_does_not_make_the_article_link_text() -> None:
    """``<a name="top"/>`` stays open in HTML but is no link: the article after it is prose."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE)
    blurb = (
        "<div><p>About this paper: news of the valley, written by its people, since 1921, "
        "and read in every village.</p></div>"
    )
    html = page(f"{blurb}<a name='top'/><div>{body}</div>")
    assert expected_article() == paragraphs_from_html(html)


POSTS = [
    "My old laptop still runs the simulator fine, with the detail turned down a little.",
    "I upgraded the memory last winter and the frame rate doubled, which surprised me.",
    "Same card here, but the fan is loud, so I keep the case open in the summer months.",
    "Does the new version still support the joystick I bought in 2003, does anyone know?",
    "It does, I use one every day, you only need the driver from the maker's own page.",
    "Mine stutters over big airports at night, with the traffic slider set to the full.",
    "Turn the shadows off, they cost more than anything else on older cards, I found.",
    "Thanks, that fixed it for me too, and the clouds look just as good as they did.",
    "I run it on a desktop from 2001 and it is fine, as long as I keep the view simple.",
    "The sound drops out now and then on mine, has that happened to anyone else here?",
    "Yes, a newer driver for the sound card cured it, after a week of trying other things.",
]
LONG_POST = (
    "Here is my whole setup, since you asked: a tower I built myself in 2004, with a fast "
    "processor, a gigabyte of memory, a large disk split in two, and a graphics card that cost "
    "more than everything else together; it flies the big jets into busy airports, day or "
    "night, at twenty frames a second or more, which is plenty for me, and it stays quiet."
)


def test_forum_thread_spread_over_posts_is_kept_whole() -> None:
    """A thread whose posts are rows of a table, none of them most of the page's prose, is
    kept whole, not cut down to its longest post."""
    posts = [LONG_POST, *POSTS]
    rows = "".join(
        f"<tr><td><a href='/u/{n}'>member{n}</a><br>Posted: 2 Feb 2005</td><td><p>{post}</p>"
        f"</td></tr>"
        for n, post in enumerate(posts)
    )
    html = page(f"<table><tr><td><h1>What do you fly on?</h1></td></tr>{rows}</table>")
    kept = paragraphs_from_html(html)
    assert all(post in kept for post in posts)
    assert not any("Section" in p or "teaser" in p for p in kept)


def test_teasers_around_a_short_article_stay_out() -> None:
    """A short article beside teasers holding most of the page's prose stays alone: the
    teasers are links with a line each, not content spread over blocks."""
    teasers = "".join(
        f"<div><a href='/s/{n}'>Headline {n}</a> <a href='/t/{n}'>Politics</a> "
        f"<a href='/a/{n}'>By someone</a><p>A summary of another story number {n}</p></div>"
        for n in range(24)
    )
    article = "<article>" + "".join(f"<p>{p}</p>" for p in ARTICLE[:3]) + "</article>"
    html = page(f"<div>{article}<div>{teasers}</div></div>")
    assert expected_article()[:3] == paragraphs_from_html(html)


def test_flat_page_spread_over_the_body_is_kept_whole() -> None:
    """A page whose posts sit right under ``<body>``, with no wrapper, keeps them all."""
    posts = [LONG_POST, *POSTS]
    body = "".join(
        f"<div><a href='/u/{n}'>member{n}</a> wrote:</div><div><p>{post}</p></div>"
        for n, post in enumerate(posts)
    )
    html = f"<html><body><h1>What do you fly on?</h1>{body}</body></html>"
    kept = paragraphs_from_html(html)
    assert all(post in kept for post in posts)


def test_copyright_notice_is_not_the_content_of_a_short_page() -> None:
    """On a page of short lines, the footer's copyright notice, its one long line, is not
    taken for the content: the page's lines are kept."""
    lines = ["Members only", "Sign in to read", "Forgot your password?"]
    html = (
        "<html><body><div>" + "".join(f"<p>{line}</p>" for line in lines) + "</div>"
        "<div><p>© 2006 The Association of Valley Gardeners, all rights reserved.</p></div>"
        "</body></html>"
    )
    assert lines == paragraphs_from_html(html)[:3]


def test_sentence_about_copyright_is_prose() -> None:
    """Only a notice's own start makes one: an article about copyright is an article."""
    article = [
        "Copyright law protects the songs of the band, the court said on Tuesday afternoon.",
        "All rights reserved by the label were returned to the singer after a long dispute.",
        *ARTICLE[:2],
    ]
    html = page("<article>" + "".join(f"<p>{p}</p>" for p in article) + "</article>")
    assert [*article[:2], *expected_article()[:2]] == paragraphs_from_html(html)


def test_widening_stops_at_the_block_the_page_names_its_article() -> None:
    """Prose outside a block named like the article (blurbs, the writer's other pieces) is
    not taken for spread content: the page says where its article ends."""
    blurbs = "".join(
        f"<div><p>Another piece by the same writer, number {n}, about the valley and its "
        f"people, with a comma or two.</p></div>"
        for n in range(8)
    )
    tags = "".join(f"<a href='/t/{n}'>Tag {n}</a> " for n in range(6))
    body = f"<p>{ARTICLE[0]}</p><p>{ARTICLE[2]}</p>"
    html = f"<html><body><div class='story'><div>{tags}</div><div>{body}</div></div>{blurbs}"
    assert [ARTICLE[0], ARTICLE[2]] == paragraphs_from_html(html + "</body></html>")


def test_anchor_without_href_used_as_a_button_is_still_a_link() -> None:
    """Only a named anchor is no link: ``<a role=button>`` share buttons stay link text."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE)
    share = "".join(
        f"<a role='button' class='btn'>Share to network number {n}</a>" for n in range(3)
    )
    html = page(f"<article>{body}<div>{share}</div></article>")
    assert expected_article() == paragraphs_from_html(html)


def test_blocks_and_paragraphs_with_the_hidden_class_are_dropped() -> None:
    """``class="hidden"`` hides a block as ``display: none`` does, and a paragraph or list item
    it names is dropped too; a class that merely contains the word (``hidden-xs``) hides
    nothing."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE)
    hidden = (
        "<p class='date hidden'>Posted at 12:05 AM ET, 11/01/2011, by the editors</p>"
        "<div class='excerpt hidden'><p>A hidden excerpt of the story, with a comma, long "
        "enough to count as prose.</p></div><ul><li class=hidden>A hidden item of the list, "
        "long enough to be read</li></ul>"
    )
    shown = "<p class='hidden-xs'>A line shown on wide screens, long enough to count.</p>"
    expected = [*expected_article(), "A line shown on wide screens, long enough to count."]
    assert expected == paragraphs_from_html(page(f"<article>{hidden}{body}{shown}</article>"))


def test_comment_bodies_named_like_an_article_are_comments() -> None:
    """A class that names a comment's body (``comments-body``, ``comment-content``) is a
    comment, even with no thread around the comments to say so."""
    post = "".join(f"<p>{p}</p>" for p in ARTICLE[:2])
    comments = "".join(
        f"<div class='{name}'><p>Reader {n} writes: the bridge will change the valley, I think, "
        "and I would like to know who pays for the road to it, and when the work starts.</p>"
        "</div>"
        for n, name in enumerate(["comments-body", "comment-content"] * 4)
    )
    html = page(f"<div class='entry'>{post}</div>{comments}").replace(COMMENTS, "")
    assert expected_article()[:2] == paragraphs_from_html(html)


def test_form_holding_most_of_the_prose_is_the_page() -> None:
    """A form holding most of the page's prose (a list of classified ads with boxes to tick)
    is kept even where menus of short lines outweigh it in characters."""
    menu = "<div><ul>" + "".join(f"<li><a href='/c/{n}'>Category {n}</a></li>" for n in range(60))
    ads = "".join(
        f"<table><tr><td>12-{n:02d}-06</td><td><p>Help wanted number {n}: a school crossing "
        "guard, apply in person at the borough office.</p></td><td><input type=checkbox>"
        "</td></tr></table>"
        for n in range(4)
    )
    html = f"<html><body>{menu}</ul></div><form action='cart'>{ads}</form></body></html>"
    found = paragraphs_from_html(html)
    assert 4 == sum(line.startswith("Help wanted") for line in found)
    assert not any(line.startswith("Category") for line in found)


def test_caption_holding_paragraphs_is_text() -> None:
    """A block named like a caption that holds several paragraphs (a photo blog's text under
    each picture) is the article's text, not a caption."""
    text = "".join(f"<p>{p}</p>" for p in ARTICLE[:3])
    post = f"<div class='caption-image'><img src='a.jpg'><div>{text}</div></div>"
    assert expected_article()[:3] == paragraphs_from_html(page(f"<article>{post}</article>"))


def test_long_gallery_beside_the_article_is_dropped() -> None:
    """A gallery holding most of the page's prose (fifty pictures, each with its story) is
    still a gallery, not the article's wrapper."""
    body = "".join(f"<p>{p}</p>" for p in ARTICLE)
    slides = "".join(
        f"<li><img src='{n}.jpg'><p>{n}/30 A picture of the week, with a caption long enough, "
        f"and with a comma, to read like a paragraph of its own.</p></li>"
        for n in range(30)
    )
    gallery = f"<div class='gallery'><ul>{slides}</ul></div>"
    assert expected_article() == paragraphs_from_html(page(f"<article>{body}{gallery}</article>"))
