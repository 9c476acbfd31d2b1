"""Synthetic analyses: fill an index to 100k or 1M documents in minutes, not hours.

Analysing a document costs milliseconds of Python and does not depend on the index size, so
growth runs fill the store with ready-made :class:`~dedup.pipeline.analysis.Analysis` objects
written through the real :meth:`dedup.index.store.Store.index`: the paragraph and word counts of
a corpus article window, random 64-bit paragraph fingerprints (over the full range: the store
buckets them by their top bits) and random signature rows (as unrelated documents have), and the
same shares of template paragraphs, near copies and doubled bodies as :mod:`bench.corpus`;
with ``near_paragraphs`` on, the near-copy pieces of each signed paragraph too. Real
text through the whole pipeline has more boilerplate than these (docs/BENCHMARKS.md compares the
two at 10k).
"""

from __future__ import annotations

import numpy as np
import xxhash

from bench import corpus as corpus_
from dedup.pipeline.analysis import Analysis
from dedup.pipeline.document import Document
from dedup.pipeline.repeats import Repeat, Repeats
from dedup.settings import Settings

_BOILERPLATE_FPS = [
    xxhash.xxh64_intdigest(f"template paragraph {k}".encode())
    for k in range(corpus_.BOILERPLATE_POOL)
]
"""Fingerprints of the template paragraphs: spread like real ones (the store keeps their top
48 bits, so values differing in the low bits alone would be one paragraph)."""


def _rows(rng: np.random.Generator, count: int, num_perm: int) -> np.ndarray:
    return rng.integers(0, 2**32, (count, num_perm), dtype=np.uint32, endpoint=False)


def _parts(
    corpus: corpus_.Corpus, index: int, seed: int, num_perm: int
) -> tuple[list[int], list[int], np.ndarray, bool]:
    """Word counts, fingerprints, signature rows and doubled flag of document ``index``."""
    rng = np.random.default_rng((seed, index, 99))
    if index > 0 and rng.random() < corpus_.NEAR_SHARE:
        counts, fps, rows, doubled = _parts(corpus, int(rng.integers(0, index)), seed, num_perm)
        rows = rows.copy()
        edited = int(rng.integers(0, len(rows)))
        rows[edited] = _rows(rng, 1, num_perm)[0]
        fps = list(fps)
        fps[edited] = int(rng.integers(0, 2**64, dtype=np.uint64))
        return counts, fps, rows, doubled
    article = corpus.articles[int(rng.integers(0, len(corpus.articles)))]
    start = int(rng.integers(0, max(1, len(article) - corpus_.MAX_PARAGRAPHS + 1)))
    counts = [len(p) for p in article[start : start + corpus_.MAX_PARAGRAPHS]]
    fps = [int(x) for x in rng.integers(0, 2**64, len(counts), dtype=np.uint64)]
    rows = _rows(rng, len(counts), num_perm)
    if rng.random() < corpus_.BOILERPLATE_SHARE:
        pick = int(rng.integers(0, corpus_.BOILERPLATE_POOL))
        counts.append(len(corpus.boilerplate[pick]))
        fps.append(_BOILERPLATE_FPS[pick])
        rows = np.vstack([rows, np.random.default_rng(pick).integers(0, 2**32, (1, num_perm))])
    doubled = bool(rng.random() < corpus_.DOUBLED_SHARE)
    return counts, fps, rows.astype(np.uint32), doubled


def _pieces(fingerprint: int, words: int) -> tuple[int, ...]:
    """Near-copy piece keys as :func:`dedup.pipeline.analysis.paragraph_pieces` keeps them
    (the two smallest of three, or of two for a paragraph too short for a middle), drawn
    from the fingerprint: a paragraph and its copies share them, template paragraphs too."""
    size = max(3, words // 3)
    tags = (0, 1, 2) if words - 2 * size >= 3 else (0, 2)
    seed = fingerprint.to_bytes(8, "little")
    return tuple(sorted(xxhash.xxh64_intdigest(seed + bytes([tag])) for tag in tags)[:2])


def analysis(
    corpus: corpus_.Corpus, index: int, settings: Settings, seed: int = 1, prefix: str = "syn"
) -> Analysis:
    """A ready-made analysis of synthetic document ``index``."""
    counts, fps, rows, doubled = _parts(corpus, index, seed, settings.num_perm)
    size = len(counts)
    runs: list[Repeat] = []
    if doubled:
        counts, fps, rows = counts * 2, fps * 2, np.vstack([rows, rows])
        runs = [Repeat((0, size - 1), (size, 2 * size - 1), 1.0)]
    paragraphs = [f"paragraph {k} of {count} words" for k, count in enumerate(counts)]
    content = np.array(fps, dtype=np.uint64).tobytes()
    signed = [c >= settings.min_paragraph_words for c in counts]
    pieces = None
    if settings.near_paragraphs:  # what analyse() adds with the setting on
        pieces = [_pieces(fp, c) if s else () for fp, c, s in zip(fps, counts, signed, strict=True)]
    return Analysis(
        document=Document(corpus_.doc_id(index, prefix), "", corpus_.url(index), "html"),
        paragraphs=paragraphs,
        word_counts=counts,
        fingerprints=fps,
        signed=signed,
        paragraph_signatures=rows[:, : settings.paragraph_num_perm],
        shingle_signatures=rows,
        content_hash=f"{hash(content) & (2**64 - 1):016x}",
        repeats=Repeats(runs, 0.5 if doubled else 0.0, doubled),
        min_words=settings.min_paragraph_words,
        pieces=pieces,
    )
