"""The pure part of the pipeline: one document in, everything the index and report need out.

extract → words → fingerprints and shingles → signatures → internal repeats. No I/O; the
same function serves ``dedup check``, the workers and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import xxhash

from dedup.errors import InputError
from dedup.pipeline import kernel, scripts, signature, text
from dedup.pipeline.document import Document
from dedup.pipeline.extract import extract_paragraphs
from dedup.pipeline.repeats import Repeats, find_repeats
from dedup.settings import Settings


@dataclass(frozen=True)
class Analysis:
    """A document taken apart: paragraphs, their fingerprints and signatures, its repeats."""

    document: Document
    paragraphs: list[str]
    word_counts: list[int]
    fingerprints: list[int]
    signed: list[bool]
    paragraph_signatures: npt.NDArray[np.uint32]
    """Rows of paragraph signatures (single-word shingles); unsigned rows are empty."""
    shingle_signatures: npt.NDArray[np.uint32]
    """Rows of per-paragraph signatures over the document shingles, combined per document."""
    content_hash: str
    repeats: Repeats
    min_words: int
    """Fewest words a document signature may stand on."""
    pieces: list[tuple[int, ...]] | None = None
    """The near-copy pieces of each paragraph (:func:`paragraph_pieces`), None when the
    settings do not keep them (``near_paragraphs``)."""

    def document_signature(
        self, excluded: frozenset[int] = frozenset()
    ) -> npt.NDArray[np.uint32] | None:
        """The document signature without the ``excluded`` paragraphs (boilerplate).

        When leaving them out would leave fewer words than a signed paragraph needs, they are
        kept: a document made mostly of shared paragraphs (a wire story) must still be found.
        None when the document has too few words for a signature at all.
        """
        rows = [i for i in range(len(self.paragraphs)) if i not in excluded]
        if sum(self.word_counts[i] for i in rows) < self.min_words:
            rows = list(range(len(self.paragraphs)))
        if sum(self.word_counts[i] for i in rows) < self.min_words:
            return None
        return signature.combine(self.shingle_signatures[rows])


SHORT_PIECES = 15
"""Paragraphs with fewer words put their word count into their piece keys: their pieces are
only a few words long, and a three-word phrase alone is shared by unrelated paragraphs."""


PIECES_KEPT = 2
"""Pieces of a paragraph the index keeps: the two of its three with the smallest keys."""


def paragraph_pieces(words: npt.NDArray[np.uint64]) -> tuple[int, ...]:
    """Keys of the pieces of a paragraph the index keeps: of its head, middle and tail (a
    third of its words each, three at least; no middle when it would hold fewer than three),
    the :data:`PIECES_KEPT` with the smallest keys, in key order.

    One or two words substituted anywhere leave at least one piece whole. Keeping two of
    three by their keys, a choice both copies make alike, keeps that: with one piece changed,
    the smaller of the two whole ones is kept on both sides; with two changed, the whole one
    is kept on both sides about half the time, and a report finds the rest of an excerpt
    from the paragraphs next to one it found (:mod:`dedup.index.reports`)."""
    n = len(words)
    size = max(3, n // 3)
    spans = [(0, 0, size), (2, n - size, n)]
    if n - 2 * size >= 3:
        spans.insert(1, (1, size, n - size))
    length = n.to_bytes(2, "little") if n < SHORT_PIECES else b""
    keys = sorted(
        xxhash.xxh64_intdigest(bytes([tag]) + length + words[start:end].tobytes())
        for tag, start, end in spans
    )
    return tuple(keys[:PIECES_KEPT])


def all_pieces(
    hashes: npt.NDArray[np.uint64], counts: npt.NDArray[np.int64], min_words: int
) -> list[tuple[int, ...]]:
    """The pieces of every paragraph whose words follow one another in ``hashes`` (``counts``
    of them each): :func:`paragraph_pieces` of those signed (``min_words`` words or more), ()
    for the others; in one call of the compiled kernel where there is one (paragraphs of
    fewer than three words are signed only where ``min_words`` is under 3, which only
    Python's slicing handles)."""
    if kernel.compiled is not None and min_words >= 3:
        return kernel.compiled.paragraph_pieces(
            np.ascontiguousarray(hashes, dtype=np.uint64),
            np.ascontiguousarray(counts, dtype=np.int64),
            min_words,
            SHORT_PIECES,
            PIECES_KEPT,
        )
    ends = np.cumsum(counts)
    return [
        paragraph_pieces(hashes[end - n : end]) if n >= min_words else ()
        for n, end in zip(counts.tolist(), ends.tolist(), strict=True)
    ]


def hashed_words(paragraphs: list[str], settings: Settings) -> text.HashedWords:
    """The words of every paragraph hashed, counted and fingerprinted: in one kernel call
    (:func:`dedup.pipeline.text.hashed_words`), unless ``script_words`` must split some of
    them by script (:func:`split_words`). Text written only in characters the kernel's table
    knows (:func:`dedup.pipeline.text.char_table`) holds no such script, so it is hashed
    before they are looked for."""
    found = text.plain_hashed_words(paragraphs)
    if found is not None:
        return found
    if settings.script_words and any(map(scripts.needs_scripts, paragraphs)):
        return text.words_hashed(split_words(paragraphs, settings))
    return text.laid_hashed_words(paragraphs)


def split_words(paragraphs: list[str], settings: Settings) -> list[list[str]]:
    """The normalised words of each paragraph (:func:`dedup.pipeline.text.document_words`),
    those holding combining marks or a script without spaces split again by script
    (:func:`dedup.pipeline.scripts.resegment`) when ``script_words`` is on."""
    found = text.document_words(paragraphs)
    return scripts.resegment(paragraphs, found) if settings.script_words else found


def document_shingle_words(words: int, settings: Settings) -> int:
    """Words per shingle of the signature of a document of ``words`` words.

    A short text (``short_document_words`` or fewer) takes single words: with 3-word shingles
    each edited word of a 15-word text changes a fifth of them, so a copy with two small
    edits falls under the near-duplicate threshold. Longer documents keep ``shingle_words``,
    whose order of words tells unrelated long texts apart.
    """
    return 1 if words <= settings.short_document_words else settings.shingle_words


def analyse(document: Document, settings: Settings) -> Analysis:
    """Run the pure pipeline on one document.

    Raises:
        InputError: the document has no text, or more paragraphs than the settings allow.
    """
    paragraphs = extract_paragraphs(document.body, document.fmt, settings.max_paragraphs)
    if not paragraphs:
        raise InputError(f"document {document.doc_id} has no text")
    # All paragraphs go through hashing, shingling and MinHash together: one call per step,
    # not one per word or paragraph (whose overhead would exceed the work on a few dozen words).
    words = hashed_words(paragraphs, settings)
    hashes, counts = words.hashes, words.counts
    word_counts = counts.tolist()
    fingerprints = words.fingerprints.tolist()
    signed_rows = counts >= settings.min_paragraph_words
    signed = signed_rows.tolist()
    paragraph_signatures, shingle_signatures = signature.signatures(
        hashes,
        counts,
        [
            signature.Signing(
                settings.paragraph_shingle_words,
                settings.paragraph_num_perm,
                settings.seed,
                signed_rows,
            ),
            signature.Signing(
                document_shingle_words(sum(word_counts), settings), settings.num_perm, settings.seed
            ),
        ],
    )
    content = words.fingerprints.tobytes()
    repeats = find_repeats(
        words.fingerprints,
        paragraph_signatures,
        signed_rows,
        word_counts,
        settings.repeat_threshold,
    )
    pieces = None
    if settings.near_paragraphs:
        pieces = all_pieces(hashes, counts, settings.min_paragraph_words)
    return Analysis(
        document=document,
        paragraphs=paragraphs,
        word_counts=word_counts,
        fingerprints=fingerprints,
        signed=signed,
        paragraph_signatures=paragraph_signatures,
        shingle_signatures=shingle_signatures,
        content_hash=xxhash.xxh64_hexdigest(content),
        repeats=repeats,
        min_words=settings.min_paragraph_words,
        pieces=pieces,
    )
