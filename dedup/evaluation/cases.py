"""The documents an evaluation submits, each with what a right answer looks like.

Built from the corpus with a fixed seed (each article draws from its own generator, so a case
does not change when ``--limit`` changes). Three groups, each indexed in its own namespace so
that one group's copies do not turn another group's paragraphs into boilerplate:

- ``internal``: every body alone (an HTML fragment of ``<p>``) and every whole page, which must
  stay unflagged; the body twice (exactly, with debris between the copies, with a lightly
  edited second copy), three times, a page whose article block is pasted twice, which must be
  ``doubled_body``; the last one to three paragraphs appended again, which must be an
  ``internal_repeat`` and not a ``doubled_body``.
- ``near``: each body with variants of it (words substituted, sentences dropped or appended,
  paragraphs reordered, edited for another site, its captured page, the body inside another
  site's page), at most ``boilerplate_min_documents - 1`` documents per article; captures of
  one article (bodies alike) form one story. Documents of different stories must never be
  near duplicates. Each document carries a fetch time: a story's original (the body of its
  first article) is fetched before every other document of its story, so it is the canonical
  copy the ``earliest`` rule must pick when the story's copies are grouped.
- ``boilerplate``: each body, most with one sign-up blurb or ``Read | ...`` line inserted,
  each such paragraph into many articles: reported as boilerplate, never a reason to match.
- ``excerpt`` (run with ``near_paragraphs`` on): each body, and for each a copy of two to four
  of its paragraphs, one or two words changed in each, inside another story's body; most
  documents end with a copyright line whose year varies. Each copied paragraph must list its
  source, no paragraph may list one of another story, and the line must be boilerplate.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dedup.evaluation import edits, pages
from dedup.evaluation.corpus import Article, jaccard, shingles
from dedup.evaluation.extraction import COVERED
from dedup.pipeline.extract import extract_paragraphs
from dedup.pipeline.repeats import MIN_RUN_WORDS
from dedup.pipeline.text import words

INTERNAL, NEAR, BOILERPLATE, EXCERPT = "internal", "near", "boilerplate", "excerpt"
GROUPS = (INTERNAL, NEAR, BOILERPLATE, EXCERPT)
TEMPLATE = -1
"""The origin of a template line (``Case.origins``): no story."""
TEMPLATE_LINE = (
    "\u00a9 {year} Example Media Group. All rights reserved. Reproduction in whole or in part "
    "without permission is prohibited."
)
"""A site's closing line whose year varies between pages: boilerplate by its near copies."""
DOUBLED_KINDS = ("doubled_exact", "doubled_debris", "doubled_edited", "tripled", "doubled_page")
CLEAN_KINDS = ("clean_body", "clean_page")
SUBSTITUTE_SHARES = (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2)
"""Shares of words substituted: 3-word-shingle Jaccard from about 0.98 down to 0.3."""
SAME_STORY = 0.5
"""Two corpus bodies at least this alike (Jaccard) are captures of one article."""
PAGE_COVERAGE = COVERED
FETCHED = datetime(2020, 1, 1, tzinfo=UTC)
"""Fetch time of the first original of the near group; its copies come a day later."""


@dataclass
class Case:
    """One document to submit, with what it is."""

    doc_id: str
    group: str
    kind: str
    article: int
    """Index of the article the case was made from."""
    story: int
    """Articles captured from one article share a story; documents of two stories differ."""
    body: str
    content: list[str] = field(default_factory=list)
    """The article text the document carries, for the measured Jaccard similarity."""
    inserted_at: int | None = None
    """Boilerplate cases: index of the inserted paragraph."""
    repeated: int = 0
    """Partial repeats: closing paragraphs appended again."""
    origins: list[tuple[int, int]] = field(default_factory=list)
    """Excerpt group: per paragraph, the story and paragraph number it comes from (story
    :data:`TEMPLATE` for the template line)."""
    copied: list[int] = field(default_factory=list)
    """Excerpt cases: the paragraphs copied, edited, from another story."""
    fetched_at: str | None = None
    """Near group: when the document was fetched (originals before their copies)."""
    edits: list[str] = field(default_factory=list)
    """Short texts: the small edits made to the copy."""
    language: str = ""
    """Languages group: the language of the text (a CLDR code); structured pages: the kind."""


