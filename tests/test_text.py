"""The whole-document paths of text.py give what the one-paragraph functions give."""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata

import numpy as np
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.pipeline import text

SAMPLES = [
    "The “quick” brown fox — it’s 3 a.m.… «Bonjour»",
    "Ｆｕｌｌ-width ﬁne ＡＢＣ and the Kelvin sign \u212a",
    "東京 and 한국어 text, 日本語の文",
    "Déjà vu: Ünïcode CAFÉ, İstanbul, ΣΊΣΥΦΟΣ",
    "snake_case words__ and\ttabs\u00a0and\u2028separators",
    "",
    "...",
]
PARAGRAPHS = st.lists(
    st.one_of(st.sampled_from(SAMPLES), st.text(max_size=40)), min_size=1, max_size=6
)


def reference_words(paragraph: str) -> list[str]:
    """The words as the original definition finds them: NFKC, case-folded, whitespace
    collapsed, then matched."""
    folded = unicodedata.normalize("NFKC", paragraph).casefold()
    return text.WORD_RE.findall(re.sub(r"\s+", " ", folded).strip())


@settings(max_examples=500, deadline=None)
@given(PARAGRAPHS)
def test_document_words_equal_paragraph_words(paragraphs: list[str]) -> None:
    """One pass over a document finds each paragraph's words exactly."""
    expected = [reference_words(p) for p in paragraphs]
    assert expected == text.document_words(paragraphs)


def test_document_words_of_samples() -> None:
    """The ASCII, European and CJK routes all agree with the reference on real-looking text."""
    for sample in SAMPLES:
        assert [reference_words(sample)] == text.document_words([sample])


def test_common_marks_are_not_word_characters() -> None:
    """Replacing the marks by spaces cannot change a word."""
    assert not any(text.WORD_RE.match(mark) for mark in text.COMMON_MARKS)


def test_no_whitespace_is_a_word_character() -> None:
    """Collapsing whitespace before matching words cannot change them, so words() skips it."""
    spaces = (chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert not any(text.WORD_RE.match(c) or re.match(r"\w", c) for c in spaces)


def test_word_hashes_are_xxh64() -> None:
    """Each word hash is the xxh64 of its UTF-8 bytes."""
    words = ["alpha", "ünïcode", "東"]
    expected = [xxhash.xxh64_intdigest(w.encode("utf-8")) for w in words]
    assert expected == text.word_hashes(words).tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 8), max_size=8), st.integers(1, 5), st.integers(0, 2**32))
def test_document_shingles_equal_paragraph_shingles(
    counts: list[int], size: int, seed: int
) -> None:
    """Shingles of all paragraphs at once equal each paragraph's, short and empty ones too."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, sum(counts), dtype=np.uint64)
    starts = np.cumsum([0, *counts])
    expected = [
        text.shingle_hashes(hashes[start:end], size) for start, end in itertools.pairwise(starts)
    ]
    shingles, shingle_counts = text.document_shingle_hashes(
        hashes, np.array(counts, dtype=np.int64), size
    )
    assert [len(e) for e in expected] == shingle_counts.tolist()
    assert np.concatenate([np.empty(0, np.uint32), *expected]).tolist() == shingles.tolist()
