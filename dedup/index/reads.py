"""Reading the index: reports, lists and counts (:class:`dedup.index.store.Store` adds the writes).

A report is read in a few round trips whatever the size of the index: the document's id entry
names its current version, its record follows, the holders of its entries (LSH bands,
paragraphs, exact content, near-copy pieces) are asked in one script call per group, and
their records in one more. Lists merge the groups' records by indexing time
(:mod:`dedup.index.walks`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import NamedTuple

import redis
from redis.cluster import RedisCluster

from dedup.errors import NotFoundError, StoreError, StoreUnavailableError
from dedup.index import layout, scripts, walks
from dedup.index.keys import FLAGS, Keys
from dedup.index.layout import BANDS, CONTENT, PARAGRAPHS, PIECES, Record
from dedup.index.scripts import Batch
from dedup.report import (
    IndexCounts,
    Listed,
    NearCopy,
    Report,
    full_report,
    stored_from_record,
)
from dedup.servers.connection import IndexClient
from dedup.settings import Settings

CLOCK_SKEW = 300.0
"""Seconds by which workers' clocks may disagree: a walk by time looks this far past a time
bound before it stops."""
MAX_CANDIDATES = 200
"""LSH candidates scored per document at most (a hub of copies does not stall a write)."""
MAX_EXACT = 1000
"""Exact copies listed per document at most."""
FLAG_READ = 4096
"""Positions of a group's flag bitmap read per round trip at most, listing one flag."""


def store_error(exc: redis.RedisError) -> StoreError:
    """One line for people, from a redis-py error."""
    reason = str(exc).split("\n")[0] or type(exc).__name__
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return StoreUnavailableError(f"lost the connection to Redis: {reason}")
    if isinstance(exc, redis.ReadOnlyError):  # a replica promoted, or a failover under way
        return StoreUnavailableError(f"Redis is read-only for now: {reason}")
    if isinstance(exc, redis.exceptions.ClusterError | redis.exceptions.ClusterDownError):
        return StoreUnavailableError(f"the Redis Cluster is not serving every slot: {reason}")
    return StoreError(f"Redis answered an error: {reason}")


class Entries(NamedTuple):
    """The index entries of one document version, by family (their 64-bit keys)."""

    bands: Iterable[int]
    paragraphs: Iterable[int]
    content: Iterable[int]
    pieces: Iterable[int] = ()
    """Near-copy pieces of its paragraphs (``near_paragraphs``), each once."""


NO_ENTRIES = Entries((), (), ())
"""The entries of no version."""


class Related(NamedTuple):
    """What the rest of the corpus holds for one version."""

    exact: list[str]
    """Ids of the documents with exactly its content."""
    candidates: list[tuple[str, bytes]]
    """Ids and reduced signatures of the documents sharing an LSH band with it."""
    counts: list[int]
    """Documents holding each paragraph entry asked about, in the order asked."""
    shared: list[list[str]]
    """For each paragraph entry, the other documents holding it while it is not boilerplate."""
    piece_counts: list[int]
    """Documents holding each piece entry asked about, in the order asked."""
    piece_holders: list[list[int]]
    """For each piece entry held by fewer than ``boilerplate_min_documents``, the other
    versions holding it (with a record)."""
    records: dict[int, Record]
    """The records of those versions, by serial."""


UNRECORDED = {"groups": str(layout.LEGACY_GROUPS)}
"""What a recorded signature setting is when an index names none: it was built before the
setting existed."""


def recorded_groups(recorded: dict[str, str]) -> int:
    """The groups an index was built with, by its signature settings."""
    return int(recorded.get("groups", UNRECORDED["groups"]))


def record_or_intent(raw: bytes | None, pending: bytes | None) -> Record | None:
    """A version's record, else the record its intent holds while it is being written."""
    if raw:
        return layout.unpack(raw)
    if pending:
        intent = layout.unpack_intent(pending)
        if intent.kind == layout.WRITING:
            return intent.record
    return None


