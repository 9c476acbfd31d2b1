"""Detection quality measured on real pages: ``dedup eval CORPUS_DIR``.

Users trust a duplicate detector only if its flags are right on their own pages. This package
builds cases from a corpus of captured pages and their article bodies (doubled bodies,
partial repeats, near-duplicate copies, boilerplate, whole pages; :mod:`.cases`), runs them
through the real queue and workers against a real Redis (:mod:`.runner`), and scores the
reports (:mod:`.metrics`) and the duplicate groups of the near copies (:mod:`.groups`); it
also measures how well whole pages are cut down to their article (:mod:`.extraction`).
docs/QUALITY.md has the numbers.
"""

from __future__ import annotations

import datetime
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dedup.evaluation import beyond, cases, corpus, extraction, metrics, runner
from dedup.settings import Settings

__all__ = ["evaluate"]


def evaluate(
    folder: Path,
    settings: Settings,
    *,
    seed: int = 1,
    limit: int | None = None,
    processes: int = 2,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the cases of a corpus folder, run them through workers, and score the reports."""

    def step(message: str) -> None:
        if on_step is not None:
            on_step(message)

    started = time.monotonic()
    articles = corpus.load(folder, limit)
    step(f"{len(articles)} articles; extracting their pages")
    pages = [extraction.page_stats(a) for a in articles]
    case_set = cases.build(
        articles, [p.coverage for p in pages], seed, settings.boilerplate_min_documents
    )
    more = beyond.build(seed)
    groups: dict[str, list[cases.Case]] = defaultdict(list)
    for case in case_set.cases + more:
        groups[case.group].append(case)

    def on_group(group: str, count: int) -> None:
        step(f"{group}: {count} documents through the queue and the workers")

    overrides = {cases.EXCERPT: {"near_paragraphs": True}}
    runs = runner.run(settings, dict(groups), processes, on_group, overrides, grouped=(cases.NEAR,))
    result = metrics.score(case_set, runs)
    others = beyond.score(more, runs, settings)
    result["targets"] += metrics.target_rows(others.pop("targets"))
    result.update(others)
    result["extraction"] = extraction.summary(pages)
    result["run"] = {
        "corpus": str(folder),
        "articles": len(articles),
        "documents": len(case_set.cases) + len(more),
        "seed": seed,
        "date": datetime.date.today().isoformat(),
        "seconds": round(time.monotonic() - started, 1),
        "settings": {
            name: getattr(settings, name)
            for name in (
                "num_perm",
                "shingle_words",
                "short_document_words",
                "script_words",
                "paragraph_shingle_words",
                "paragraph_num_perm",
                "min_paragraph_words",
                "lsh_bands",
                "lsh_rows",
                "repeat_threshold",
                "near_duplicate_threshold",
                "boilerplate_min_documents",
                "near_paragraphs",
            )
        },
        "excerpt_settings": overrides[cases.EXCERPT],
    }
    return result
