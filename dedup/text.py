"""Text normalisation and shingling: the step that decides what counts as "the same words".

Two copies of a paragraph that differ only in case, Unicode form, punctuation or spacing must
give the same words, so every comparison in dedup starts here. Words are hashed once with
xxhash and combined into shingle hashes arithmetically, instead of hashing every shingle's
text again (the per-shingle hash calls dominated the pipeline's cost).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import xxhash

# Ideographic and syllabic scripts are written without spaces: each character is a word.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
_SPACE_RE = re.compile(r"\s+")

# Distinct odd 64-bit multipliers, one per word position inside a shingle (up to 10 words).
_POSITION_MULTIPLIERS = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
        0x94D049BB133111EB,
        0xBF58476D1CE4E5B9,
        0x2545F4914F6CDD1D,
        0x9FB21C651E98DF25,
    ],
    dtype=np.uint64,
)

U32Array = npt.NDArray[np.uint32]
U64Array = npt.NDArray[np.uint64]


def normalize(text: str) -> str:
    """Unicode NFKC, case-folded, whitespace collapsed: the form all comparisons use."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def words(paragraph: str) -> list[str]:
    """The normalised words of a paragraph; punctuation is not a word."""
    return _WORD_RE.findall(normalize(paragraph))


def fingerprint(paragraph_words: list[str]) -> int:
    """Exact 64-bit fingerprint of a paragraph's normalised words."""
    return xxhash.xxh64_intdigest(" ".join(paragraph_words).encode("utf-8"))


@lru_cache(maxsize=1 << 17)
def _word_hash(word: str) -> int:
    return xxhash.xxh64_intdigest(word.encode("utf-8"))


def word_hashes(paragraph_words: list[str]) -> U64Array:
    """64-bit hash of each word, cached: most words of a language recur constantly."""
    return np.fromiter((_word_hash(w) for w in paragraph_words), np.uint64, len(paragraph_words))


def shingle_hashes(hashes: U64Array, size: int) -> U32Array:
    """32-bit hashes of the word shingles of one paragraph, from its word hashes.

    A paragraph shorter than ``size`` words is one shingle of all its words; no words gives
    no shingles.
    """
    count = len(hashes)
    if count == 0:
        return np.empty(0, dtype=np.uint32)
    width = min(size, count)
    combined = np.zeros(count - width + 1, dtype=np.uint64)
    for position in range(width):
        combined += (
            hashes[position : count - width + 1 + position] * _POSITION_MULTIPLIERS[position]
        )
    return (combined >> np.uint64(32)).astype(np.uint32)


def shingle_hash_of_text(shingle: bytes) -> int:
    """The hash of one shingle given as space-joined words: what datasketch is handed in tests.

    It equals the value :func:`shingle_hashes` computes for the same words, so a datasketch
    ``MinHash(hashfunc=shingle_hash_of_text)`` is the reference the fast path is checked against.
    """
    parts = shingle.decode("utf-8").split(" ")
    return int(shingle_hashes(word_hashes(parts), len(parts))[0])
