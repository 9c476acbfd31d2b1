"""The index as every reader and writer starts from it: its recorded settings, its key names,
its records; and what reading it shares (the entries of a record, errors for people)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import redis
from redis.cluster import RedisCluster

from dedup.errors import SettingsMismatchError, StoreError, StoreUnavailableError
from dedup.index import layout, records, scripts, versions
from dedup.index.depths import Depths
from dedup.index.keys import Keys
from dedup.index.records import Record
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
"""Positions of a shard's flag bitmap read per round trip at most, listing one flag."""


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


SHARDS_FIELD = "groups"
"""The recorded setting that holds an index's shards: named as format 4 names it (the shards
were called groups when it was made), so that an index of that format reads as it is."""


def recorded_shards(recorded: dict[str, str]) -> int:
    """The shards an index was built with, by its signature settings."""
    return int(recorded[SHARDS_FIELD])


MIGRATES_FROM = ("3", "4", "5", "6")
"""The older index formats ``dedup migrate`` brings to this one (:mod:`dedup.index.migrate`)."""


def check_format(recorded: dict[str, str], namespace: str) -> None:
    """Refuse an index of another format: one made by an older dedup is migrated, not read
    by branches kept for it."""
    found = recorded.get("format")
    if found == layout.FORMAT_VERSION:
        return
    if found in MIGRATES_FROM:
        raise SettingsMismatchError(
            f"namespace {namespace!r} was made by an older dedup (index format {found}); "
            f"run `dedup migrate` to bring it to format {layout.FORMAT_VERSION}"
        )
    if found is not None and found.isdigit() and int(found) < int(layout.FORMAT_VERSION):
        raise SettingsMismatchError(
            f"namespace {namespace!r} was made by an older dedup (index format {found}), "
            "which cannot be migrated: index the documents again into a new namespace"
        )
    raise SettingsMismatchError(
        f"namespace {namespace!r} has index format {found}, which this dedup does not read "
        f"(it reads {layout.FORMAT_VERSION}); use a newer dedup"
    )


def record_or_intent(
    raw: bytes | None, pending: bytes | None, *, near: bool = True
) -> Record | None:
    """A version's record, else the record its intent holds while it is being written;
    with ``near`` false, a record without its near-copy data (:func:`records.unpack`)."""
    if raw:
        return records.unpack(raw, near=near)
    if pending:
        intent = records.unpack_intent(pending)
        if intent.kind == records.WRITING:
            return intent.record
    return None


class Access:
    """An index in one Redis or a Redis Cluster, under one namespace: its settings, key names
    and records."""

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
        self._depths: Depths | None = None

    @property
    def depths(self) -> Depths:
        """How far each shard's entry hashes have split, read once (one round trip) and
        kept up to date by what scripts answer (:mod:`dedup.index.depths`)."""
        if self._depths is None or self._depths.keys != self.keys:
            self._depths = Depths(self.keys)
        if not self._depths.loaded:
            self._depths.load(self.client)
        return self._depths

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
            check_format(recorded, self.settings.namespace)
            self._lsh = int(recorded["lsh_bands"]), int(recorded["lsh_rows"])
            shards = recorded_shards(recorded)
        else:
            self._lsh = self.settings.lsh_bands, self.settings.lsh_rows
            shards = self.new_index_shards()
        self._keys = Keys(self.settings.namespace, layout.Shards(shards))

    def new_index_shards(self) -> int:
        """The shards of a new index: the ``index_shards`` setting, else those that suit
        where the index is (:data:`~dedup.index.layout.CLUSTER_SHARDS` on a cluster,
        :data:`~dedup.index.layout.SERVER_SHARDS` on one server)."""
        if self.settings.index_shards is not None:
            return self.settings.index_shards
        if isinstance(self.client, RedisCluster):
            return layout.CLUSTER_SHARDS
        return layout.SERVER_SHARDS

    @property
    def keys(self) -> Keys:
        """Key names, cut into the index's shards: those it was built with, else ours (a
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
        [serial] = scripts.run(
            self.client, [versions.current(self.keys, self.depths, layout.id_entry(doc_id))]
        )
        if not serial:
            return 0, None
        found = self.records([serial])
        return found[0] if found else (0, None)

    def records(self, serials: Sequence[int], *, near: bool = True) -> list[tuple[int, Record]]:
        """The records of these serials, in order; serials no longer indexed are left out.
        With ``near`` false, without their near-copy data (:func:`records.unpack`)."""
        raws = scripts.run(self.client, [versions.record(self.keys, s) for s in serials])
        return [
            (serial, records.unpack(raw, near=near))
            for serial, raw in zip(serials, raws, strict=True)
            if raw
        ]

    def records_or_intents(self, serials: Sequence[int]) -> dict[int, Record]:
        """The records of these serials, or of those not committed yet the record their
        intent holds (a write in flight), in one round trip; the others are left out."""
        calls = [
            c
            for s in serials
            for c in (versions.record(self.keys, s), versions.intent(self.keys, s))
        ]
        replies = scripts.run(self.client, calls)
        found = {}
        for serial, raw, pending in zip(serials, replies[::2], replies[1::2], strict=True):
            record = record_or_intent(raw, pending)
            if record is not None:
                found[serial] = record
        return found

    def exists(self, doc_id: str) -> bool:
        """Whether the index holds this document."""
        try:
            return self.resolve(doc_id)[1] is not None
        except redis.RedisError as exc:
            raise store_error(exc) from None
