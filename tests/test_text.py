"""The whole-document paths of text.py give what the one-paragraph functions give."""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.pipeline import analysis, kernel, scripts, text
from dedup.settings import Settings

SAMPLES = [
    "The “quick” brown fox — it’s 3 a.m.… «Bonjour»",
    "Ｆｕｌｌ-width ﬁne ＡＢＣ and the Kelvin sign \u212a",
    "東京 and 한국어 text, 日本語の文",
    "Déjà vu: Ünïcode CAFÉ, İstanbul, ΣΊΣΥΦΟΣ",
    "snake_case words__ and\ttabs\u00a0and\u2028separators",
    "presentation forms \ufe31 dash\ufe58 and \ufe32 become marks only after NFKC",
    "curly “quotes” — dashes – and an ellipsis… alone make an ASCII text of this",
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


@pytest.mark.usefixtures("each_kernel")
@settings(max_examples=300, deadline=None)
@given(PARAGRAPHS)
def test_hashed_words_equal_word_by_word(paragraphs: list[str]) -> None:
    """Words hashed, counted and fingerprinted in one pass, by the kernel or by Python, give
    each word's and each paragraph's xxh64 as the one-paragraph functions make them."""
    found = text.hashed_words(paragraphs)
    paragraph_words = [text.words(p) for p in paragraphs]
    every_word = list(itertools.chain.from_iterable(paragraph_words))
    assert [xxhash.xxh64_intdigest(w.encode()) for w in every_word] == found.hashes.tolist()
    assert [len(w) for w in paragraph_words] == found.counts.tolist()
    assert text.fingerprints(paragraph_words) == found.fingerprints.tolist()


@pytest.mark.usefixtures("compiled_kernel")
def test_kernel_xxh64_equals_xxhash_at_every_length() -> None:
    """The kernel's XXH64 equals the xxhash package's on inputs across every tail length and
    several 32-byte stripes, and on multi-byte UTF-8."""
    assert kernel.compiled is not None
    rng = np.random.default_rng(5)
    for length in range(0, 140):
        word = bytes(rng.integers(33, 127, length, dtype=np.uint8)) + "é東".encode() * (length % 3)
        hashes = np.empty(len(word), dtype=np.uint64)
        counts = np.empty(1, dtype=np.int64)
        prints = np.empty(1, dtype=np.uint64)
        assert (1 if word else 0) == kernel.compiled.hash_words(word, hashes, counts, prints)
        assert xxhash.xxh64_intdigest(word) == int(prints[0])
        if word:
            assert xxhash.xxh64_intdigest(word) == int(hashes[0])


@pytest.mark.usefixtures("compiled_kernel")
def test_kernel_refuses_buffers_too_small() -> None:
    """Buffers that cannot hold every word or line raise ValueError instead of overflowing."""
    assert kernel.compiled is not None
    laid = b"a b c\nd"
    for hashes, lines in ((3, 2), (4, 1), (4, 3)):
        with pytest.raises(ValueError, match="room"):
            kernel.compiled.hash_words(
                laid,
                np.empty(hashes, dtype=np.uint64),
                np.empty(lines, dtype=np.int64),
                np.empty(lines, dtype=np.uint64),
            )


@pytest.mark.usefixtures("compiled_kernel")
@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60), st.sampled_from(SAMPLES))
def test_kernel_word_runs_equal_the_expression(drawn: str, sample: str) -> None:
    """The kernel cuts between words exactly where the regular expression of text.py does."""
    assert kernel.compiled is not None
    for value in (drawn, sample, drawn + "\n" + sample.casefold()):
        assert text._NON_WORD_RE.sub(" ", value) == kernel.compiled.word_runs(value)


@pytest.mark.usefixtures("compiled_kernel")
def test_kernel_word_runs_agree_on_every_character() -> None:
    """Every code point is a word character for the kernel exactly when it is for re."""
    assert kernel.compiled is not None
    every = "".join(f"a{chr(c)}" for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)
    assert text._NON_WORD_RE.sub(" ", every) == kernel.compiled.word_runs(every)


TABLE_TEXT = st.lists(
    st.text(
        alphabet=st.one_of(
            st.characters(max_codepoint=0x7F),
            st.characters(min_codepoint=0x80, max_codepoint=0x058F),
            st.characters(min_codepoint=0x2000, max_codepoint=0x2BFF),
            st.characters(min_codepoint=0x3000, max_codepoint=0x9FFF),
            st.characters(min_codepoint=0xAC00, max_codepoint=0xD7AF),
            st.characters(min_codepoint=0xF900, max_codepoint=0xFFFF),
            st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),
            # marks, compatibility characters and jamo that compose with their neighbours
            st.sampled_from(
                text.COMMON_MARKS + "\u0301\u00a0\u212a\ufb01½\u3099\uff76\uff9e\u3131\u314f"
                "\u1100\u1161\u11a8\ufe0f\u0e01"
            ),
        ),
        max_size=40,
    ),
    min_size=1,
    max_size=6,
)
"""Paragraphs mostly of characters the kernel's character table knows, with a few it does
not (combining marks, compatibility characters, jamo, Thai)."""


