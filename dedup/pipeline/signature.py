"""MinHash signatures of paragraphs and documents, bit-identical to datasketch's ``MinHash``.

Building one datasketch object per paragraph costs milliseconds per document; the same
arithmetic over all shingle hashes of a document at once, with datasketch's own permutation
parameters (its ``affine32`` scheme: a MurmurHash3 pre-mix, then ``a*h + b`` mod 2^32) and a
segment minimum per paragraph, takes a fraction of that. ``tests/test_signature.py`` proves the
equality with datasketch.

A document's signature is the element-wise minimum of its paragraphs' signatures: the MinHash of
the union of their shingles.

The same arithmetic runs in a compiled kernel (``_minhash.c`` beside this file) when the package
was built with a C compiler: one pass per shingle instead of a matrix of permuted hashes,
several times faster. Without it, numpy computes the same values; :data:`KERNEL` says which one
runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from dedup.pipeline import kernel, text

SCHEME = "affine32"
"""datasketch permutation scheme the signatures follow (its default since 2.0)."""

_EMPTY = np.uint32(0xFFFFFFFF)
_BLOCK_BYTES = 1 << 19
"""Permuted hashes made at a time: a block stays in a core's L2 cache until it is reduced."""

U32Array = npt.NDArray[np.uint32]

KERNEL = kernel.KERNEL
"""Which path computes signatures: ``compiled`` (``dedup/pipeline/_minhash.c``) or ``numpy``."""


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[U32Array, U32Array]:
    """datasketch's permutation parameters ``(a, b)`` for these settings, made once."""
    from datasketch import MinHash  # imported here: it pulls in scipy, a second of start-up

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
    return np.ascontiguousarray(a, dtype=np.uint32), np.ascontiguousarray(b, dtype=np.uint32)


def _fmix32(h: U32Array) -> U32Array:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def segment_signatures(
    segments: Sequence[U32Array], num_perm: int, seed: int
) -> npt.NDArray[np.uint32]:
    """One MinHash signature per segment of ready-made shingle hashes, as rows of a matrix:
    for signatures of chosen hashes rather than of a document's words.

    An empty segment gets the empty signature (all ``0xFFFFFFFF``), which callers must not
    compare: empty sets have no meaningful similarity.
    """
    hashes = np.concatenate(segments) if segments else np.empty(0, dtype=np.uint32)
    return _numpy_signatures(hashes, np.array([len(s) for s in segments], np.int64), num_perm, seed)


class Signing(NamedTuple):
    """One kind of signature of a document's paragraphs."""

    size: int
    """Words per shingle (:func:`dedup.pipeline.text.document_shingle_hashes`)."""
    num_perm: int
    """Permutations per signature."""
    seed: int
    """Seed of the permutations."""
    wanted: npt.NDArray[np.bool_] | None = None
    """The paragraphs to sign; the others get the empty signature. All when None."""


def signatures(
    word_hashes: npt.NDArray[np.uint64],
    counts: npt.NDArray[np.int64],
    signings: Sequence[Signing],
) -> list[npt.NDArray[np.uint32]]:
    """One matrix per signing: a signature per paragraph over its shingles, from all its word
    hashes, every signing made in one pass of the compiled kernel over the words.

    Args:
        word_hashes: the word hashes of all paragraphs, one after the other
            (:func:`dedup.pipeline.text.word_hashes`).
        counts: words in each paragraph.
        signings: the kinds of signature to make.
    """
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    compiled = kernel.compiled
    if compiled is None:
        return [_numpy_shingle_signatures(word_hashes, counts, signing) for signing in signings]
    found = [np.empty((len(counts), signing.num_perm), dtype=np.uint32) for signing in signings]
    compiled.shingle_fill(
        np.ascontiguousarray(word_hashes, dtype=np.uint64),
        counts,
        text.POSITION_MULTIPLIERS,
        [
            (
                out,
                signing.size,
                _rows(signing.wanted),
                *permutations(signing.num_perm, signing.seed),
            )
            for out, signing in zip(found, signings, strict=True)
        ],
    )
    return found


