"""The fast signature path equals datasketch's MinHash, bit for bit."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.pipeline import kernel, signature, text

WORDS = st.lists(
    st.sampled_from(
        [
            "alpha",
            "beta",
            "gamma",
            "delta",
            "epsilon",
            "zeta",
            "eta",
            "theta",
            "iota",
            "kappa",
            "ünïcode",
            "東",
        ]
    ),
    min_size=1,
    max_size=60,
)


def reference(paragraph_words: list[str], size: int, num_perm: int, seed: int) -> np.ndarray:
    """datasketch's own MinHash of the paragraph's shingles."""
    minhash = MinHash(num_perm=num_perm, seed=seed, hashfunc=text.shingle_hash_of_text)
    width = min(size, len(paragraph_words))
    for start in range(len(paragraph_words) - width + 1):
        minhash.update(" ".join(paragraph_words[start : start + width]).encode("utf-8"))
    return minhash.hashvalues


@settings(max_examples=60, deadline=None)
@given(
    st.lists(WORDS, min_size=1, max_size=6),
    st.integers(1, 4),
    st.sampled_from([16, 128]),
    st.integers(0, 5),
)
def test_segment_signatures_equal_datasketch(
    paragraphs: list[list[str]], size: int, num_perm: int, seed: int
) -> None:
    """Every paragraph's signature equals datasketch's MinHash of the same shingles."""
    segments = [text.shingle_hashes(text.word_hashes(p), size) for p in paragraphs]
    matrix = signature.segment_signatures(segments, num_perm, seed)
    for paragraph, row in zip(paragraphs, matrix, strict=True):
        assert reference(paragraph, size, num_perm, seed).tolist() == row.tolist()


@pytest.mark.usefixtures("compiled_kernel")
@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=10),
    st.integers(1, 4),
    st.sampled_from([16, 128, 256]),
    st.integers(0, 2**32 - 1),
)
def test_compiled_kernel_equals_numpy(
    rows: list[tuple[int, bool]], size: int, num_perm: int, draw: int
) -> None:
    """The C kernel, which makes the shingles on the way, gives the rows numpy gives from the
    shingle hashes; unwanted rows keep the empty signature."""
    counts = np.array([n for n, _ in rows], dtype=np.int64)
    wanted = [w for _, w in rows]
    words = np.random.default_rng(draw).integers(0, 2**64, int(counts.sum()), dtype=np.uint64)
    with mock.patch.object(kernel, "compiled", None):
        expected = signature.shingle_signatures(words, counts, size, num_perm, 1, wanted=wanted)
    got = signature.shingle_signatures(words, counts, size, num_perm, 1, wanted=wanted)
    assert expected.tolist() == got.tolist()
    assert (got[~np.array(wanted, dtype=bool)] == 0xFFFFFFFF).all()


@pytest.mark.usefixtures("each_kernel")
def test_shingle_signatures_of_words_equal_datasketch() -> None:
    """Each paragraph's signature over its shingles equals datasketch's, with either kernel."""
    paragraphs = [["a", "b", "c", "d"], ["e"], [], ["f", "g", "a", "b", "c"], ["x", "y"]]
    words = text.word_hashes([w for p in paragraphs for w in p])
    counts = np.array([len(p) for p in paragraphs], dtype=np.int64)
    wanted = [True, True, True, False, True]
    matrix = signature.shingle_signatures(words, counts, 3, 64, 2, wanted=wanted)
    for paragraph, keep, row in zip(paragraphs, wanted, matrix, strict=True):
        if paragraph and keep:
            assert reference(paragraph, 3, 64, 2).tolist() == row.tolist()
        else:
            assert (row == 0xFFFFFFFF).all()


@pytest.mark.usefixtures("compiled_kernel")
def test_compiled_kernel_refuses_inconsistent_sizes() -> None:
    """Sizes that do not fit raise ValueError instead of touching memory out of bounds, and
    no signing is made when one of them does not fit."""
    a, b = signature.permutations(16, 1)
    out = np.full((2, 16), 0xFFFFFFFE, dtype=np.uint32)
    fine = np.full((2, 16), 0xFFFFFFFE, dtype=np.uint32)
    words = np.arange(5, dtype=np.uint64)
    two = np.array([2, 3], dtype=np.int64)
    multipliers = text.POSITION_MULTIPLIERS
    assert kernel.compiled is not None
    fill = kernel.compiled.shingle_fill
    for counts, target in (
        ([2, 4], out),  # one word more than there are
        ([2, 2], out),  # one left over
        ([-1, 6], out),
        ([5], out),  # out has two rows for one count
        ([2, 3], out[:, :8].copy()),  # rows shorter than a
    ):
        with pytest.raises(ValueError, match="counts must add up"):
            fill(words, np.array(counts, dtype=np.int64), multipliers, [(target, 2, b"", a, b)])
    with pytest.raises(ValueError, match="counts must add up"):
        fill(words, two, multipliers, [(fine, 2, b"", a, b), (out, 2, b"", a, b[:8].copy())])
    for wanted, size in ((np.ones(3, dtype=np.uint8), 2), (np.ones(0, np.uint8), 0), (b"", 11)):
        with pytest.raises(ValueError, match="counts must add up"):
            fill(words, two, multipliers, [(fine, 2, b"", a, b), (out, size, wanted, a, b)])
    with pytest.raises(ValueError, match="at most 4 signings"):
        fill(words, two, multipliers, [(fine, 2, b"", a, b)] * 5)
    assert (out == 0xFFFFFFFE).all()
    assert (fine == 0xFFFFFFFE).all()


@pytest.mark.usefixtures("compiled_kernel")
def test_compiled_kernel_makes_several_signings_in_one_call() -> None:
    """Signings made together equal the same signings made one at a time."""
    words = np.random.default_rng(5).integers(0, 2**64, 40, dtype=np.uint64)
    counts = np.array([10, 0, 3, 27], dtype=np.int64)
    wanted = np.array([True, True, False, True])
    signings = [signature.Signing(1, 128, 1, wanted), signature.Signing(3, 256, 1)]
    together = signature.signatures(words, counts, signings)
    alone = [signature.signatures(words, counts, [s])[0] for s in signings]
    assert [m.tolist() for m in alone] == [m.tolist() for m in together]
    assert (together[0][2] == 0xFFFFFFFF).all()
    assert (together[1][1] == 0xFFFFFFFF).all()


def test_combined_signature_is_the_union() -> None:
    """The element-wise minimum of paragraph signatures is the MinHash of all their shingles."""
    paragraphs = [["a", "b", "c", "d"], ["e", "f", "g"], ["a", "b", "x"]]
    segments = [text.shingle_hashes(text.word_hashes(p), 2) for p in paragraphs]
    combined = signature.combine(signature.segment_signatures(segments, 64, 1))
    minhash = MinHash(num_perm=64, seed=1, hashfunc=text.shingle_hash_of_text)
    for p in paragraphs:
        for start in range(len(p) - 1):
            minhash.update(" ".join(p[start : start + 2]).encode())
    assert minhash.hashvalues.tolist() == combined.tolist()


def test_large_documents_are_chunked_without_changing_results() -> None:
    """Signatures of segments spread over several numpy passes equal those of one pass."""
    rng = np.random.default_rng(7)
    segments = [
        rng.integers(0, 2**32, size=n, dtype=np.uint32) for n in (40_000, 30_000, 5, 50_000)
    ]
    together = signature.segment_signatures(segments, 32, 1)
    alone = np.vstack([signature.segment_signatures([s], 32, 1) for s in segments])
    assert alone.tolist() == together.tolist()


def test_empty_segments_get_the_empty_signature() -> None:
    """A paragraph with no shingles is never given a comparable signature."""
    matrix = signature.segment_signatures([np.empty(0, dtype=np.uint32)], 16, 1)
    assert [0xFFFFFFFF] * 16 == matrix[0].tolist()


def test_blocks_split_segments_without_changing_results() -> None:
    """A segment spread over several blocks of permuted hashes gets the same signature."""
    rng = np.random.default_rng(3)
    segments = [rng.integers(0, 2**32, size=n, dtype=np.uint32) for n in (0, 3000, 1, 0, 700)]
    together = signature.segment_signatures(segments, 256, 1)
    for segment, row in zip(segments, together, strict=True):
        if len(segment):
            minhash = MinHash(num_perm=256, seed=1, hashfunc=int)
            for value in segment.tolist():
                minhash.update(value)
            assert minhash.hashvalues.tolist() == row.tolist()
        else:
            assert (row == 0xFFFFFFFF).all()