@dataclass
class CaseSet:
    """All cases of one evaluation, and what could not be built."""

    cases: list[Case]
    articles: list[Article]
    stories: list[int]
    skipped: Counter[str]


def _stories(articles: list[Article]) -> list[int]:
    """Story number of each article: captures of the same article share one."""
    sets = [shingles(a.paragraphs) for a in articles]
    story = list(range(len(articles)))
    for i in range(len(articles)):
        for j in range(i):
            if story[j] == j and jaccard(sets[i], sets[j]) >= SAME_STORY:
                story[i] = story[j]
                break
    return story


def _partial_size(paragraphs: list[str], rng: random.Random) -> int:
    """How many closing paragraphs to repeat: 1-3, at least a run's worth of words, under a
    third of the body (more would be most of a short body: a doubled body, not a partial one).
    """
    total = sum(len(words(p)) for p in paragraphs)
    fits = []
    for k in range(1, min(3, len(paragraphs) - 1) + 1):
        repeated = sum(len(words(p)) for p in paragraphs[-k:])
        if MIN_RUN_WORDS <= repeated < total / 3:
            fits.append(k)
    return rng.choice(fits) if fits else 0


def _internal(
    index: int, article: Article, covered: bool, rng: random.Random, pool: list[str]
) -> tuple[list[Case], Counter[str]]:
    paragraphs = article.paragraphs
    body = edits.as_html(paragraphs)
    story = index

    def case(kind: str, html: str) -> Case:
        return Case(f"{kind}.{index}", INTERNAL, kind, index, story, html)

    copy = edits.light_copy(paragraphs, rng, pool)
    out = [
        case("clean_body", body),
        case("clean_page", article.page()),
        case("doubled_exact", body + "\n" + body),
        case(
            "doubled_debris",
            edits.debris_html(paragraphs, rng)
            + rng.choice(edits.DEBRIS)
            + edits.debris_html(paragraphs, rng),
        ),
        case("doubled_edited", body + rng.choice(edits.DEBRIS) + edits.as_html(copy)),
        case("tripled", "\n".join([body] * 3)),
    ]
    skipped: Counter[str] = Counter()
    page = pages.doubled(article.page(), paragraphs) if covered else None
    if page is not None:
        out.append(case("doubled_page", page))
    else:
        skipped["doubled_page: the page lacks the body, or its block was not found"] += 1
    repeat = _partial_size(paragraphs, rng)
    if repeat:
        out.append(case("partial_repeat", edits.as_html(paragraphs + paragraphs[-repeat:])))
        out[-1].repeated = repeat
    else:
        skipped["partial_repeat: no closing run of 10 words under a third of the body"] += 1
    return out, skipped


