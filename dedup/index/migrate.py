"""``dedup migrate``: bring an index made by an older dedup to the format this one reads.

The code reads one index format (:data:`dedup.index.layout.FORMAT_VERSION`) and refuses
others; an older index is migrated once by this command rather than read on by branches kept
for it. From format 3 (dedup up to the reply keys of writing scripts) to 4:

1. the shards are recorded (an index made before they were recorded has 1,024);
2. every id entry keeps its serial followed by the digest of that version's content and URL
   (:func:`dedup.index.layout.version_digest`), where it kept a digest with the fetch time,
   or the serial alone;
3. the format is recorded, and from then on writers and readers take the index.

The id entries are read a few hashes a round trip, so no command grows with the index. Each
step may run again: a migration stopped half way is run again whole. Workers of the older
dedup must be stopped first, or they would go on writing the old entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import cast

import redis

from dedup.errors import NotFoundError, SettingsMismatchError
from dedup.index import layout, records
from dedup.index.access import MIGRATES_FROM, SHARDS_FIELD, store_error
from dedup.index.keys import Keys
from dedup.servers.connection import IndexClient

FORMAT_3_SHARDS = 1024
"""The shards of a format-3 index whose settings name none (made before they were recorded)."""
HASHES_PER_TRIP = 100
"""Id entry hashes read and rewritten per round trip (each holds up to a few hundred)."""


SIGNED_BEFORE = {"short_document_words": "0", "script_words": "false"}
"""Signature settings an index of format 3 was written without, and their values then:
its writers must keep them (they decide what is stored), or index into a new namespace."""


@dataclass(frozen=True)
class Migrated:
    """What a migration did."""

    from_format: str
    to_format: str
    id_entries: int
    """Id entries rewritten."""
    settings: dict[str, str]
    """Signature settings its writers must set, by name (those the index was made
    without, at the values they had then)."""


def migrate(
    client: IndexClient, namespace: str, progress: Callable[[int], None] | None = None
) -> Migrated:
    """Migrate the index of ``namespace`` to :data:`dedup.index.layout.FORMAT_VERSION`;
    ``progress`` is called with the id entries rewritten after each round trip.

    Raises:
        NotFoundError: there is no index in the namespace.
        SettingsMismatchError: its format is one this dedup cannot migrate.
    """
    try:
        return _migrate(client, namespace, progress)
    except redis.RedisError as exc:
        raise store_error(exc) from None


def _migrate(
    client: IndexClient, namespace: str, progress: Callable[[int], None] | None
) -> Migrated:
    meta = Keys(namespace).meta
    stored = client.hget(meta, "signature")
    if stored is None:
        raise NotFoundError(f"no index in namespace {namespace!r}")
    recorded: dict[str, str] = json.loads(cast("bytes", stored))
    found = recorded.get("format", "")
    if found == layout.FORMAT_VERSION:
        return Migrated(found, found, 0, _keep(recorded))
    if found != MIGRATES_FROM:
        raise SettingsMismatchError(
            f"namespace {namespace!r} has index format {found}: this dedup migrates format "
            f"{MIGRATES_FROM} to {layout.FORMAT_VERSION}"
        )
    recorded.setdefault(SHARDS_FIELD, str(FORMAT_3_SHARDS))
    keys = Keys(namespace, layout.Shards(int(recorded[SHARDS_FIELD])))
    rewritten = 0
    names = client.scan_iter(match=keys.family_pattern(layout.IDS), count=1000)
    for chunk in _chunks(names, HASHES_PER_TRIP):
        rewritten += _rewrite(client, keys, chunk)
        if progress:
            progress(rewritten)
    recorded["format"] = layout.FORMAT_VERSION
    client.hset(meta, "signature", json.dumps(recorded, sort_keys=True))
    return Migrated(found, layout.FORMAT_VERSION, rewritten, _keep(recorded))


def _keep(recorded: dict[str, str]) -> dict[str, str]:
    """The settings of :data:`SIGNED_BEFORE` the index does not record."""
    return {name: value for name, value in SIGNED_BEFORE.items() if name not in recorded}


def _chunks(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _rewrite(client: IndexClient, keys: Keys, names: list[bytes]) -> int:
    """Give every id entry of these hashes the digest of its current version; returns how
    many changed (two round trips: the entries, then their records and the new values)."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    entries = [
        (name, field, value)
        for name, held in zip(names, pipe.execute(), strict=True)
        for field, value in held.items()
    ]
    serials = [layout.id_serial(value) for _, _, value in entries]
    pipe = client.pipeline(transaction=False)
    for serial in serials:
        pipe.hget(keys.records(serial), serial)
    pipe2 = client.pipeline(transaction=False)
    changed = 0
    for (name, field, value), serial, raw in zip(entries, serials, pipe.execute(), strict=True):
        if not raw:  # no record: nothing to tell the version by (readers ignore it)
            continue
        new = layout.SERIAL.pack(serial) + records.record_digest(records.unpack(raw))
        if new != value:
            pipe2.hset(name, field, new)
            changed += 1
    if changed:
        pipe2.execute()
    return changed