def _rows(wanted: npt.NDArray[np.bool_] | None) -> bytes | npt.NDArray[np.uint8]:
    """The kernel's ``wanted``: a byte per row, or none for all rows."""
    return b"" if wanted is None else wanted.view(np.uint8)


def shingle_signatures(
    word_hashes: npt.NDArray[np.uint64],
    counts: npt.NDArray[np.int64],
    size: int,
    num_perm: int,
    seed: int,
    wanted: Sequence[bool] | None = None,
) -> npt.NDArray[np.uint32]:
    """One signature per paragraph over its ``size``-word shingles, from all its word hashes:
    :func:`signatures` of one :class:`Signing`."""
    rows = None if wanted is None else np.array(wanted, dtype=np.bool_)
    return signatures(word_hashes, counts, [Signing(size, num_perm, seed, rows)])[0]


def _numpy_shingle_signatures(
    word_hashes: npt.NDArray[np.uint64], counts: npt.NDArray[np.int64], signing: Signing
) -> npt.NDArray[np.uint32]:
    """What the compiled kernel makes of one signing, with numpy."""
    shingles, per_row = text.document_shingle_hashes(word_hashes, counts, signing.size)
    if signing.wanted is not None and not signing.wanted.all():
        shingles = shingles[np.repeat(signing.wanted, per_row)]
        per_row = per_row * signing.wanted
    return _numpy_signatures(shingles, per_row, signing.num_perm, signing.seed)


def _numpy_signatures(
    hashes: U32Array, counts: npt.NDArray[np.int64], num_perm: int, seed: int
) -> npt.NDArray[np.uint32]:
    """What the compiled kernel computes, with numpy, from the shingle hashes already made: one
    row per count, row ``r`` the MinHash of the ``counts[r]`` hashes after the rows before it."""
    a, b = permutations(num_perm, seed)
    result = np.full((len(counts), num_perm), _EMPTY, dtype=np.uint32)
    hashes = np.ascontiguousarray(hashes, dtype=np.uint32)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    ends = np.cumsum(counts).tolist()
    spans = [
        (row, end - count, end)
        for row, (count, end) in enumerate(zip(counts.tolist(), ends, strict=True))
        if count
    ]
    if spans:
        _fill(result, spans, hashes, a, b)
    return result


def _fill(
    result: npt.NDArray[np.uint32],
    spans: list[tuple[int, int, int]],
    hashes: U32Array,
    a: U32Array,
    b: U32Array,
) -> None:
    """Set each ``(row, start, end)`` span's row to the MinHash of ``hashes[start:end]``.

    The permuted hashes are laid out one shingle per row, so that the minimum over a span's
    rows runs along contiguous memory, and made a block of rows at a time, so that a block is
    still in the CPU cache when it is reduced (and memory stays bounded for any input).
    """
    mixed = _fmix32(hashes)
    total = len(mixed)
    step = max(1, _BLOCK_BYTES // (4 * len(a)))
    block = np.empty((min(step, total), len(a)), dtype=np.uint32)
    span = 0
    for low in range(0, total, step):
        high = min(low + step, total)
        permuted = block[: high - low]
        np.multiply(mixed[low:high, None], a, out=permuted)
        np.add(permuted, b, out=permuted)
        while span < len(spans):
            row, start, end = spans[span]
            if start >= high:
                break
            part = permuted[max(start, low) - low : min(end, high) - low]
            if start >= low:
                np.minimum.reduce(part, axis=0, out=result[row])
            else:  # the span began in an earlier block
                np.minimum(result[row], np.minimum.reduce(part, axis=0), out=result[row])
            if end > high:
                break
            span += 1


def combine(signatures: npt.NDArray[np.uint32]) -> U32Array:
    """The signature of the union of several sets: the element-wise minimum."""
    return np.asarray(signatures.min(axis=0), dtype=np.uint32)
