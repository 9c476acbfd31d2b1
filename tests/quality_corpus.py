"""A small evaluation corpus made here: synthetic articles inside two sites' page templates.

Laid out like the shared corpus (manifest.csv, pages/**.html.gz, truth/**.txt), so that the
evaluation runs on it unchanged. Each template has what real pages have around an article:
a menu, a cookie banner, a byline and share links, related stories with teasers, a comment
thread and a footer; site B splits its article over one block per paragraph; site C puts its
whole body in one ``<form>``, as ASP.NET WebForms do. The first article is captured twice,
once on site A and once on site B: a known pair.
"""

from __future__ import annotations

import csv
import gzip
import html
import random
from pathlib import Path

from tests.helpers import article, paragraph

SOURCE = "synthetic"


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _related(rng: random.Random) -> str:
    items = "".join(
        f'<li><a href="/story/{n}">{_escape(paragraph(rng, 8))}</a>'
        f"<p>{_escape(paragraph(rng, 22))}</p></li>"
        for n in range(5)
    )
    return f'<section class="more-news"><h2>More news</h2><ul>{items}</ul></section>'


def _comments(rng: random.Random) -> str:
    comments = "".join(
        f'<div class="comment"><p class="author">Reader {n}</p>'
        f"<p>{_escape(paragraph(rng, 35))}</p><a href='#reply'>Reply</a></div>"
        for n in range(4)
    )
    return f'<div id="comments"><h3>Comments</h3>{comments}</div>'


def page_a(title: str, body: list[str], seed: int) -> str:
    """Site A: semantic markup, the article in one ``<article>`` block."""
    rng = random.Random(f"a{seed}")
    paragraphs = "".join(f"<p>{_escape(p)}</p>" for p in body)
    return (
        "<!doctype html><html><head><title>" + _escape(title) + " | Site A</title>"
        "<script>var tracking = {page: 1};</script><style>p {margin: 0}</style></head><body>"
        '<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>'
        '<div class="cookie-consent"><p>We use cookies to give you the best experience on our '
        'website and to show you relevant adverts.</p><a href="/ok">Accept all cookies</a></div>'
        f'<article class="post"><h1>{_escape(title)}</h1>'
        '<div class="byline">By Staff Writer, <a href="/authors/staff">Site A</a></div>'
        f'<div class="entry-content">{paragraphs}</div>'
        '<div class="share-links"><a href="/share/fb">Facebook</a> '
        '<a href="/share/tw">Twitter</a> <a href="/share/mail">Email</a></div></article>'
        f"{_related(rng)}{_comments(rng)}"
        "<footer><p>Copyright Site A. All rights reserved.</p><p>Site A is published by the "
        "Site A Media Group in the city of Examplestad since nineteen ninety.</p></footer>"
        "</body></html>"
    )


def page_b(title: str, body: list[str], seed: int) -> str:
    """Site B: div soup, a menu in a list, one block per paragraph of the article."""
    rng = random.Random(f"b{seed}")
    blocks = "".join(f'<div class="para-wrap"><div><p>{_escape(p)}</p></div></div>' for p in body)
    menu = "".join(f'<li><a href="/section/{n}">Section {n}</a></li>' for n in range(8))
    return (
        "<!DOCTYPE html><html><body>"
        f'<div id="top"><div class="menu"><ul>{menu}</ul></div></div>'
        '<div class="page"><div class="main-column">'
        f'<div class="headline"><h1>{_escape(title)}</h1><span>12 May 2024</span></div>'
        f'<div class="story">{blocks}</div>'
        '<div class="newsletter-signup"><p>Sign up to the Site B daily newsletter to get the '
        "news before anyone else does, every single morning.</p></div></div>"
        f'<div class="sidebar">{_related(rng)}</div></div>'
        f"{_comments(rng)}"
        '<div class="site-footer"><p>Site B, the paper of record of the northern valleys and '
        "their villages, with offices in every town.</p><a href='/about'>About us</a></div>"
        "</body></html>"
    )


def page_c(title: str, body: list[str], seed: int) -> str:
    """Site C: the whole body in one form (ASP.NET WebForms), menus in header and nav inside it."""
    rng = random.Random(f"c{seed}")
    paragraphs = "".join(f"<p>{_escape(p)}</p>" for p in body)
    menu = "".join(f'<li><a href="/topics/{n}">Topic {n}</a></li>' for n in range(10))
    return (
        "<html><head><title>" + _escape(title) + " | Site C</title></head><body>"
        '<form method="post" action="./story.aspx" id="form1">'
        '<input type="hidden" name="__VIEWSTATE" id="__VIEWSTATE" value="dDwtMTA4MTc2">'
        f'<header><div class="site-menu"><ul>{menu}</ul></div></header>'
        '<nav><ul><li>TRENDING:</li><li><a href="/t/1">Elections</a></li></ul></nav>'
        '<div class="main-content"><article id="main-article-block" class="main-article-block">'
        f"<h1>{_escape(title)}</h1>{paragraphs}</article></div>"
        f"{_related(rng)}{_comments(rng)}"
        "<footer><p>Site C, news from the coast and the islands, every hour of the day and "
        "night.</p><p>Copyright Site C Broadcasting. All rights reserved.</p></footer>"
        "</form></body></html>"
    )


def write(folder: Path, count: int = 16) -> Path:
    """Write a corpus of ``count`` articles (and a second capture of the first) to ``folder``."""
    rows = []
    (folder / "pages" / SOURCE).mkdir(parents=True, exist_ok=True)
    (folder / "truth" / SOURCE).mkdir(parents=True, exist_ok=True)
    entries = [(n, "abc"[n % 3]) for n in range(count)] + [(0, "b")]
    for n, site in entries:
        body = article(1000 + n, random.Random(n).randint(4, 14))
        title = " ".join(body[0].split()[:7])
        page = {"a": page_a, "b": page_b, "c": page_c}[site](title, body, n)
        name = f"article-{n:02d}-{site}"
        page_path = f"pages/{SOURCE}/{name}.html.gz"
        truth_path = f"truth/{SOURCE}/{name}.txt"
        (folder / page_path).write_bytes(gzip.compress(page.encode("utf-8")))
        (folder / truth_path).write_text("\n\n".join(body) + "\n", encoding="utf-8")
        host = f"site-{site}.example"
        rows.append(
            {
                "page": page_path,
                "source": SOURCE,
                "url": f"https://{host}/{name}",
                "host": host,
                "site": host,
                "truth": truth_path,
                "truth_kind": "synthetic",
                "bytes": len(page),
            }
        )
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder
