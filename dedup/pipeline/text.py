"""Text normalisation and shingling: the step that decides what counts as "the same words".

Two copies of a paragraph that differ only in case, Unicode form, punctuation or spacing must
give the same words, so every comparison in dedup starts here. Words are hashed once with
xxhash and combined into shingle hashes arithmetically, instead of hashing every shingle's
text again (the per-shingle hash calls dominated the pipeline's cost).

The pipeline takes a whole document through each step at once (:func:`document_words`,
:func:`document_shingle_hashes`): per-paragraph calls of the regular expression engine and of
numpy on arrays of a few dozen words cost more in call overhead than in work.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import xxhash

from dedup.pipeline import kernel

# Ideographic and syllabic scripts are written without spaces: each character is a word.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
WORD_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
"""What a word is: a run of word characters, or one ideographic or syllabic character."""
_CJK_RE = re.compile(f"[{_CJK}]")
_NON_WORD_RE = re.compile(r"[^\w\n]+")
"""What lies between the words of text without CJK characters, where :data:`WORD_RE` finds
runs of word characters: turned into spaces, it leaves the words apart in one pass. The
compiled kernel's ``word_runs`` makes the same substitution, faster."""
COMMON_MARKS = "\u2019\u2018\u201c\u201d\u2014\u2013\u2026\u00ab\u00bb"
"""Non-ASCII punctuation of most English and European text (curly quotes, dashes, ellipsis,
guillemets): replaced by spaces, they no longer keep a document off the ASCII route."""
_ASCII_NON_WORD = str.maketrans(
    {c: " " for c in map(chr, range(128)) if not (c.isalnum() or c in "_\n")}
)
"""ASCII characters that are not word characters become spaces; line breaks stay."""
_PARAGRAPH_BREAK = "\n"
"""Joins a document's paragraphs (which never hold one) for a single pass over all of them.
NFKC and case folding treat it as a boundary: it composes with nothing, and no character
folds or decomposes into one."""

