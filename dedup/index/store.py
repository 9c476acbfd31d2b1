"""Writing the index: documents in, duplicates flagged on both sides; deletes and purges.

The layout is :mod:`dedup.index.layout` (a packed record per document version, small bucketed
hashes of index entries, a bitmap per flag), the key names :mod:`dedup.index.keys`, the Lua
scripts :mod:`dedup.index.scripts`. Indexing a batch of documents costs two round trips
whatever its size: one read script per document finds what is there, then one atomic write
script per document replaces it, scores its candidates and raises the flags on both sides.
Reports and lists are read by :class:`dedup.index.reads.Reads`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

import redis

from dedup.errors import SettingsMismatchError, StoreError
from dedup.index import layout, texts
from dedup.index.layout import Record
from dedup.index.reads import CLOCK_SKEW, Reads, store_error
from dedup.index.scripts import NO_ENTRIES, Call, Written, run
from dedup.pipeline import signature
from dedup.pipeline.analysis import Analysis
from dedup.report import record_extra
from dedup.servers.connection import unlink_all
from dedup.settings import Settings

_CONFLICT_RETRIES = 5


def signature_settings(settings: Settings) -> dict[str, str]:
    """What a stored signature depends on: writers with other values must not mix in.

    ``near_paragraphs`` is named only when on, so an index built before the setting existed
    (or with it off) has the same settings as a writer with it off.
    """
    recorded = {
        "format": layout.FORMAT_VERSION,
        "scheme": signature.SCHEME,
        "hash": "xxh64-words-combined",
        "signature_bits": str(layout.SIGNATURE_BITS),
        "num_perm": str(settings.num_perm),
        "seed": str(settings.seed),
        "shingle_words": str(settings.shingle_words),
        "paragraph_shingle_words": str(settings.paragraph_shingle_words),
        "min_paragraph_words": str(settings.min_paragraph_words),
        "lsh_bands": str(settings.lsh_bands),
        "lsh_rows": str(settings.lsh_rows),
    }
    if settings.near_paragraphs:
        recorded["near_paragraphs"] = "true"
    return recorded


def _versions() -> dict[str, str]:
    return {
        "datasketch_version": metadata.version("datasketch"),
        "dedup_version": metadata.version("dedup"),
    }


@dataclass(frozen=True)
class Indexed:
    """What indexing one document found."""

    doc_id: str
    changed: bool
    exact: list[str] = field(default_factory=list)
    near: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class _Found:
    """What the index holds for a document before it is written again."""

    serial: int
    record: Record | None
    keys: list[int]
    """The entry key of each of the new version's paragraphs, in order."""
    counts: dict[int, int]
    """Documents holding each of those paragraphs, by entry key."""
    owed: list[int] = field(default_factory=list)
    """Versions whose flag refresh the write of version ``serial`` still owes."""
    pieces: list[tuple[int, ...]] = field(default_factory=list)
    """The entry keys of each of the new version's near-copy pieces, by paragraph."""
    piece_counts: dict[int, int] = field(default_factory=dict)
    """Documents holding each of those pieces, by entry key."""


