"""The compiled kernel of dedup.pipeline (``_minhash.c``), built where a C compiler is."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

def shingle_fill(
    words: npt.NDArray[np.uint64],
    counts: npt.NDArray[np.int64],
    multipliers: npt.NDArray[np.uint64],
    signings: Sequence[
        tuple[
            npt.NDArray[np.uint32],
            int,
            bytes | npt.NDArray[np.uint8],
            npt.NDArray[np.uint32],
            npt.NDArray[np.uint32],
        ]
    ],
    /,
) -> None:
    """Set each row of each signing's ``out`` to the MinHash of the shingles of its words
    (``out, size, wanted, a, b``); rows not wanted, or without words, are empty."""

def hash_words(
    text: bytes,
    hashes: npt.NDArray[np.uint64],
    counts: npt.NDArray[np.int64],
    fingerprints: npt.NDArray[np.uint64],
    /,
) -> int:
    """Hash, count and fingerprint the words of each line of ``text``; the number of words."""

def paragraph_pieces(
    hashes: npt.NDArray[np.uint64],
    counts: npt.NDArray[np.int64],
    min_words: int,
    short_below: int,
    kept: int,
    /,
) -> list[tuple[int, ...]]:
    """The keys of the ``kept`` smallest pieces of each paragraph with ``min_words`` words or
    more, in key order; () for the others."""

def set_char_table(table: bytes, pool: bytes, /) -> None:
    """Keep the character table of :func:`table_words` (what each code point becomes)."""

def table_words(paragraphs: list[str], /) -> tuple[bytes, bytes, bytes] | None:
    """Hashes, counts and fingerprints of the words of each paragraph, each character taken
    for what the table says, or None when a character is not in it."""

def hash_word_runs(text: str, /) -> tuple[bytes, bytes, bytes]:
    """Hashes, counts and fingerprints of the runs of word characters of each line."""

def word_runs(text: str, /) -> str:
    """``re.sub(r"[^\\w\\n]+", " ", text)``, in one pass of C."""

def repeat_runs(
    signatures: npt.NDArray[np.uint32],
    num_perm: int,
    rows: npt.NDArray[np.int64],
    fingerprints: npt.NDArray[np.uint64],
    word_counts: npt.NDArray[np.int64],
    mix: npt.NDArray[np.uint64],
    salt: int,
    group_limit: int,
    threshold: float,
    max_gap: int,
    min_words: int,
    /,
) -> tuple[int, list[tuple[int, int, int, int, list[float], list[int], list[int], list[int]]]]:
    """Paragraphs claimed, and the runs that claimed them: (i0, j0, i1, j1, shares, matched,
    copies, dropped)."""

def readable_pieces(text: str, separator: str, dropped: str, /) -> list[str]:
    """The pieces between separators, ``dropped`` removed, whitespace collapsed, those with a
    letter or digit."""

def holds(text: str, needles: tuple[str, ...], /) -> int:
    """Bit k set when ``text`` holds needles[k] (ASCII, letters matched in either case)."""

def markup_pieces(
    markup: str,
    starts: tuple[str, ...],
    ends: tuple[str, ...],
    separator: str,
    dropped: str,
    /,
) -> list[str] | None:
    """readable_pieces of the text of markup made of text, these tags and a few references;
    None for other markup."""