def reference_hashed(paragraphs: list[str]) -> tuple[list[int], list[int], list[int]]:
    """Word hashes, counts and fingerprints as the one-paragraph functions make them."""
    paragraph_words = [text.words(p) for p in paragraphs]
    every_word = itertools.chain.from_iterable(paragraph_words)
    return (
        [xxhash.xxh64_intdigest(w.encode()) for w in every_word],
        [len(w) for w in paragraph_words],
        text.fingerprints(paragraph_words),
    )


@pytest.mark.usefixtures("compiled_kernel")
@settings(max_examples=1000, deadline=None)
@given(TABLE_TEXT)
def test_kernel_table_words_equal_the_rule(paragraphs: list[str]) -> None:
    """Where the kernel cuts and folds paragraphs with its character table, it finds the words
    NFKC, case folding and the word expression find; where it does not know a character, it
    says so."""
    found = text.plain_hashed_words(paragraphs)
    table = np.frombuffer(text.char_table()[0], dtype=np.uint32)
    known = all(ord(c) < len(table) and table[ord(c)] != 0xFFFFFFFF for c in "".join(paragraphs))
    assert known == (found is not None)
    if found is not None:
        actual = (found.hashes.tolist(), found.counts.tolist(), found.fingerprints.tolist())
        assert reference_hashed(paragraphs) == actual


@pytest.mark.usefixtures("compiled_kernel")
def test_kernel_table_knows_each_character_as_the_rule_does() -> None:
    """Every character the table knows gives the rule's words alone, inside a word, between
    words and next to every other kind of character it knows."""
    table = np.frombuffer(text.char_table()[0], dtype=np.uint32)
    known = [chr(c) for c in np.flatnonzero(table != 0xFFFFFFFF).tolist()]
    assert len(known) > 1000
    paragraphs = [f"{c} A{c}b {c}{c}é{c}— x{c}" for c in known]
    paragraphs.append("".join(known))
    found = text.plain_hashed_words(paragraphs)
    assert found is not None
    actual = (found.hashes.tolist(), found.counts.tolist(), found.fingerprints.tolist())
    assert reference_hashed(paragraphs) == actual


def test_table_knows_no_character_that_needs_scripts() -> None:
    """Paragraphs the table cuts never need the script-aware rule, which therefore is looked
    for only in the others."""
    table = np.frombuffer(text.char_table()[0], dtype=np.uint32)
    known = np.flatnonzero(table != 0xFFFFFFFF).tolist()
    assert not any(scripts.needs_scripts(chr(c)) for c in known)


@pytest.mark.usefixtures("compiled_kernel")
@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60), st.sampled_from(SAMPLES))
def test_kernel_hash_word_runs_equal_runs_then_hashes(drawn: str, sample: str) -> None:
    """Cutting and hashing in one pass gives what word_runs then hash_words give."""
    for value in (drawn, sample, drawn + "\n" + sample.casefold()):
        assert kernel_hashed(kernel.compiled.word_runs(value)) == kernel_runs_hashed(value)


@pytest.mark.usefixtures("compiled_kernel")
def test_kernel_hash_word_runs_agree_on_every_character() -> None:
    """Every code point is a word character for hash_word_runs exactly when it is for re."""
    every = "".join(f"a{chr(c)}" for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)
    laid = text._NON_WORD_RE.sub(" ", every)
    assert kernel_hashed(laid) == kernel_runs_hashed(every)


def kernel_hashed(laid: str) -> tuple[list[int], list[int], list[int]]:
    """The kernel's hash_words of a laid-out text."""
    assert kernel.compiled is not None
    data = laid.encode()
    lines = laid.count("\n") + 1
    hashes = np.empty((len(data) + 1) // 2, dtype=np.uint64)
    counts = np.empty(lines, dtype=np.int64)
    prints = np.empty(lines, dtype=np.uint64)
    found = kernel.compiled.hash_words(data, hashes, counts, prints)
    return hashes[:found].tolist(), counts.tolist(), prints.tolist()


def kernel_runs_hashed(folded: str) -> tuple[list[int], list[int], list[int]]:
    """The kernel's hash_word_runs of a text."""
    assert kernel.compiled is not None
    hashes, counts, prints = kernel.compiled.hash_word_runs(folded)
    return (
        np.frombuffer(hashes, np.uint64).tolist(),
        np.frombuffer(counts, np.int64).tolist(),
        np.frombuffer(prints, np.uint64).tolist(),
    )


@pytest.mark.usefixtures("each_kernel")
@settings(max_examples=300, deadline=None)
@given(st.one_of(TABLE_TEXT, PARAGRAPHS), st.booleans())
def test_analysis_words_equal_the_split_words(paragraphs: list[str], script_words: bool) -> None:
    """The words analyse hashes, by whichever route, are the words split_words gives."""
    chosen = Settings(script_words=script_words)
    found = analysis.hashed_words(paragraphs, chosen)
    expected = text.words_hashed(analysis.split_words(paragraphs, chosen))
    assert expected.hashes.tolist() == found.hashes.tolist()
    assert expected.counts.tolist() == found.counts.tolist()
    assert expected.fingerprints.tolist() == found.fingerprints.tolist()