# Distinct odd 64-bit multipliers, one per word position inside a shingle (up to 10 words);
# the compiled kernel of dedup.pipeline.signature combines words with them too.
POSITION_MULTIPLIERS = np.array(
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
I64Array = npt.NDArray[np.int64]


def words(paragraph: str) -> list[str]:
    """The normalised words of a paragraph (NFKC, case-folded); punctuation is not a word."""
    # Whitespace is not collapsed first: no whitespace character is a word character, so that
    # could not change the words.
    return WORD_RE.findall(unicodedata.normalize("NFKC", paragraph).casefold())


def document_text(paragraphs: Sequence[str]) -> str:
    """The :func:`words` of every paragraph laid out as one text: a line per paragraph, its
    words apart by spaces (one or more). This is where the words are decided; the compiled
    kernel only cuts this text at its spaces and line breaks, which no word holds.

    Most documents are ASCII once their curly quotes and dashes are gone; their non-word
    characters are then turned into spaces by one C string method, two to three times faster
    than the regular expression.
    """
    return _laid_out(paragraphs, _folded(paragraphs))


def _laid_out(paragraphs: Sequence[str], folded: str | None) -> str:
    """:func:`document_text` from the paragraphs' :func:`_folded` text."""
    if folded is None:  # a paragraph held a line break
        return _PARAGRAPH_BREAK.join(" ".join(words(p)) for p in paragraphs)
    if folded.isascii():
        return folded.translate(_ASCII_NON_WORD)
    if not _CJK_RE.search(folded):
        compiled = kernel.compiled
        return _NON_WORD_RE.sub(" ", folded) if compiled is None else compiled.word_runs(folded)
    return _PARAGRAPH_BREAK.join(
        " ".join(WORD_RE.findall(part)) for part in folded.split(_PARAGRAPH_BREAK)
    )


def _folded(paragraphs: Sequence[str]) -> str | None:
    """The paragraphs as one text, a line each, after NFKC and case folding, with
    :data:`COMMON_MARKS` made spaces; None when a paragraph holds a line break of its own."""
    # The marks go first: NFKC and case folding leave them as they are or make other non-word
    # characters of them ("…" becomes "..."), so spaces in their place change no word, and
    # the text is then often ASCII, which both passes return at once (case folding costs
    # twenty times more on a text with a single curly quote in it).
    joined = _without_marks(_PARAGRAPH_BREAK.join(paragraphs))
    folded = unicodedata.normalize("NFKC", joined).casefold()
    if not folded.isascii():  # a compatibility character may have become a mark
        folded = _without_marks(folded)
    if folded.count(_PARAGRAPH_BREAK) != len(paragraphs) - 1:
        return None
    return folded


def _without_marks(text: str) -> str:
    """The text with :data:`COMMON_MARKS` replaced by spaces."""
    for mark in COMMON_MARKS:
        if mark in text:
            text = text.replace(mark, " ")
    return text


def document_words(paragraphs: Sequence[str]) -> list[list[str]]:
    """The :func:`words` of each paragraph, found in one pass over the whole document."""
    return [line.split() for line in document_text(paragraphs).split(_PARAGRAPH_BREAK)]


@dataclass(frozen=True)
class HashedWords:
    """A document's words as the signatures and fingerprints need them."""

    hashes: U64Array
    """The 64-bit hash of every word (:func:`word_hashes`), paragraph after paragraph."""
    counts: I64Array
    """Words in each paragraph."""
    fingerprints: U64Array
    """Each paragraph's exact fingerprint (:func:`fingerprints`)."""


def hashed_words(paragraphs: Sequence[str]) -> HashedWords:
    """The words of every paragraph hashed, counted and fingerprinted.

    The compiled kernel does it in one call per document (:func:`plain_hashed_words`, else
    :func:`laid_hashed_words`); without it, Python splits :func:`document_text` and xxhash
    hashes word by word, to the same values.
    """
    found = plain_hashed_words(paragraphs)
    return laid_hashed_words(paragraphs) if found is None else found


def plain_hashed_words(paragraphs: Sequence[str]) -> HashedWords | None:
    """:func:`hashed_words` of paragraphs written only in characters :func:`char_table` knows
    (most pages: ASCII, European letters, punctuation, CJK text), in one kernel pass over the
    paragraphs themselves, with no folded or laid-out text made. None for other text, or
    without the kernel."""
    compiled = kernel.compiled
    if compiled is None:
        return None
    _kernel_char_table()
    found = compiled.table_words(list(paragraphs))
    return None if found is None else _kernel_words(found)


TABLE_RANGES = (
    (0x0000, 0x0590),
    (0x2000, 0x2C00),
    (0x3000, 0x3130),
    (0x3400, 0x4DC0),
    (0x4E00, 0xA000),
    (0xAC00, 0xD7A4),
    (0xF900, 0xFB00),
    (0xFE30, 0x10000),
    (0x1F300, 0x1FB00),
)
"""Code points :func:`char_table` may know: Latin, IPA, Greek, Cyrillic and Armenian letters,
punctuation and symbols, kana, bopomofo, ideographs, Hangul syllables, full and half width
and small forms, emoji. Scripts whose letters compose with the letter before them or are
written without spaces (Hangul jamo, the Indic scripts, Thai) stay with the whole-text path."""
_TABLE_GAP = 0
_TABLE_UNKNOWN = 0xFFFFFFFF
_TABLE_WORD = 0x80
"""Flag of an entry that is a word by itself (an ideograph, a kana, a Hangul syllable)."""
_TABLE_GAPS = 0x40
"""Flag of an entry whose bytes hold spaces, which lie between words (``½``: 1, space, 2)."""
_TABLE_BYTES = 8
"""Most bytes an entry adds (the kernel makes room for as many per character)."""


@functools.cache
def char_table() -> tuple[bytes, bytes]:
    """What each character of :data:`TABLE_RANGES` becomes in the words, for the kernel to cut
    and fold text without :func:`document_text`, decided here by the rule itself.

    A character is known when NFKC leaves it, and text around it, as they are (:func:`_plain`)
    or makes it such characters; case folding (which looks at one character at a time) then
    makes it word characters, which it adds to its word (or a word by itself, one CJK
    character), or characters between words, or some of both (NFKC makes ``½`` a 1, a
    fraction slash and a 2: a 1 that ends the word before, a 2 that starts the next).
    :data:`COMMON_MARKS` lie between words.

    Returns the table (uint32, one entry per code point from 0: 0 between words, 0xFFFFFFFF
    unknown, else the offset of the UTF-8 bytes of its folded form in the pool shifted by 8,
    :data:`_TABLE_WORD` for a word by itself, :data:`_TABLE_GAPS` for bytes with spaces
    between words, and the bytes' length, 1 to :data:`_TABLE_BYTES`) and the pool.
    """
    table = np.full(TABLE_RANGES[-1][1], _TABLE_UNKNOWN, dtype=np.uint32)
    pool = bytearray()
    for low, high in TABLE_RANGES:
        block = "".join(map(chr, range(low, high)))
        if _whole_words(block):  # ideographs and syllables, thousands of them: all at once
            lengths = np.array([len(c.encode()) for c in block], dtype=np.uint32)
            offsets = len(pool) + np.cumsum(lengths, dtype=np.uint32) - lengths
            table[low:high] = offsets << np.uint32(8) | _TABLE_WORD | lengths
            pool += block.encode()
            continue
        for code in range(low, high):
            entry = _table_entry(chr(code))
            if entry is None:
                continue
            flags, data = entry
            table[code] = _TABLE_GAP
            if data.strip():
                table[code] = len(pool) << 8 | flags | len(data)
                pool += data
    return table.tobytes(), bytes(pool)


def _whole_words(block: str) -> bool:
    """Whether every character of a block is a word by itself that NFKC and case folding
    leave as it is: what :func:`_table_entry` finds of each, found faster."""
    return (
        block.isalpha()  # no combining marks, nor unassigned code points
        and block.casefold() == block
        and _CJK_BLOCK_RE.fullmatch(block) is not None
        and all(unicodedata.is_normalized("NFKC", c) for c in block)
    )


_CJK_BLOCK_RE = re.compile(f"[{_CJK}]*")


def _table_entry(char: str) -> tuple[int, bytes] | None:
    """What :func:`char_table` says of one character: its flags and the UTF-8 bytes it adds
    to the words, spaces where it lies between words, or None when it is unknown."""
    if char in COMMON_MARKS:
        return 0, b""
    normal = unicodedata.normalize("NFKC", char)
    if not all(map(_plain, normal)):
        return None
    folded = normal.casefold()
    found = WORD_RE.findall(folded)
    if found == [folded]:
        data = folded.encode()
        cjk = _CJK_RE.match(folded) is not None
        return (_TABLE_WORD if cjk else 0, data) if len(data) <= _TABLE_BYTES else None
    if _CJK_RE.search(folded):  # several words by themselves
        return None
    laid = _NON_WORD_RE.sub(" ", folded).encode()
    return (_TABLE_GAPS, laid) if len(laid) <= _TABLE_BYTES else None


def _plain(char: str) -> bool:
    """Whether NFKC leaves a character in :data:`TABLE_RANGES`, and text around it, as they
    are: it is not a combining mark, it is its own normal form, and no letter of these ranges
    composes with the one before it (those of Hangul jamo and the Indic scripts lie outside)."""
    code = ord(char)
    return (
        any(low <= code < high for low, high in TABLE_RANGES)
        and not unicodedata.category(char).startswith("M")
        and unicodedata.normalize("NFKC", char) == char
    )


@functools.cache
def _kernel_char_table() -> None:
    """Hand :func:`char_table` to the kernel, once per process."""
    assert kernel.compiled is not None
    kernel.compiled.set_char_table(*char_table())


def laid_hashed_words(paragraphs: Sequence[str]) -> HashedWords:
    """:func:`hashed_words` through the folded text :func:`document_text` starts from. The
    kernel cuts folded text without CJK characters at every character that is not a word
    character, hashing as it goes (``hash_word_runs``: the cut :func:`document_text` makes,
    without its laid-out text); CJK text and paragraphs holding line breaks are laid out by
    :func:`document_text` first."""
    compiled = kernel.compiled
    if compiled is None:
        laid = document_text(paragraphs)
        return words_hashed([line.split() for line in laid.split(_PARAGRAPH_BREAK)])
    folded = _folded(paragraphs)
    if folded is not None and (folded.isascii() or not _CJK_RE.search(folded)):
        return _kernel_words(compiled.hash_word_runs(folded))
    data = _laid_out(paragraphs, folded).encode()
    hashes = np.empty((len(data) + 1) // 2, dtype=np.uint64)
    counts = np.empty(len(paragraphs), dtype=np.int64)
    prints = np.empty(len(paragraphs), dtype=np.uint64)
    found = compiled.hash_words(data, hashes, counts, prints)
    return HashedWords(hashes[:found], counts, prints)


def _kernel_words(found: tuple[bytes, bytes, bytes]) -> HashedWords:
    """The kernel's word hashes, counts and fingerprints as arrays."""
    hashes, counts, prints = found
    return HashedWords(
        np.frombuffer(hashes, dtype=np.uint64),
        np.frombuffer(counts, dtype=np.int64),
        np.frombuffer(prints, dtype=np.uint64),
    )


def words_hashed(paragraph_words: Sequence[list[str]]) -> HashedWords:
    """Words already split, one list per paragraph, hashed, counted and fingerprinted with
    xxhash, to the values :func:`hashed_words` gives."""
    return HashedWords(
        word_hashes(list(itertools.chain.from_iterable(paragraph_words))),
        np.array([len(w) for w in paragraph_words], dtype=np.int64),
        np.array(fingerprints(paragraph_words), dtype=np.uint64),
    )


def fingerprints(paragraph_words: Sequence[list[str]]) -> list[int]:
    """Exact 64-bit fingerprint of each paragraph: the xxh64 of its words joined by spaces."""
    joined = map(str.encode, map(" ".join, paragraph_words))
    return list(map(xxhash.xxh64_intdigest, joined))


def word_hashes(paragraph_words: Sequence[str]) -> U64Array:
    """64-bit hash of each word.

    Hashing a word costs about what looking it up in a cache of known words costs, without the
    cache's memory (measured: about 70 ns a word either way).
    """
    encoded = map(str.encode, paragraph_words)
    return np.fromiter(map(xxhash.xxh64_intdigest, encoded), np.uint64, len(paragraph_words))


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
        combined += hashes[position : count - width + 1 + position] * POSITION_MULTIPLIERS[position]
    return (combined >> np.uint64(32)).astype(np.uint32)


def document_shingle_hashes(
    hashes: U64Array, counts: I64Array, size: int
) -> tuple[U32Array, I64Array]:
    """:func:`shingle_hashes` of consecutive paragraphs, from all their word hashes at once.

    Args:
        hashes: the word hashes of all paragraphs, one after the other.
        counts: words in each paragraph.
        size: words per shingle.

    Returns:
        The shingle hashes of all paragraphs, one after the other, and how many each has.
    """
    total = len(hashes)
    shingles = np.where(counts >= size, counts - size + 1, np.minimum(counts, 1))
    if total == 0:
        return np.empty(0, dtype=np.uint32), shingles
    # sums[w - 1][i]: the combined hash of the w words from word i on, across paragraph ends.
    sums = [hashes * POSITION_MULTIPLIERS[0]]
    for position in range(1, min(size, total)):
        sums.append(sums[-1][:-1] + hashes[position:] * POSITION_MULTIPLIERS[position])
    if size == 1:
        return (sums[0] >> np.uint64(32)).astype(np.uint32), shingles
    # Every shingle is a run of one of these arrays: the full-width sums from each paragraph's
    # first word, or one shorter sum for a paragraph of fewer words than ``size``.
    pool = np.concatenate(sums)
    offsets = np.cumsum([0] + [len(s) for s in sums])
    firsts = np.cumsum(counts) - counts
    widths = np.minimum(counts, len(sums))
    bases = offsets[np.maximum(widths - 1, 0)] + firsts
    out_firsts = np.cumsum(shingles) - shingles
    index = np.repeat(bases - out_firsts, shingles) + np.arange(int(shingles.sum()))
    return (pool[index] >> np.uint64(32)).astype(np.uint32), shingles


def shingle_hash_of_text(shingle: bytes) -> int:
    """The hash of one shingle given as space-joined words: what datasketch is handed in tests.

    It equals the value :func:`shingle_hashes` computes for the same words, so a datasketch
    ``MinHash(hashfunc=shingle_hash_of_text)`` is the reference the fast path is checked against.
    """
    parts = shingle.decode("utf-8").split(" ")
    return int(shingle_hashes(word_hashes(parts), len(parts))[0])
