"""Read an evaluation corpus: captured pages with the article body each one holds.

The layout is the one of the shared corpus: ``manifest.csv`` (one row per page, with at
least ``page`` and ``truth``, paths relative to the folder), ``pages/<source>/<name>.html.gz``
(the page as captured), ``truth/<source>/<name>.txt`` (its article body, paragraphs separated
by blank lines). The folder is only read: pages are decompressed one at a time, when a case
needs them.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

from dedup.errors import InputError
from dedup.pipeline import scripts, text

Shingle = tuple[str, ...]


@dataclass(frozen=True)
class Article:
    """One page of the corpus and the article body it holds."""

    name: str
    """``<source>/<stem>``: unique in the corpus, used in document ids."""
    host: str
    page_path: Path
    paragraphs: list[str]

    def page(self) -> str:
        """The captured page, decoded (undecodable bytes replaced)."""
        return gzip.decompress(self.page_path.read_bytes()).decode("utf-8", "replace")

    @property
    def words(self) -> int:
        """Words of the body, as dedup counts them."""
        return sum(len(text.words(p)) for p in self.paragraphs)


def shingles(paragraphs: list[str], size: int = 3) -> set[Shingle]:
    """The word shingles of a text as the document signature sees them.

    Same normalisation and words as the pipeline with the default settings
    (:mod:`dedup.pipeline.text`, :mod:`dedup.pipeline.scripts`), shingles within each
    paragraph, a paragraph shorter than ``size`` words being one shingle; exact tuples of words
    instead of hashes, so the measured Jaccard similarity has no estimation error.
    """
    out: set[Shingle] = set()
    for paragraph in paragraphs:
        words = scripts.resegment([paragraph], [text.words(paragraph)])[0]
        if not words:
            continue
        width = min(size, len(words))
        out.update(tuple(words[i : i + width]) for i in range(len(words) - width + 1))
    return out


def jaccard(first: set[Shingle], second: set[Shingle]) -> float:
    """Jaccard similarity of two shingle sets (0 when both are empty)."""
    union = len(first | second)
    return len(first & second) / union if union else 0.0


def load(folder: Path, limit: int | None = None) -> list[Article]:
    """The articles of a corpus folder, in manifest order (the first ``limit`` of them).

    Raises:
        InputError: no manifest, or a row naming a page or body that is not there.
    """
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        raise InputError(f"{folder} is not an evaluation corpus: it has no manifest.csv")
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    articles: list[Article] = []
    for number, row in enumerate(rows, 2):
        if limit is not None and len(articles) >= limit:
            break
        page, truth = row.get("page"), row.get("truth")
        if not page or not truth:
            raise InputError(f"{manifest}, line {number}: needs a page and a truth column")
        page_path, truth_path = folder / page, folder / truth
        if not page_path.is_file() or not truth_path.is_file():
            raise InputError(f"{manifest}, line {number}: {page} or {truth} is missing")
        body = truth_path.read_text(encoding="utf-8")
        paragraphs = [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]
        if not paragraphs:
            continue
        name = page.removeprefix("pages/").removesuffix(".gz").removesuffix(".html")
        articles.append(Article(name, row.get("host") or "", page_path, paragraphs))
    if not articles:
        raise InputError(f"{manifest} lists no article with a body")
    return articles
