"""How well whole pages are cut down to their article: body paragraphs kept, template kept.

Measured on each corpus page with the extractor's main-content selection and without it. A
paragraph counts as the body's when at least half of its shingles are in the body, and a body
paragraph as kept when at least half of its shingles are in what was extracted. Only pages
whose full text holds the body (``coverage``) can be judged: some captures never had it
(pages that load the article with scripts).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from dedup.evaluation.corpus import Article, Shingle, jaccard, shingles
from dedup.pipeline.extract import extract_paragraphs

COVERED = 0.9
"""Share of the body's shingles a page's full text must hold for the page to be judged."""


@dataclass(frozen=True)
class PageStats:
    """One page, extracted with and without main-content selection."""

    name: str
    body_paragraphs: int
    coverage: float
    kept: int
    kept_without: int
    template: int
    template_without: int
    similarity: float
    similarity_without: float
    seconds: float


def _counts(paragraphs: list[str], body: list[str], body_set: set[Shingle]) -> tuple[int, int]:
    """(body paragraphs kept, template paragraphs kept)."""
    found = shingles(paragraphs)
    kept = sum(1 for p in body if (s := shingles([p])) and len(s & found) * 2 >= len(s))
    template = sum(1 for p in paragraphs if (s := shingles([p])) and len(s & body_set) * 2 < len(s))
    return kept, template


def page_stats(article: Article) -> PageStats:
    """Extract one page both ways and compare with its body."""
    page = article.page()
    start = time.perf_counter()
    selected = extract_paragraphs(page, "html")
    seconds = time.perf_counter() - start
    full = extract_paragraphs(page, "html", main_content=False)
    body = shingles(article.paragraphs)
    kept, template = _counts(selected, article.paragraphs, body)
    kept_without, template_without = _counts(full, article.paragraphs, body)
    full_set = shingles(full)
    return PageStats(
        name=article.name,
        body_paragraphs=len(article.paragraphs),
        coverage=len(full_set & body) / len(body) if body else 0.0,
        kept=kept,
        kept_without=kept_without,
        template=template,
        template_without=template_without,
        similarity=jaccard(shingles(selected), body),
        similarity_without=jaccard(full_set, body),
        seconds=seconds,
    )


def summary(stats: list[PageStats]) -> dict[str, Any]:
    """Totals over the pages whose capture holds the body, with and without selection."""
    judged = [s for s in stats if s.coverage >= COVERED]
    body = sum(s.body_paragraphs for s in judged)

    def share(values: list[float], low: float) -> int:
        return sum(1 for v in values if v >= low)

    return {
        "pages": len(stats),
        "judged_pages": len(judged),
        "body_paragraphs": body,
        "body_kept": sum(s.kept for s in judged),
        "body_kept_without_selection": sum(s.kept_without for s in judged),
        "template_kept": sum(s.template for s in judged),
        "template_kept_without_selection": sum(s.template_without for s in judged),
        "pages_similarity_0.8": share([s.similarity for s in judged], 0.8),
        "pages_similarity_0.8_without_selection": share(
            [s.similarity_without for s in judged], 0.8
        ),
        "pages_similarity_0.9": share([s.similarity for s in judged], 0.9),
        "median_similarity": round(statistics.median([s.similarity for s in judged]), 3)
        if judged
        else 0.0,
        "median_ms": round(1000 * statistics.median([s.seconds for s in stats]), 1)
        if stats
        else 0.0,
        "worst": [
            {"page": s.name, "similarity": round(s.similarity, 3)}
            for s in sorted(judged, key=lambda s: s.similarity)[:5]
        ],
    }