def _near(
    index: int,
    articles: list[Article],
    story: int,
    alone: bool,
    covered: list[bool],
    rng: random.Random,
    pool: list[str],
    budget: int,
) -> tuple[list[Case], Counter[str]]:
    """The article's body, its page, and (for an article captured once) variants of it."""
    article = articles[index]
    paragraphs = article.paragraphs
    skipped: Counter[str] = Counter()
    out = [Case(f"original.{index}", NEAR, "original", index, story, edits.as_html(paragraphs))]
    out[0].content = paragraphs
    if covered[index]:
        out.append(Case(f"page.{index}", NEAR, "page", index, story, article.page(), paragraphs))
    else:
        skipped["page: the capture lacks the body"] += 1
    if not alone:
        return _fetch_times(index, out), skipped
    other = articles[rng.randrange(len(articles))].paragraphs
    shares = rng.sample(SUBSTITUTE_SHARES, 2)
    variants = [
        (f"substitute_{shares[0]:g}", edits.substitute(paragraphs, shares[0], rng, pool)),
        (f"substitute_{shares[1]:g}", edits.substitute(paragraphs, shares[1], rng, pool)),
        ("drop_sentences", edits.drop_sentences(paragraphs, rng)),
        ("append_sentences", edits.append_sentences(paragraphs, rng, other)),
        ("reorder", edits.reorder(paragraphs, rng)),
        ("edited", edits.edited(paragraphs, rng, pool)),
    ]
    for n, (kind, text) in enumerate(variants):
        html = edits.as_html(text)
        out.append(Case(f"{kind}.{index}.{n}", NEAR, kind, index, story, html, text))
    hosts = [i for i, a in enumerate(articles) if a.host != article.host and covered[i]]
    for target in rng.sample(hosts, min(len(hosts), 5)):
        host = articles[target]
        moved = pages.with_body(host.page(), host.paragraphs, edits.as_html(paragraphs))
        if moved is not None:
            doc_id = f"transplant.{index}"
            out.append(Case(doc_id, NEAR, "transplant", index, story, moved, paragraphs))
            break
    else:
        skipped["transplant: no other page to put the body in"] += 1
    return _fetch_times(index, out[:budget]), skipped


def _fetch_times(index: int, out: list[Case]) -> list[Case]:
    """Fetch times: the original of article ``index`` at second ``index`` of the first day
    (the first article of a story is fetched first), every other document the day after."""
    for n, case in enumerate(out):
        seconds = index if case.kind == "original" else 86_400 + 16 * index + n
        case.fetched_at = (FETCHED + timedelta(seconds=seconds)).isoformat()
    return out