class Store(Reads):
    """The index in one Redis, under one namespace, for one set of signature settings."""

    def __init__(
        self, client: redis.Redis, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, settings, clock)
        self._meta_checked = False

    # -- settings ---------------------------------------------------------------------------

    def check_settings(self) -> None:
        """Record our signature settings in an empty store, or refuse to mix with others."""
        wanted = signature_settings(self.settings)
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.hsetnx(self.keys.meta, "signature", json.dumps(wanted, sort_keys=True))
            pipe.hget(self.keys.meta, "signature")
            _, stored = pipe.execute()
        except redis.RedisError as exc:
            raise store_error(exc) from None
        have = json.loads(stored)
        if have != wanted:
            diff = ", ".join(
                f"{k}={have.get(k)} (ours {wanted.get(k)})"
                for k in sorted(set(have) | set(wanted))
                if have.get(k) != wanted.get(k)
            )
            raise SettingsMismatchError(
                f"namespace {self.settings.namespace!r} was built with other signature "
                f"settings: {diff}; use another namespace or the same settings"
            )
        self.client.hset(self.keys.meta, items=[x for pair in _versions().items() for x in pair])
        self._lsh = self.settings.lsh_bands, self.settings.lsh_rows  # the index's, checked above
        self._meta_checked = True

    # -- writing ----------------------------------------------------------------------------

    def index(self, analyses: Sequence[Analysis]) -> list[Indexed]:
        """Index a batch of analysed documents; each ends indexed exactly once."""
        if not self._meta_checked:
            self.check_settings()
        try:
            return self._index(list(analyses))
        except redis.RedisError as exc:
            raise store_error(exc) from None

    def _index(self, analyses: list[Analysis]) -> list[Indexed]:
        results: dict[int, Indexed] = {}
        affected: set[int] = set()
        owing: list[int] = []  # versions whose refresh is owed until ``affected`` is refreshed
        pending = list(range(len(analyses)))
        for _ in range(_CONFLICT_RETRIES):
            if not pending:
                break
            pending = self._index_once(analyses, pending, results, affected, owing)
        if pending:
            raise StoreError(f"document {analyses[pending[0]].document.doc_id} kept changing")
        self.refresh_flags(affected)
        if owing:
            pipe = self.client.pipeline(transaction=False)
            for serial in owing:
                pipe.hdel(self.keys.records(serial), f"{serial}{layout.REFRESH}")
            pipe.execute()
        return [results[i] for i in range(len(analyses))]

    def _find(self, analyses: list[Analysis], todo: list[int]) -> list[_Found]:
        """One round trip: the current version of each document and its paragraph counts."""
        keys = {i: [layout.paragraph_key(fp) for fp in analyses[i].fingerprints] for i in todo}
        distinct = {i: list(dict.fromkeys(keys[i])) for i in todo}
        pieces = {
            i: [tuple(layout.piece_key(k) for k in p) for p in analyses[i].pieces or ()]
            for i in todo
        }
        held = {i: list(dict.fromkeys(k for p in pieces[i] for k in p)) for i in todo}
        calls = [
            self.scripts.resolve(analyses[i].document.doc_id, distinct[i], held[i]) for i in todo
        ]
        return [
            _Found(
                found.serial,
                found.record,
                keys[i],
                dict(zip(distinct[i], found.counts, strict=True)),
                found.owed,
                pieces[i],
                dict(zip(held[i], found.piece_counts, strict=True)),
            )
            for i, found in zip(todo, run(self.client, calls), strict=True)
        ]

    def _index_once(
        self,
        analyses: list[Analysis],
        todo: list[int],
        results: dict[int, Indexed],
        affected: set[int],
        owing: list[int],
    ) -> list[int]:
        """One read and one write round trip for the documents ``todo``; returns conflicts.

        Adds to ``affected`` the versions whose flags the writes may have changed, and to
        ``owing`` the versions whose refresh field names them; an unchanged document whose
        earlier write died before its refresh brings that refresh back.
        """
        writes = []
        planned: list[int] = []
        for i, found in zip(todo, self._find(analyses, todo), strict=True):
            analysis = analyses[i]
            document = analysis.document
            old = found.record
            if (  # the same version again: nothing to build or write
                old is not None
                and old.content == int(analysis.content_hash, 16)
                and old.url == document.url
                and old.extra.get("fetched_at") == document.fetched_at
            ):
                results[i] = Indexed(document.doc_id, changed=False)
                if found.owed:
                    affected.update(found.owed)
                    owing.append(found.serial)
                continue
            record = self._record(analysis, found)
            writes.append(self._write(found.serial, old, record, analysis))
            planned.append(i)
        conflicts: list[int] = []
        for i, written in zip(planned, run(self.client, writes), strict=True):
            if not written.done:
                conflicts.append(i)
                continue
            near = sorted(written.near, key=lambda x: (-x[1], x[0]))
            results[i] = Indexed(analyses[i].document.doc_id, True, sorted(written.exact), near)
            if written.affected:
                affected.update(written.affected)
                owing.append(written.serial)
        return conflicts

    def _record(self, analysis: Analysis, found: _Found) -> Record:
        """The record of a new version; its signature leaves out boilerplate paragraphs.

        A paragraph's count after the write is its count now, plus this document unless its
        old version already holds the paragraph (and is counted in it).
        """
        threshold = self.settings.boilerplate_min_documents
        old = found.record
        held = frozenset(old.fingerprints) if old is not None else frozenset()
        boilerplate = {
            i
            for i, key in enumerate(found.keys)
            if found.counts.get(key, 0) + (key not in held) >= threshold
        }
        # A paragraph whose near copies (a piece of it) many documents hold is boilerplate too.
        old_pieces = frozenset(k for p in ((old.near or []) if old else []) for k in p.pieces)
        for i, keys in enumerate(found.pieces):
            if any(found.piece_counts.get(k, 0) + (k not in old_pieces) >= threshold for k in keys):
                boilerplate.add(i)
        sig = analysis.document_signature(frozenset(boilerplate))
        near = None
        if analysis.pieces is not None:
            near = [
                layout.NearParagraph(
                    words,
                    layout.paragraph_bits(analysis.paragraph_signatures[i]) if keys else b"",
                    keys,
                )
                for i, (words, keys) in enumerate(
                    zip(analysis.word_counts, found.pieces, strict=True)
                )
            ]
        return Record(
            doc_id=analysis.document.doc_id,
            url=analysis.document.url,
            paragraphs=len(analysis.paragraphs),
            indexed_at=round(self.clock(), 3),
            content=int(analysis.content_hash, 16),
            signature=layout.reduce_signature(sig, self.wide) if sig is not None else b"",
            fingerprints=found.keys,
            doubled_body=analysis.repeats.doubled_body,
            extra=record_extra(analysis),
            near=near,
        )

    def _write(
        self, serial: int, old: Record | None, record: Record | None, analysis: Analysis | None
    ) -> Call[Written]:
        """The write script call that replaces version ``serial`` (0: none) by ``record``."""
        doc_id = record.doc_id if record is not None else old.doc_id if old is not None else ""
        flags = []
        if analysis is not None and analysis.repeats.doubled_body:
            flags.append("doubled_body")
        if analysis is not None and analysis.repeats.runs:
            flags.append("internal_repeat")
        return self.scripts.write(
            doc_id=doc_id,
            expect=serial,
            record=record,
            flags=flags,
            wide=self.wide,
            new=self.entries(record) if record is not None else NO_ENTRIES,
            old=self.entries(old) if old is not None else NO_ENTRIES,
        )

    # -- removing ---------------------------------------------------------------------------

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Take documents out of the index (record, entries, flags, kept text).

        Returns how many were there. The flags of documents that matched them are brought up
        to date.
        """
        deleted = 0
        affected: set[int] = set()
        try:
            for doc_id in doc_ids:
                for _ in range(_CONFLICT_RETRIES):
                    serial, old = self.resolve(doc_id)
                    if old is None:
                        break
                    [removed] = self._remove([(serial, old)], affected)
                    if removed:
                        deleted += 1
                        break
            self.refresh_flags(affected)
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return deleted

    def purge(self, older_than: float) -> int:
        """Delete the documents indexed more than ``older_than`` seconds ago.

        Only the versions the walk read are deleted: a document indexed again since then
        keeps its new version.
        """
        cutoff = self.clock() - older_than
        total = 0
        try:
            for batch in self.walk_records(newest_first=False):
                old = [(serial, record) for serial, record in batch if record.indexed_at < cutoff]
                affected: set[int] = set()
                total += sum(self._remove(old, affected))
                self.refresh_flags(affected)
                if any(record.indexed_at >= cutoff + CLOCK_SKEW for _, record in batch):
                    break
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return total

    def _remove(self, versions: list[tuple[int, Record]], affected: set[int]) -> list[bool]:
        """Take these versions out in one round trip; False for one that is no longer current.

        A version indexed again or deleted since it was read is left alone. The serials whose
        flags may have changed are added to ``affected``.
        """
        calls = [self._write(serial, old, None, None) for serial, old in versions]
        removed = []
        for written in run(self.client, calls):
            removed.append(written.done)
            affected.update(written.affected)
        gone = [old.doc_id for (_, old), done in zip(versions, removed, strict=True) if done]
        texts.forget(self.client, self.keys, gone)  # kept words go with their document
        return removed

    def drop(self) -> int:
        """Delete every key of the namespace, settings included; returns how many there were.

        For a throwaway namespace (an evaluation run's), which nothing else writes to then.
        """
        try:
            dropped = unlink_all(self.client, self.client.scan_iter(self.keys.pattern, count=1000))
        except redis.RedisError as exc:
            raise store_error(exc) from None
        self._lsh = None
        self._meta_checked = False
        return dropped

    def refresh_flags(self, serials: set[int]) -> None:
        """Bring the corpus-dependent flags of these document versions in line with reports."""
        if not serials:
            return
        for serial, record in self.records(sorted(serials)):
            flags = set(self.report_of(serial, record)["flags"])
            pipe = self.client.pipeline(transaction=False)
            for name in ("exact_duplicate", "near_duplicate", "boilerplate"):
                pipe.setbit(self.keys.flag(name), serial, int(name in flags))
            pipe.execute()
