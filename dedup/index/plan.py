"""One batch's write as it goes through the steps of :mod:`dedup.index.store`: a plan per
document, what a pass settled, and what indexing a document found."""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

from dedup.index import entries, layout
from dedup.index.access import NO_ENTRIES, Entries
from dedup.index.entries import Held
from dedup.index.layout import BANDS, CONTENT, PARAGRAPHS, PIECES, Family
from dedup.index.records import Record
from dedup.pipeline.analysis import Analysis

CONFLICT_RETRIES = 5
"""Passes a batch gets before a document that kept changing under it fails the write."""


@dataclass(frozen=True)
class Indexed:
    """What indexing one document found."""

    doc_id: str
    changed: bool
    exact: list[str] = field(default_factory=list)
    near: list[tuple[str, float]] = field(default_factory=list)


COUNT = itemgetter(0)
"""An answer's holders (:attr:`dedup.index.entries.Held.count`), for C-speed passes."""

ADDED: dict[str, tuple[Family, str]] = {
    "bands": (BANDS, entries.ADD_SEEING),
    "content": (CONTENT, entries.ADD_SEEING),
    "paragraphs": (PARAGRAPHS, entries.ADD_PARAGRAPH),
    "pieces": (PIECES, entries.ADD_PIECE),
}
"""How a new version joins each family of its entries (:class:`dedup.index.access.Entries`'s
fields): band sharers and exact copies answer who held them; paragraphs and pieces how many,
and who once they turn boilerplate."""


@dataclass
class Plan:
    """One document's write, as it goes through the steps."""

    doc_id: str
    analysis: Analysis | None
    """None for a delete."""
    old_serial: int = 0
    id: layout.IdEntry = field(init=False)
    """The document's id entry (its id hashed once for every step)."""
    old: Record | None = None
    record: Record | None = None
    packed: bytes = b""
    """The new record, packed ('' for a delete)."""
    digest: bytes = b""
    """The new version's digest, which its id entry keeps."""
    indexed_at: float = 0.0
    serial: int = 0
    written: Entries = NO_ENTRIES
    """The entries of the announced record."""
    own: dict[str, tuple[list[int], list[Held]]] = field(default_factory=dict)
    """Per family, the entries of the document's own shard, which the announcing script
    added, and what it answered for each."""
    keys: list[int] = field(default_factory=list)
    """The entry key of each of the new version's paragraphs, in order."""
    pieces: list[tuple[int, ...]] = field(default_factory=list)
    exact: list[tuple[int, str]] = field(default_factory=list)
    near: list[tuple[int, str, float]] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    raised: dict[str, set[int]] = field(default_factory=dict)
    refresh: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.id = layout.id_entry(self.doc_id)


@dataclass
class Pass:
    """One pass of a batch's write: its writer, and what it settled for its documents."""

    token: str
    results: dict[int, Indexed]
    """The documents written, or found unchanged."""
    again: list[int] = field(default_factory=list)
    """The documents to write in another pass (another writer of the same id met on the
    way)."""
