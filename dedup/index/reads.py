"""Reading the index: reports, lists and counts (:class:`dedup.index.store.Store` adds the writes).

A report is read in two round trips whatever the size of the index: one script resolves the
document id to its record, a second one gathers what the rest of the corpus holds for it
(exact copies, LSH candidates with their signatures, paragraph counts and the documents that
share a paragraph). Lists walk the records by serial, newest first, or a flag's bitmap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import cast

import redis

from dedup.errors import NotFoundError, StoreError, StoreUnavailableError
from dedup.index import layout
from dedup.index.keys import FLAGS, Keys
from dedup.index.layout import Record
from dedup.index.scripts import Entries, Related, Scripts, run
from dedup.report import (
    IndexCounts,
    Listed,
    NearCopy,
    Report,
    full_report,
    stored_from_record,
)
from dedup.settings import Settings

CLOCK_SKEW = 300.0
"""Seconds by which workers' clocks may disagree: a walk by serial looks this far past a
time bound before it stops, since serials follow the order writes reached Redis."""
BUCKETS_PER_TRIP = 32
"""Record hashes read per round trip when walking the records."""


def store_error(exc: redis.RedisError) -> StoreError:
    """One line for people, from a redis-py error."""
    reason = str(exc).split("\n")[0] or type(exc).__name__
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return StoreUnavailableError(f"lost the connection to Redis: {reason}")
    if isinstance(exc, redis.ReadOnlyError):  # a replica promoted, or a failover under way
        return StoreUnavailableError(f"Redis is read-only for now: {reason}")
    return StoreError(f"Redis answered an error: {reason}")


class Reads:
    """The read side of the index in one Redis, under one namespace."""

    def __init__(
        self, client: redis.Redis, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self.clock = clock
        """Where index times come from (tests set documents in the past with it)."""
        self.scripts = Scripts(self.keys, settings)
        self._lsh: tuple[int, int] | None = None
        """LSH bands and rows once known (:attr:`lsh`)."""

    @property
    def lsh(self) -> tuple[int, int]:
        """LSH bands and rows: those the index was built with, else ours (a new index).

        Read from the meta key once; a store sets them when it records its settings there.
        """
        if self._lsh is None:
            stored = self.client.hget(self.keys.meta, "signature")
            if stored:
                recorded = json.loads(stored)
                self._lsh = int(recorded["lsh_bands"]), int(recorded["lsh_rows"])
            else:
                self._lsh = self.settings.lsh_bands, self.settings.lsh_rows
        return self._lsh

    @property
    def wide(self) -> int:
        """Signature values the LSH bands read, which records keep 8 bits of."""
        bands, rows = self.lsh
        return bands * rows

    def band_keys(self, reduced: bytes) -> list[int]:
        """The LSH band entry keys of a reduced signature (none when it is empty)."""
        if not reduced:
            return []
        bands, rows = self.lsh
        return layout.band_keys(reduced, bands, rows)

    def entries(self, record: Record) -> Entries:
        """The index entries of a record (each paragraph once)."""
        return Entries(
            self.band_keys(record.signature),
            list(dict.fromkeys(record.fingerprints)),
            [record.content],
            list(dict.fromkeys(k for p in record.near or () for k in p.pieces)),
        )

    def resolve(self, doc_id: str) -> tuple[int, Record | None]:
        """The serial and record of a document (0 and None when it is not indexed)."""
        [found] = run(self.client, [self.scripts.resolve(doc_id)])
        return (found.serial, found.record) if found.record is not None else (0, None)

    # -- reports ------------------------------------------------------------------------------

    def report(self, doc_id: str) -> Report:
        """The report of one document with the duplicates known now."""
        try:
            serial, record = self.resolve(doc_id)
            if record is None:
                raise NotFoundError(
                    f"no document with id {doc_id!r} in namespace {self.keys.namespace!r}"
                )
            return self.grouped(serial, record, self.report_of(serial, record))
        except redis.RedisError as exc:
            raise store_error(exc) from None

    def grouped(self, serial: int, record: Record, report: Report) -> Report:
        """The report with the duplicate group of the document and its canonical copy, at the
        settings' threshold and canonical rule (:mod:`dedup.index.groups`)."""
        from dedup.index import groups  # groups reads through this class

        group = groups.place(self, serial, record, groups.options_for(self))
        if group is None:
            return report
        return {**report, "group": group["group"], "canonical": group["canonical"]}

    def report_of(self, serial: int, record: Record) -> Report:
        """The report of the document version ``serial``, whose record is ``record``."""
        distinct = list(dict.fromkeys(record.fingerprints))
        threshold = self.settings.boilerplate_min_documents
        [related] = run(self.client, [self.scripts.related(serial, self.entries(record))])
        near: list[tuple[str, float]] = []
        for other, packed in related.candidates:
            if len(packed) == len(record.signature):
                score = layout.similarity(record.signature, packed, self.wide)
                if score >= self.settings.near_duplicate_threshold:
                    near.append((other, score))
        counts = dict(zip(distinct, related.counts, strict=True))
        shared = {
            fp: sorted(group) for fp, group in zip(distinct, related.shared, strict=True) if group
        }
        near_counts, copies, words = None, None, None
        if record.near is not None:
            near_counts, copies = self._near_copies(record, related)
            words = [p.words for p in record.near]
        return full_report(
            stored_from_record(record),
            fingerprints=record.fingerprints,
            counts=counts,
            exact=sorted(related.exact),
            near=sorted(near, key=lambda x: (-x[1], x[0])),
            shared=shared,
            boilerplate_min=threshold,
            indexed_at=record.indexed_at,
            near_counts=near_counts,
            copies=copies,
            words=words,
        )

    def _near_copies(
        self, record: Record, related: Related
    ) -> tuple[list[int], dict[int, list[NearCopy]]]:
        """Documents holding a piece of each paragraph, and each paragraph's copies: the
        paragraphs of other documents sharing a piece with it whose estimated similarity is
        at least ``repeat_threshold`` (the best one per document). Boilerplate paragraphs,
        whose pieces many documents hold, have none."""
        near = record.near or []
        distinct = list(dict.fromkeys(k for p in near for k in p.pieces))
        count = dict(zip(distinct, related.piece_counts, strict=True))
        holders = dict(zip(distinct, related.piece_holders, strict=True))
        near_counts = [max((count[k] for k in p.pieces), default=0) for p in near]
        copies: dict[int, list[NearCopy]] = {}
        for i, mine in enumerate(near):
            if near_counts[i] >= self.settings.boilerplate_min_documents:
                continue
            candidates = sorted({s for k in mine.pieces for s in holders[k]})
            pieces = set(mine.pieces)
            rows: list[NearCopy] = []
            for serial in candidates:
                other = related.records[serial]
                best: tuple[float, int] | None = None
                for j, theirs in enumerate(other.near or []):
                    if not pieces.intersection(theirs.pieces):
                        continue
                    exact = other.fingerprints[j] == record.fingerprints[i]
                    score = 1.0 if exact else layout.paragraph_similarity(mine.bits, theirs.bits)
                    if best is None or score > best[0]:
                        best = (score, j)
                if best is not None and best[0] >= self.settings.repeat_threshold:
                    rows.append(
                        {
                            "doc_id": other.doc_id,
                            "paragraph": best[1],
                            "similarity": round(best[0], 3),
                            "exact": other.fingerprints[best[1]] == record.fingerprints[i],
                        }
                    )
            if rows:
                copies[i] = sorted(rows, key=lambda r: (-r["similarity"], r["doc_id"]))
        return near_counts, copies

    def exists(self, doc_id: str) -> bool:
        """Whether the index holds this document."""
        try:
            return self.resolve(doc_id)[1] is not None
        except redis.RedisError as exc:
            raise store_error(exc) from None

    # -- lists --------------------------------------------------------------------------------

    def list_documents(
        self, flag: str | None, limit: int, since: float | None = None
    ) -> list[Listed]:
        """Documents carrying ``flag`` (all documents when None), newest first.

        With ``since`` (seconds since the epoch), only those indexed at or after it.
        """
        return list(islice(self.scan_documents(flag, since=since, page=min(limit, 500)), limit))

    def scan_documents(
        self, flag: str | None = None, *, since: float | None = None, page: int = 500
    ) -> Iterator[Listed]:
        """The rows of :meth:`list_documents`, newest first, read ``page`` at a time.

        A flag without ``since`` walks the flag's own bitmap; otherwise the walk goes down
        the serials, which follow indexing time, and stops past ``since`` (allowing for
        :data:`CLOCK_SKEW`), so a time window bounds the work whatever the size of the index.
        Serials never change, so documents indexed during the walk do not shift it.
        """
        try:
            if flag is not None and since is None:
                yield from self._scan_flag(flag, page)
                return
            for batch in self.walk_records(newest_first=True):
                rows = self._rows(batch)
                for row in rows:
                    if since is not None and row["indexed_at"] < since:
                        continue
                    if flag is None or flag in row["flags"]:
                        yield row
                if since is not None and any(
                    record.indexed_at < since - CLOCK_SKEW for _, record in batch
                ):
                    return
        except redis.RedisError as exc:
            raise store_error(exc) from None

    def _scan_flag(self, flag: str, page: int) -> Iterator[Listed]:
        """The flag's bitmap read down from the newest serial, ``page`` bytes' worth at a time
        (8 serials a byte), and the records of the serials whose bit is set."""
        key = self.keys.flag(flag)
        end = int(self.client.strlen(key)) - 1
        step = max(1, page)
        while end >= 0:
            start = max(0, end - step + 1)
            chunk = cast("bytes", self.client.getrange(key, start, end))
            bits = int.from_bytes(chunk, "big")  # bit 0 of the bitmap is its highest bit
            width = 8 * len(chunk)
            serials = [
                8 * start + offset
                for offset in range(width - 1, -1, -1)
                if bits >> (width - 1 - offset) & 1
            ]
            if serials:
                yield from (
                    row for row in self._rows(self.records(serials)) if flag in row["flags"]
                )
            end = start - 1

    def records(self, serials: Sequence[int]) -> list[tuple[int, Record]]:
        """The records of these serials, in order; serials no longer indexed are left out."""
        pipe = self.client.pipeline(transaction=False)
        for serial in serials:
            pipe.hget(self.keys.records(serial), str(serial))
        return [
            (serial, layout.unpack(raw))
            for serial, raw in zip(serials, pipe.execute(), strict=True)
            if raw
        ]

    def walk_records(self, *, newest_first: bool) -> Iterator[list[tuple[int, Record]]]:
        """Every record in serial order, a few record hashes per round trip."""
        top = int(self.client.hget(self.keys.counters, "serial") or 0)
        numbers = range(top // layout.RECORDS_PER_BUCKET + 1)
        if newest_first:
            numbers = numbers[::-1]
        for first in range(0, len(numbers), BUCKETS_PER_TRIP):
            pipe = self.client.pipeline(transaction=False)
            for number in numbers[first : first + BUCKETS_PER_TRIP]:
                pipe.hgetall(self.keys.records(number * layout.RECORDS_PER_BUCKET))
            found = [
                (int(serial), layout.unpack(raw))
                for replies in pipe.execute()
                for serial, raw in cast("dict[bytes, bytes]", replies).items()
                if serial.isdigit()  # not a refresh owed (layout.REFRESH)
            ]
            if found:
                yield sorted(found, key=lambda x: -x[0] if newest_first else x[0])

    def _rows(self, records: list[tuple[int, Record]]) -> list[Listed]:
        """List rows of these records (one round trip for their flags)."""
        pipe = self.client.pipeline(transaction=False)
        for serial, _ in records:
            for name in FLAGS:
                pipe.getbit(self.keys.flag(name), serial)
        replies = iter(pipe.execute())
        return [
            {
                "doc_id": record.doc_id,
                "url": record.url,
                "flags": [name for name in FLAGS if next(replies)],
                "paragraphs": record.paragraphs,
                "indexed_at": record.indexed_at,
            }
            for _, record in records
        ]

    def content_matches(self, content_hashes: Sequence[str], limit: int = 20) -> list[list[str]]:
        """Ids of indexed documents with exactly each normalised content, ``limit`` at most each.

        One round trip for a whole batch: a scraper asks this for every item it scrapes.
        """
        if not content_hashes:
            return []
        keys = [int(h, 16) for h in content_hashes]
        try:
            [found] = run(self.client, [self.scripts.contents(keys, limit)])
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return [sorted(ids) for ids in found]

    def stats(self) -> IndexCounts:
        """Counts of documents, paragraphs and flags."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.keys.counters)
            for name in FLAGS:
                pipe.bitcount(self.keys.flag(name))
            counters, *flag_counts = pipe.execute()
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return {
            "documents": int(counters.get(b"documents", 0)),
            "paragraphs": int(counters.get(b"paragraphs", 0)),
            "distinct_paragraphs": int(counters.get(b"distinct_paragraphs", 0)),
            "flags": dict(zip(FLAGS, (int(n) for n in flag_counts), strict=True)),
        }

    def page_documents(
        self,
        flag: str | None = None,
        *,
        since: float | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> tuple[list[Listed], int | None]:
        """One page of :meth:`list_documents` and where the next one starts.

        ``before`` is the serial the page starts below (None: the newest); the second value
        is the one to give for the next page, or None after the last. Serials never change,
        so a page neither repeats nor skips documents indexed while a client pages through.
        """
        try:
            top = int(self.client.hget(self.keys.counters, "serial") or 0)
            start = top if before is None else min(top, before - 1)
            rows: list[Listed] = []
            bucket = start // layout.RECORDS_PER_BUCKET
            while bucket >= 0:
                pipe = self.client.pipeline(transaction=False)
                trip = min(BUCKETS_PER_TRIP, limit // layout.RECORDS_PER_BUCKET + 1)
                numbers = range(bucket, max(-1, bucket - trip), -1)
                for number in numbers:
                    pipe.hgetall(self.keys.records(number * layout.RECORDS_PER_BUCKET))
                found = sorted(
                    (
                        (int(serial), layout.unpack(raw))
                        for replies in pipe.execute()
                        for serial, raw in cast("dict[bytes, bytes]", replies).items()
                        if serial.isdigit() and int(serial) <= start
                    ),
                    key=lambda x: -x[0],
                )
                for (serial, record), row in zip(found, self._rows(found), strict=True):
                    if since is not None and record.indexed_at < since - CLOCK_SKEW:
                        return rows, None
                    if since is not None and row["indexed_at"] < since:
                        continue
                    if flag is None or flag in row["flags"]:
                        rows.append(row)
                        if len(rows) == limit:
                            return rows, (serial if serial > 0 else None)
                bucket = numbers[-1] - 1
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return rows, None
