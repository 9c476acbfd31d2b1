"""Documents for the benchmarks, built from the article bodies of the shared corpus.

The corpus holds 274 real articles (a median of 18 paragraphs); benchmarks need thousands of
distinct documents. Document ``i`` is derived from one article, deterministically from
``(seed, i)`` so that processes can build disjoint ranges: a window of at most
``MAX_PARAGRAPHS`` consecutive paragraphs, a share of its words replaced by words drawn from
the whole corpus (so derived documents are not near duplicates of each other, and their
paragraphs are mostly distinct, as in a real crawl), sent as an HTML fragment of ``<p>``
paragraphs the way scrapers send bodies. Some documents carry a template paragraph from a
shared pool (boilerplate), some are lightly edited copies of earlier ones (near
duplicates), a few hold their body twice (an extractor bug).
"""

from __future__ import annotations

import html
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_PARAGRAPHS = 30
"""Long articles are cut to a window of this many paragraphs (the corpus median is 18)."""
MUTATE = 0.3
"""Share of words replaced in a derived document."""
NEAR_SHARE = 0.05
"""Share of documents that are an earlier document with ``NEAR_EDIT`` of its words changed."""
NEAR_EDIT = 0.03
BOILERPLATE_SHARE = 0.3
"""Share of documents that end with one paragraph from a pool of template paragraphs."""
BOILERPLATE_POOL = 40
DOUBLED_SHARE = 0.01
"""Share of documents whose body appears twice."""


class CorpusMissingError(RuntimeError):
    """The corpus folder is not where the benchmark was told to look."""


@dataclass(frozen=True)
class Corpus:
    """Articles as lists of tokenised paragraphs, and a pool of words to draw from."""

    articles: list[list[list[str]]]
    words: npt.NDArray[np.object_]
    boilerplate: list[list[str]]

    @property
    def paragraph_counts(self) -> list[int]:
        """Paragraphs of each article, capped as derived documents cap them."""
        return [min(len(a), MAX_PARAGRAPHS) for a in self.articles]


def load(folder: Path) -> Corpus:
    """Read ``truth/<source>/<stem>.txt`` (paragraphs separated by blank lines)."""
    truth = folder / "truth"
    files = sorted(truth.glob("*/*.txt")) if truth.is_dir() else []
    if not files:
        raise CorpusMissingError(
            f"no article bodies under {truth}: pass --corpus PATH (the shared corpus folder "
            "with truth/<source>/<stem>.txt)"
        )
    articles = []
    for file in files:
        text = file.read_text(encoding="utf-8")
        paragraphs = [p.split() for p in text.split("\n\n") if p.strip()]
        if paragraphs:
            articles.append(paragraphs)
    words = np.array([w for a in articles for p in a for w in p], dtype=object)
    rng = np.random.default_rng(7)
    short = [p for a in articles for p in a if 8 <= len(p) <= 40]
    pool = [short[i] for i in rng.choice(len(short), BOILERPLATE_POOL, replace=False)]
    return Corpus(articles, words, pool)


def _mutate(
    paragraphs: list[list[str]], share: float, words: npt.NDArray[np.object_], rng: Any
) -> list[list[str]]:
    sizes = [len(p) for p in paragraphs]
    flat = np.array([w for p in paragraphs for w in p], dtype=object)
    mask = rng.random(len(flat)) < share
    flat[mask] = words[rng.integers(0, len(words), int(mask.sum()))]
    bounds = np.cumsum([0, *sizes])
    return [list(flat[bounds[k] : bounds[k + 1]]) for k in range(len(sizes))]


def paragraphs(corpus: Corpus, index: int, seed: int = 1) -> list[list[str]]:
    """The paragraphs (as words) of derived document ``index``."""
    rng = np.random.default_rng((seed, index))
    if index > 0 and rng.random() < NEAR_SHARE:
        source = int(rng.integers(0, index))
        return _mutate(paragraphs(corpus, source, seed), NEAR_EDIT, corpus.words, rng)
    article = corpus.articles[int(rng.integers(0, len(corpus.articles)))]
    start = int(rng.integers(0, max(1, len(article) - MAX_PARAGRAPHS + 1)))
    body = _mutate(article[start : start + MAX_PARAGRAPHS], MUTATE, corpus.words, rng)
    if rng.random() < BOILERPLATE_SHARE:
        body.append(corpus.boilerplate[int(rng.integers(0, BOILERPLATE_POOL))])
    if rng.random() < DOUBLED_SHARE:
        body = body + body
    return body


def doc_id(index: int, prefix: str = "doc") -> str:
    """The id of derived document ``index``."""
    return f"{prefix}-{index:08d}"


def url(index: int) -> str:
    """A URL of typical length for derived document ``index``."""
    return f"https://news{index % 997}.example.com/2025/11/article-headline-words-{index}"


def document(corpus: Corpus, index: int, seed: int = 1, prefix: str = "doc") -> dict[str, Any]:
    """Derived document ``index`` as a submission payload: ``{"id", "url", "html"}``."""
    body = "".join(
        f"<p>{html.escape(' '.join(words))}</p>" for words in paragraphs(corpus, index, seed)
    )
    return {"id": doc_id(index, prefix), "url": url(index), "html": body}


def documents(
    corpus: Corpus, start: int, count: int, seed: int = 1, prefix: str = "doc"
) -> Iterator[dict[str, Any]]:
    """Derived documents ``start`` to ``start + count - 1``."""
    for index in range(start, start + count):
        yield document(corpus, index, seed, prefix)


def load_or_say(path: Path) -> Corpus | None:
    """The corpus at ``path``, or None once one line on stderr has said why not."""
    try:
        return load(path)
    except CorpusMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
