"""The fast signature path equals datasketch's MinHash, bit for bit."""

from __future__ import annotations

import numpy as np
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup import signature, text

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


def test_pack_round_trip() -> None:
    """Packed signatures read back unchanged."""
    sig = np.arange(128, dtype=np.uint32) * np.uint32(33_554_467)
    assert sig.tolist() == signature.unpack(signature.pack(sig)).tolist()
    assert 512 == len(signature.pack(sig))


def test_similarity_estimates_jaccard() -> None:
    """Two sets with Jaccard 0.8 get an estimate close to it."""
    first = [f"w{i}" for i in range(1000)]
    second = first[:900] + [f"v{i}" for i in range(100)]  # 900 shared of 1100
    sigs = signature.segment_signatures(
        [
            text.shingle_hashes(text.word_hashes(first), 1),
            text.shingle_hashes(text.word_hashes(second), 1),
        ],
        256,
        1,
    )
    assert abs(900 / 1100 - signature.similarity(sigs[0], sigs[1])) < 0.08


def test_lsh_parameters_fit_num_perm() -> None:
    """Bands times rows never exceed the permutations."""
    bands, rows = signature.lsh_parameters(0.5, 128)
    assert bands * rows <= 128
    assert len(signature.band_hashes(np.zeros(128, dtype=np.uint32), bands, rows)) == bands


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