def _boilerplate(
    articles: list[Article], stories: list[int], threshold: int, rng: random.Random
) -> list[Case]:
    """Every body; two in three (at least ``threshold``) with one paragraph others carry too.

    With fewer articles than ``threshold`` nothing can become boilerplate: no paragraph is
    inserted, and the case is reported as skipped.
    """
    chosen = [i for i in range(len(articles)) if rng.random() < 2 / 3]
    if len(chosen) < threshold:
        chosen = list(range(threshold)) if len(articles) >= threshold else []
    titles = [" ".join(articles[i].paragraphs[0].split()[:10]) for i in range(len(articles))]
    pool = list(edits.SIGNUPS) + [f"Read | {rng.choice(titles)}" for _ in range(4)]
    count = max(1, min(len(pool), len(chosen) // (2 * threshold)))
    blurbs = rng.sample(pool, count)
    cases = []
    for index, article in enumerate(articles):
        paragraphs = list(article.paragraphs)
        inserted_at = None
        if index in chosen:
            blurb = blurbs[chosen.index(index) % count]
            position = (
                len(paragraphs) if blurb in edits.SIGNUPS else rng.randint(1, len(paragraphs))
            )
            paragraphs.insert(position, blurb)
            found = extract_paragraphs(edits.as_html(paragraphs), "html")
            inserted_at = found.index(blurb) if blurb in found else None
        html = edits.as_html(paragraphs)
        case = Case(f"body.{index}", BOILERPLATE, "boilerplate", index, stories[index], html)
        case.inserted_at = inserted_at
        case.kind = "with_boilerplate" if inserted_at is not None else "plain"
        cases.append(case)
    return cases


EXCERPT_MIN_WORDS = 12
"""Paragraphs copied into an excerpt: long enough that a word or two changed keeps them at a
word Jaccard near 0.8 or above, as a quoted paragraph is."""


def _excerpt_span(paragraphs: list[str], rng: random.Random) -> tuple[int, int] | None:
    """Two to four consecutive paragraphs of at least :data:`EXCERPT_MIN_WORDS` words each."""
    size = rng.randint(2, 4)
    for length in range(size, 1, -1):
        starts = [
            s
            for s in range(len(paragraphs) - length + 1)
            if all(len(words(p)) >= EXCERPT_MIN_WORDS for p in paragraphs[s : s + length])
        ]
        if starts:
            return rng.choice(starts), length
    return None


def _excerpts(
    articles: list[Article], stories: list[int], seed: int, pool: list[str]
) -> tuple[list[Case], Counter[str]]:
    """Each body, and an excerpt of it (edited) inside another story's body; the template line
    closes two documents in three, its year one of four."""
    skipped: Counter[str] = Counter()
    cases: list[Case] = []
    for index, article in enumerate(articles):
        paragraphs = list(article.paragraphs)
        origins = [(stories[index], k) for k in range(len(paragraphs))]
        cases.append(Case(f"source.{index}", EXCERPT, "source", index, stories[index], ""))
        cases[-1].content, cases[-1].origins = paragraphs, origins
    for index, article in enumerate(articles):
        rng = random.Random(f"{seed}:excerpt:{article.name}")
        hosts = [i for i in range(len(articles)) if stories[i] != stories[index]]
        span = _excerpt_span(article.paragraphs, rng)
        if not hosts or span is None:
            skipped["excerpt: no other story, or no two paragraphs of 12 words"] += 1
            continue
        start, length = span
        host = rng.choice(hosts)
        copied = [
            edits.change_words(p, rng.randint(1, 2), rng, pool)
            for p in article.paragraphs[start : start + length]
        ]
        body = list(articles[host].paragraphs)
        at = rng.randint(1, len(body))
        paragraphs = body[:at] + copied + body[at:]
        origins = [(stories[host], k) for k in range(at)]
        origins += [(stories[index], start + k) for k in range(length)]
        origins += [(stories[host], k) for k in range(at, len(body))]
        case = Case(f"excerpt.{index}", EXCERPT, "excerpt", index, stories[index], "")
        case.content, case.origins = paragraphs, origins
        case.copied = list(range(at, at + length))
        cases.append(case)
    for case in cases:
        rng = random.Random(f"{seed}:template:{case.doc_id}")
        if rng.random() < 2 / 3:
            line = TEMPLATE_LINE.format(year=rng.choice((2019, 2020, 2021, 2022)))
            case.content = [*case.content, line]
            case.origins = [*case.origins, (TEMPLATE, 0)]
            case.inserted_at = len(case.content) - 1
        case.body = edits.as_html(case.content)
        if len(extract_paragraphs(case.body, "html")) != len(case.content):
            case.origins = []  # paragraphs merged or split: not judged
            skipped["excerpt: extraction changed the paragraphs"] += 1
    return cases, skipped


def build(
    articles: list[Article], coverage: list[float], seed: int, boilerplate_min_documents: int
) -> CaseSet:
    """Every case of an evaluation of these articles.

    ``coverage`` is, per article, the share of its body's shingles its page's full text holds:
    a page without its body cannot stand for it.
    """
    stories = _stories(articles)
    sizes = Counter(stories)
    pool = edits.word_pool([p for a in articles for p in a.paragraphs])
    cases: list[Case] = []
    skipped: Counter[str] = Counter()
    budget = max(2, boilerplate_min_documents - 1)
    covered = [c >= PAGE_COVERAGE for c in coverage]
    for index, article in enumerate(articles):
        rng = random.Random(f"{seed}:{article.name}")
        internal, missing = _internal(index, article, covered[index], rng, pool)
        near, missing_near = _near(
            index,
            articles,
            stories[index],
            sizes[stories[index]] == 1,
            covered,
            rng,
            pool,
            budget,
        )
        cases += internal + near
        skipped += missing + missing_near
    rng = random.Random(f"{seed}:boilerplate")
    cases += _boilerplate(articles, stories, boilerplate_min_documents, rng)
    excerpts, missing = _excerpts(articles, stories, seed, pool)
    cases += excerpts
    skipped += missing
    if len(articles) < boilerplate_min_documents:
        skipped["boilerplate: fewer articles than boilerplate_min_documents"] += 1
    return CaseSet(cases, articles, stories, skipped)
