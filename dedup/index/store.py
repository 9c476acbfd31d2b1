"""Writing the index: documents in, duplicates flagged on both sides; deletes and purges.

All Redis access lives in this module, :mod:`dedup.index.reads` (reports, lists, counts) and
:mod:`dedup.servers.connection`.
The layout is :mod:`dedup.index.layout` (a packed record per document version, small bucketed
hashes of index entries, a bitmap per flag), the key names :mod:`dedup.index.keys`. Indexing a
batch of documents costs two round trips whatever its size: one read script per document
finds what is there, then one atomic write script per document replaces it, scores its
candidates and raises the flags on both sides. Reports and lists are read by
:class:`dedup.index.reads.Reads`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from typing import Any

import redis

from dedup.errors import SettingsMismatchError, StoreError
from dedup.index import layout
from dedup.index.keys import FLAGS
from dedup.index.layout import BANDS, CONTENT, PARAGRAPHS, Record
from dedup.index.reads import (
    CLOCK_SKEW,
    MAX_CANDIDATES,
    MAX_EXACT,
    Reads,
    decoded,
    entries,
    script,
    store_error,
)
from dedup.pipeline import signature
from dedup.pipeline.analysis import Analysis
from dedup.report import record_extra
from dedup.settings import Settings

_CONFLICT_RETRIES = 5


def signature_settings(settings: Settings) -> dict[str, str]:
    """What a stored signature depends on: writers with other values must not mix in."""
    return {
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


class Store(Reads):
    """The index in one Redis, under one namespace, for one set of signature settings."""

    def __init__(
        self, client: redis.Redis, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, settings, clock)
        self._write = client.register_script(script("index.lua"))
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
        self.__dict__.pop("_lsh", None)
        self.__dict__.pop("_write_constants", None)  # holds the LSH width read above
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
        plan = self.plan(mode="resolve")
        keys = {i: [layout.paragraph_key(fp) for fp in analyses[i].fingerprints] for i in todo}
        calls = []
        for i in todo:
            analysis = analyses[i]
            distinct = dict.fromkeys(keys[i])
            calls.append(
                (
                    self._read,
                    [plan, self.id_entry(analysis.document.doc_id), entries(PARAGRAPHS, distinct)],
                )
            )
        found = []
        for i, reply in zip(todo, self.run(calls), strict=True):
            serial, raw, owed, *counts = reply
            found.append(
                _Found(
                    int(serial),
                    layout.unpack(raw) if raw else None,
                    keys[i],
                    dict(zip(dict.fromkeys(keys[i]), (int(n) for n in counts), strict=True)),
                    layout.unpack_serials(owed) if owed else [],
                )
            )
        return found

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
            writes.append((self._write, self._write_args(found.serial, old, record, analysis)))
            planned.append(i)
        conflicts: list[int] = []
        for i, reply in zip(planned, self.run(writes), strict=True):
            if reply[0] == b"conflict":
                conflicts.append(i)
                continue
            flat = [decoded(x) for x in reply[2]]
            near = sorted(
                ((doc, float(score)) for doc, score in zip(flat[::2], flat[1::2], strict=True)),
                key=lambda x: (-x[1], x[0]),
            )
            exact = sorted(decoded(x) for x in reply[1])
            results[i] = Indexed(analyses[i].document.doc_id, True, exact, near)
            if reply[3]:
                affected.update(int(x) for x in reply[3])
                owing.append(int(reply[4]))
        return conflicts

    def _record(self, analysis: Analysis, found: _Found) -> Record:
        """The record of a new version; its signature leaves out boilerplate paragraphs.

        A paragraph's count after the write is its count now, plus this document unless its
        old version already holds the paragraph (and is counted in it).
        """
        threshold = self.settings.boilerplate_min_documents
        held = frozenset(found.record.fingerprints) if found.record is not None else frozenset()
        boilerplate = frozenset(
            i
            for i, key in enumerate(found.keys)
            if found.counts.get(key, 0) + (key not in held) >= threshold
        )
        sig = analysis.document_signature(boilerplate)
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
        )

    def _write_args(
        self, serial: int, old: Record | None, record: Record | None, analysis: Analysis | None
    ) -> list[Any]:
        """Arguments of the write script: replace version ``serial`` (0: none) by ``record``."""
        doc_id = record.doc_id if record is not None else old.doc_id if old is not None else ""
        flags = []
        if analysis is not None and analysis.repeats.doubled_body:
            flags.append(self.keys.flag("doubled_body"))
        if analysis is not None and analysis.repeats.runs:
            flags.append(self.keys.flag("internal_repeat"))
        plan = self.plan(
            **self._write_constants,
            expect=serial,
            delete=record is None,
            flags=flags,
            paragraphs=record.paragraphs if record is not None else 0,
        )
        return [
            plan,
            layout.pack(record) if record is not None else b"",
            self.id_entry(doc_id),
            *self._entries(record),
            *self._entries(old),
        ]

    @cached_property
    def _write_constants(self) -> dict[str, Any]:
        """The part of every write plan that is the same for all documents."""
        keys = self.keys
        return {
            "counters": keys.counters,
            "all_flags": [keys.flag(f) for f in FLAGS],
            "boilerplate_flag": keys.flag("boilerplate"),
            "exact_flag": keys.flag("exact_duplicate"),
            "near_flag": keys.flag("near_duplicate"),
            "boilerplate_at": self.settings.boilerplate_min_documents,
            "near_threshold": self.settings.near_duplicate_threshold,
            "max_candidates": MAX_CANDIDATES,
            "max_exact": MAX_EXACT,
            "inline": layout.INLINE,
            "wide": self.wide,
        }

    def _entries(self, record: Record | None) -> list[bytes]:
        """The band, paragraph and content entries of a record, packed for the scripts."""
        if record is None:
            return [b"", b"", b""]
        return [
            entries(BANDS, self.band_keys(record.signature)),
            entries(PARAGRAPHS, dict.fromkeys(record.fingerprints)),
            entries(CONTENT, [record.content]),
        ]

    # -- removing ---------------------------------------------------------------------------

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Take documents out of the index (record, entries, flags).

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
        calls = [
            (self._write, self._write_args(serial, old, None, None)) for serial, old in versions
        ]
        removed = []
        for reply in self.run(calls) if calls else []:
            removed.append(reply[0] == b"ok")
            if removed[-1]:
                affected.update(int(x) for x in reply[3])
        return removed

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