class Reads:
    """The read side of the index in one Redis, under one namespace."""

    def __init__(
        self, client: IndexClient, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        """Where index times come from (tests set documents in the past with it)."""
        self._lsh: tuple[int, int] | None = None
        """LSH bands and rows once known (:attr:`lsh`)."""
        self._keys: Keys | None = None

    @property
    def meta_key(self) -> str:
        """The index's settings hash, whose name does not depend on them."""
        return Keys(self.settings.namespace).meta

    def _recorded(self) -> dict[str, str] | None:
        """The signature settings the index was built with (None for a new index)."""
        stored = self.client.hget(self.meta_key, "signature")
        return json.loads(stored) if stored else None

    def _learn(self) -> None:
        recorded = self._recorded()
        if recorded is not None:
            self._lsh = int(recorded["lsh_bands"]), int(recorded["lsh_rows"])
            groups = recorded_groups(recorded)
        else:
            self._lsh = self.settings.lsh_bands, self.settings.lsh_rows
            groups = self.new_index_groups()
        self._keys = Keys(self.settings.namespace, layout.Groups(groups))

    def new_index_groups(self) -> int:
        """The groups of a new index: the ``index_groups`` setting, else those that suit
        where the index is (:data:`~dedup.index.layout.CLUSTER_GROUPS` on a cluster,
        :data:`~dedup.index.layout.SERVER_GROUPS` on one server)."""
        if self.settings.index_groups is not None:
            return self.settings.index_groups
        if isinstance(self.client, RedisCluster):
            return layout.CLUSTER_GROUPS
        return layout.SERVER_GROUPS

    @property
    def keys(self) -> Keys:
        """Key names, cut into the index's groups: those it was built with, else ours (a
        new index). Read from the meta key once, like :attr:`lsh`."""
        if self._keys is None:
            self._learn()
        assert self._keys is not None
        return self._keys

    @property
    def lsh(self) -> tuple[int, int]:
        """LSH bands and rows: those the index was built with, else ours (a new index).

        Read from the meta key once; a store sets them when it records its settings there.
        """
        if self._lsh is None:
            self._learn()
        assert self._lsh is not None
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
        [serial] = scripts.run(self.client, [scripts.current(self.keys, layout.id_entry(doc_id))])
        if not serial:
            return 0, None
        found = self.records([serial])
        return found[0] if found else (0, None)

    def records(self, serials: Sequence[int]) -> list[tuple[int, Record]]:
        """The records of these serials, in order; serials no longer indexed are left out."""
        raws = scripts.run(self.client, [scripts.record(self.keys, s) for s in serials])
        return [
            (serial, layout.unpack(raw)) for serial, raw in zip(serials, raws, strict=True) if raw
        ]

    def records_or_intents(self, serials: Sequence[int]) -> dict[int, Record]:
        """The records of these serials, or of those not committed yet the record their
        intent holds (a write in flight), in one round trip; the others are left out."""
        calls = [
            c for s in serials for c in (scripts.record(self.keys, s), scripts.intent(self.keys, s))
        ]
        replies = scripts.run(self.client, calls)
        found = {}
        for serial, raw, pending in zip(serials, replies[::2], replies[1::2], strict=True):
            record = record_or_intent(raw, pending)
            if record is not None:
                found[serial] = record
        return found

    def related(
        self,
        versions: Sequence[tuple[int, Record]],
        *,
        near: bool = True,
        paragraphs: bool = True,
    ) -> list[Related]:
        """What the rest of the corpus holds for each version, in two round trips: the
        holders of its entries, then their records. ``near=False`` leaves LSH candidates
        out, ``paragraphs=False`` the paragraphs and pieces (what duplicate groups need not)."""
        batch = Batch(
            self.keys,
            boilerplate_at=self.settings.boilerplate_min_documents,
            few=self.settings.boilerplate_min_documents,
        )
        asked = []
        for _, record in versions:
            entries = self.entries(record)
            asked.append(
                (
                    batch.lookups(CONTENT, entries.content, scripts.MEMBERS),
                    batch.lookups(BANDS, entries.bands, scripts.MEMBERS) if near else [],
                    batch.lookups(PARAGRAPHS, entries.paragraphs, scripts.FEW)
                    if paragraphs
                    else [],
                    batch.lookups(PIECES, entries.pieces, scripts.FEW) if paragraphs else [],
                )
            )
        answers = batch.send(self.client) if len(batch) else []
        wanted: dict[int, None] = {}
        lists = []
        limit = self.settings.boilerplate_min_documents
        for (serial, _), (content, bands, paras, pieces) in zip(versions, asked, strict=True):
            exact = [s for t in content for s in answers[t].serials if s != serial]
            exact = list(dict.fromkeys(exact))[: 2 * MAX_EXACT]
            seen = set(exact) | {serial}
            near_ = [s for t in bands for s in answers[t].serials if s not in seen]
            near_ = list(dict.fromkeys(near_))[: 2 * MAX_CANDIDATES]
            shared = [
                [s for s in answers[t].serials if s != serial]
                if 2 <= answers[t].count < limit
                else []
                for t in paras
            ]
            holding = [
                [s for s in answers[t].serials if s != serial]
                if 2 <= answers[t].count < limit
                else []
                for t in pieces
            ]
            for group in (exact, near_, *shared, *holding):
                wanted.update((s, None) for s in group)
            lists.append((exact, near_, paras, shared, pieces, holding))
        found = dict(self.records(list(wanted))) if wanted else {}
        out = []
        for exact, near_, paras, shared, pieces, holding in lists:
            held = [s for s in exact if s in found][:MAX_EXACT]
            candidates = [s for s in near_ if s in found][:MAX_CANDIDATES]
            holders = [[s for s in group if s in found] for group in holding]
            out.append(
                Related(
                    exact=[found[s].doc_id for s in held],
                    candidates=[(found[s].doc_id, found[s].signature) for s in candidates],
                    counts=[answers[t].count for t in paras],
                    shared=[
                        [found[s].doc_id for s in group if s in found][:limit] for group in shared
                    ],
                    piece_counts=[answers[t].count for t in pieces],
                    piece_holders=holders,
                    records={s: found[s] for group in holders for s in group},
                )
            )
        return out

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
        return self.reports_of([(serial, record)])[0]

    def reports_of(self, versions: Sequence[tuple[int, Record]]) -> list[Report]:
        """The reports of these versions, read together."""
        return [
            self._report(serial, record, related)
            for (serial, record), related in zip(versions, self.related(versions), strict=True)
        ]

    def _report(self, serial: int, record: Record, related: Related) -> Report:
        distinct = list(dict.fromkeys(record.fingerprints))
        threshold = self.settings.boilerplate_min_documents
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

        A flag without ``since`` walks the flag's own bitmaps; otherwise the walk goes down
        the records by time and stops past ``since`` (allowing for :data:`CLOCK_SKEW`), so a
        time window bounds the work whatever the size of the index. Positions never change,
        so documents indexed during the walk do not shift it.
        """
        try:
            if flag is not None and since is None:
                for batch in self.walk_flag(flag, page=page):
                    yield from (row for row in self._rows(batch) if flag in row["flags"])
                return
            for batch in self.walk_records(newest_first=True, page=page):
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

    def walk_records(
        self, *, newest_first: bool, page: int = 500
    ) -> Iterator[list[tuple[int, Record]]]:
        """Every record by indexing time, ``page`` at a time."""
        return walks.walk(self.client, self.keys, newest_first=newest_first, page=page)

    def walk_flag(self, flag: str, *, page: int = 500) -> Iterator[list[tuple[int, Record]]]:
        """The records whose version carries ``flag``, newest first, ``page`` at a time."""
        return walks.walk(
            self.client,
            self.keys,
            newest_first=True,
            select=walks.flagged(self.keys, flag),
            most=FLAG_READ,
            page=page,
        )

    def flag_bits(
        self, versions: Sequence[tuple[int, Record]], names: Sequence[str]
    ) -> list[set[str]]:
        """The flags among ``names`` that each version's bits carry (one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for serial, _ in versions:
            group, position = self.keys.groups.of(serial), self.keys.groups.position(serial)
            for name in names:
                pipe.getbit(self.keys.flag(name, group), position)
        replies = iter(pipe.execute())
        return [{name for name in names if next(replies)} for _ in versions]

    def _rows(self, records: list[tuple[int, Record]]) -> list[Listed]:
        """List rows of these records (one round trip for their flags)."""
        if not records:
            return []
        flags = self.flag_bits(records, FLAGS)
        return [
            {
                "doc_id": record.doc_id,
                "url": record.url,
                "flags": [name for name in FLAGS if name in carried],
                "paragraphs": record.paragraphs,
                "indexed_at": record.indexed_at,
            }
            for (_, record), carried in zip(records, flags, strict=True)
        ]

    def content_matches(self, content_hashes: Sequence[str], limit: int = 20) -> list[list[str]]:
        """Ids of indexed documents with exactly each normalised content, ``limit`` at most each.

        Two round trips for a whole batch: a scraper asks this for every item it scrapes.
        """
        if not content_hashes:
            return []
        try:
            batch = Batch(self.keys, boilerplate_at=self.settings.boilerplate_min_documents)
            tickets = batch.lookups(CONTENT, [int(h, 16) for h in content_hashes], scripts.MEMBERS)
            answers = batch.send(self.client)
            lists = [answers[t].serials[: 2 * limit] for t in tickets]
            found = dict(self.records(list(dict.fromkeys(s for group in lists for s in group))))
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return [sorted([found[s].doc_id for s in group if s in found][:limit]) for group in lists]

    def stats(self) -> IndexCounts:
        """Counts of documents, paragraphs and flags, summed over the groups."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for group in range(self.keys.groups.count):
                pipe.hgetall(self.keys.counters(group))
                for name in FLAGS:
                    pipe.bitcount(self.keys.flag(name, group))
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise store_error(exc) from None
        totals = {"documents": 0, "paragraphs": 0, "distinct_paragraphs": 0}
        flags = dict.fromkeys(FLAGS, 0)
        width = 1 + len(FLAGS)
        for at in range(0, len(replies), width):
            counters = replies[at]
            for name in totals:
                totals[name] += int(counters.get(name.encode(), 0))
            for name, count in zip(FLAGS, replies[at + 1 : at + width], strict=True):
                flags[name] += int(count)
        return {
            "documents": totals["documents"],
            "paragraphs": totals["paragraphs"],
            "distinct_paragraphs": totals["distinct_paragraphs"],
            "flags": flags,
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

        ``before`` is the cursor a previous page gave (None: the newest); the second value
        is the one to give for the next page, or None after the last. A cursor names the last
        row's indexing time and serial, which never change, so a page neither repeats nor
        skips documents indexed while a client pages through.
        """
        below = _from_cursor(before) if before is not None else None
        rows: list[Listed] = []
        try:
            pages = (
                walks.walk(
                    self.client,
                    self.keys,
                    newest_first=True,
                    select=walks.flagged(self.keys, flag),
                    most=FLAG_READ,
                    page=limit,
                    below=below,
                )
                if flag is not None and since is None
                else walks.walk(self.client, self.keys, newest_first=True, page=limit, below=below)
            )
            for batch in pages:
                for (serial, record), row in zip(batch, self._rows(batch), strict=True):
                    if since is not None and record.indexed_at < since - CLOCK_SKEW:
                        return rows, None
                    if since is not None and row["indexed_at"] < since:
                        continue
                    if flag is None or flag in row["flags"]:
                        rows.append(row)
                        if len(rows) == limit:
                            return rows, _cursor(record.indexed_at, serial)
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return rows, None


def _cursor(indexed_at: float, serial: int) -> int:
    """A page cursor: the last row's indexing time (in milliseconds) and serial, as one
    number."""
    return round(indexed_at * 1000) << 32 | serial


def _from_cursor(cursor: int) -> tuple[int, int]:
    return cursor >> 32, cursor & 0xFFFF_FFFF
