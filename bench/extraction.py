"""Main content on pages the extractor was never tuned on: dedup beside trafilatura.

``python -m bench.extraction SET_DIR [SET_DIR ...]``: each folder is a gold set in the
CleanEval layout (:mod:`dedup.evaluation.goldsets`: CleanEval, CleanPortalEval, Dragnet,
L3S-GN1), or the evaluation corpus (``manifest.csv``: the pages the extractor was tuned
on, for comparison). Every page goes through dedup's extractor
(``extract_paragraphs(page, "html")``, main-content selection as workers run it) and
through ``trafilatura.extract`` in the same process, one after the other, each timed alone;
both are scored by word F1 against the gold text. Per set: mean and median F1, pages under
0.5, mean precision and recall, mean ms per page. ``--json`` prints every number;
``--worst N`` lists each side's N lowest pages; ``--half even|odd`` takes every other page.

trafilatura is called with ``include_comments=False``: the gold sets leave comments out, as
dedup does (``--comments`` keeps them, trafilatura's default). It is not a dependency of
dedup: ``pip install 'dedup[bench]'`` (or ``pip install trafilatura``) to run this.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dedup.evaluation.goldsets import GoldPage, Score, pages_of, summary, word_f1
from dedup.pipeline.extract import extract_paragraphs

Extractor = Callable[[str], list[str]]
HALVES = ("even", "odd")
"""``--half``: the pages at even or odd positions in name order, to tune on one half of a set
and hold the other out."""


def dedup_extract(page: str) -> list[str]:
    """dedup's paragraphs of a whole page, as a worker takes them."""
    return extract_paragraphs(page, "html")


def trafilatura_extractor(favor_precision: bool, comments: bool) -> Extractor:
    """trafilatura's text of a page, in lines: its defaults but for comments, which it keeps
    by default and the gold sets (and dedup) leave out."""
    import trafilatura

    def run(page: str) -> list[str]:
        found = trafilatura.extract(
            page, favor_precision=favor_precision, include_comments=comments
        )
        return found.splitlines() if found else []

    return run


def measure(pages: list[GoldPage], extractor: Extractor) -> tuple[list[Score], list[float]]:
    """Each page's score and seconds."""
    scores, seconds = [], []
    for page in pages:
        start = time.perf_counter()
        found = extractor(page.html)
        seconds.append(time.perf_counter() - start)
        scores.append(word_f1(found, page.gold))
    return scores, seconds


def run(
    folders: list[Path], favor_precision: bool, comments: bool, worst: int, half: str | None
) -> dict[str, Any]:
    """Both extractors on every set."""
    extractors = {
        "dedup": dedup_extract,
        "trafilatura": trafilatura_extractor(favor_precision, comments),
    }
    results: dict[str, Any] = {}
    for name, pages in pages_of(folders):
        if half is not None:
            pages = pages[HALVES.index(half) :: 2]
        row: dict[str, Any] = {}
        for label, extractor in extractors.items():
            extractor(pages[0].html)  # imports and caches warm, not timed
            scores, seconds = measure(pages, extractor)
            row[label] = summary(scores, seconds)
            if worst:
                ranked = sorted(zip(scores, pages, strict=True), key=lambda pair: pair[0].f1)
                row[label]["worst"] = [
                    {"page": p.name, "f1": round(s.f1, 3), "p": round(s.precision, 3),
                     "r": round(s.recall, 3)}
                    for s, p in ranked[:worst]
                ]  # fmt: skip
        results[name] = row
    return results


def table(results: dict[str, Any]) -> str:
    """One line per set and extractor."""
    lines = [
        "set                  extractor    pages  mean F1  median  <0.5  P      R      ms/page"
    ]
    for name, row in results.items():
        for label, s in row.items():
            lines.append(
                f"{name[:20]:<20} {label:<12} {s['pages']:>5}  {s['mean_f1']:.3f}    "
                f"{s['median_f1']:.3f}  {s['under_0.5']:>4}  {s['precision']:.3f}  "
                f"{s['recall']:.3f}  {s['ms_per_page']:.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.extraction", description=__doc__)
    parser.add_argument(
        "sets", type=Path, nargs="+", help="gold set folders (input/, GoldStandard/)"
    )
    parser.add_argument("--favor-precision", action="store_true", help="trafilatura's option")
    parser.add_argument("--comments", action="store_true", help="trafilatura keeps comments")
    parser.add_argument("--half", choices=HALVES, default=None, help="every other page only")
    parser.add_argument("--worst", type=int, default=0, help="list each side's N lowest pages")
    parser.add_argument("--json", action="store_true", help="every number as JSON")
    args = parser.parse_args(argv)
    results = run(args.sets, args.favor_precision, args.comments, args.worst, args.half)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
