"""``dedup migrate``: bring an index made by an older dedup to the format this one reads.

The code reads one index format (:data:`dedup.index.layout.FORMAT_VERSION`) and refuses
others; an older index is migrated once by this command rather than read on by branches kept
for it. From format 3 (dedup up to the reply keys of writing scripts):

1. the shards are recorded (an index made before they were recorded has 1,024);
2. every id entry keeps its serial followed by the digest of that version's content and URL
   (:func:`dedup.index.layout.version_digest`), where it kept a digest with the fetch time,
   or the serial alone;

and from format 4 (entry hashes of a fixed number, 2**18 for LSH bands and paragraphs):

3. each shard's entries of every family move into hashes that split as they fill
   (:class:`dedup.index.splits.Depth`), as many as its entries need (about
   :data:`dedup.index.splits.LOAD` fields each), and the sets of entries held by many
   documents are renamed after their keys; nothing of an entry is lost (its key's bits in the
   old bucket and field are the family's precision);

and from format 5 (hashes that split, ``near_paragraphs`` off by default) and format 6
(entries in overflow sets keep '' in their fields, where format 7 keeps their first holders;
this format reads '' as an entry whose first holders are not known) nothing but

4. the format is recorded, and from then on writers and readers take the index.

Formats 3 to 5 kept near copies of paragraphs (``near_paragraphs``, off by default then) in
another form: three pieces a paragraph, 128 bits of its signature. An index that kept them
is not migrated: its documents are indexed again into a new namespace. One that did not
keeps the setting off: its records hold no near-copy data to find edited copies by, and its
writers set ``near_paragraphs = false``, which the command says.

Hashes are read a hundred a round trip, so no command grows with the index. Each step may run
again: a migration stopped half way is run again whole. Workers of the older dedup must be
stopped first, or they would go on writing the old entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import cast

import redis

from dedup.errors import NotFoundError, SettingsMismatchError
from dedup.index import layout, records, splits
from dedup.index.access import MIGRATES_FROM, SHARDS_FIELD, store_error
from dedup.index.depths import Depths
from dedup.index.keys import Keys
from dedup.servers.connection import IndexClient

OLD_NEAR_DATA = ("3", "4", "5")
"""Formats whose near copies of paragraphs (``near_paragraphs``) this dedup cannot read."""
FORMAT_3_SHARDS = 1024
"""The shards of a format-3 index whose settings name none (made before they were recorded)."""
HASHES_PER_TRIP = 100
"""Id entry hashes read and rewritten per round trip (each holds up to a few hundred)."""


SIGNED_BEFORE = {"short_document_words": "0", "script_words": "false"}
"""Signature settings an index of format 3 was written without, and their values then:
its writers must keep them (they decide what is stored), or index into a new namespace."""
KEPT_OFF = {"near_paragraphs": "false"}
"""Signature settings an older index names only when they were on, off by default then and
on now: one that names none was written with them off, and its writers keep them so."""


@dataclass(frozen=True)
class Migrated:
    """What a migration did."""

    from_format: str
    to_format: str
    id_entries: int
    """Id entries rewritten."""
    entries: int
    """Index entries moved into hashes that split."""
    settings: dict[str, str]
    """Signature settings its writers must set, by name (those the index was made
    without, at the values they had then)."""


def migrate(
    client: IndexClient, namespace: str, progress: Callable[[int], None] | None = None
) -> Migrated:
    """Migrate the index of ``namespace`` to :data:`dedup.index.layout.FORMAT_VERSION`;
    ``progress`` is called with the entries rewritten or moved after each round trip.

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
        return Migrated(found, found, 0, 0, _keep(recorded))
    if found not in MIGRATES_FROM:
        raise SettingsMismatchError(
            f"namespace {namespace!r} has index format {found}: this dedup migrates formats "
            f"{', '.join(MIGRATES_FROM)} to {layout.FORMAT_VERSION}"
        )
    if "near_paragraphs" in recorded and found in OLD_NEAR_DATA:
        raise SettingsMismatchError(
            f"namespace {namespace!r} keeps near copies of paragraphs as format {found} kept "
            "them, which this dedup cannot move: index the documents again into a new "
            "namespace"
        )
    recorded.setdefault(SHARDS_FIELD, str(FORMAT_3_SHARDS))
    keys = Keys(namespace, layout.Shards(int(recorded[SHARDS_FIELD])))
    rewritten = 0
    if found == "3":
        names = _old_hashes(client, keys, layout.IDS)
        for chunk in _chunks(names, HASHES_PER_TRIP):
            rewritten += _rewrite(client, keys, chunk)
            if progress:
                progress(rewritten)
    moved = 0
    if found in ("3", "4"):
        for family in layout.FAMILIES:
            moved += _split_family(client, keys, family, progress, rewritten + moved)
    recorded["format"] = layout.FORMAT_VERSION
    client.hset(meta, "signature", json.dumps(recorded, sort_keys=True))
    return Migrated(found, layout.FORMAT_VERSION, rewritten, moved, _keep(recorded))


def _keep(recorded: dict[str, str]) -> dict[str, str]:
    """The settings of :data:`SIGNED_BEFORE` and :data:`KEPT_OFF` the index does not record."""
    before = {**SIGNED_BEFORE, **KEPT_OFF}
    return {name: value for name, value in before.items() if name not in recorded}


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


FIXED_BEFORE = {"b": (18, 3), "p": (18, 4), "c": (14, 6), "q": (20, 3), "i": (14, 8)}
"""Bucket bits and field bytes of each family's fixed hashes in format 4 (the bucket's top
bits were the shard's): together, the family's precision."""


def _old_hashes(client: IndexClient, keys: Keys, family: layout.Family) -> Iterator[bytes]:
    """The fixed hashes of a family left to move (``<family>:<bucket>`` past the shard's tag;
    the sets of entries held by many add ``:<field>``)."""
    pattern = keys.family_pattern(family).replace(f":{family.name}.*", f":{family.name}:*")
    for name in client.scan_iter(match=pattern, count=1000):
        if name.rsplit(b"}:", 1)[1].count(b":") == 1:
            yield name


def _split_family(
    client: IndexClient,
    keys: Keys,
    family: layout.Family,
    progress: Callable[[int], None] | None,
    done: int,
) -> int:
    """Move a family's entries out of the fixed hashes of format 4 into hashes that split
    (step 3); returns how many entries moved."""
    bucket_bits, field_bytes = FIXED_BEFORE[family.name]
    assert bucket_bits + 8 * field_bytes == family.precision
    # How many fields each shard holds, and the depth that gives them LOAD a hash.
    fields = [0] * keys.shards.count
    for chunk in _chunks(_old_hashes(client, keys, family), HASHES_PER_TRIP):
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.hlen(name)
        for name, n in zip(chunk, pipe.execute(), strict=True):
            bucket = int(name.rsplit(b":", 1)[1])
            fields[bucket >> (bucket_bits - keys.shards.bits)] += n
    depth_field, split_field, count_field = keys.depth_fields(family)
    pipe = client.pipeline(transaction=False)
    for shard, n in enumerate(fields):
        buckets = max(1, -(-n // splits.LOAD))
        depth = buckets.bit_length() - 1
        pipe.hsetnx(keys.counters(shard), depth_field, depth)
        pipe.hsetnx(keys.counters(shard), split_field, buckets - (1 << depth))
    pipe.execute()
    known = Depths(keys)
    known.load(client)
    moved = 0
    for chunk in _chunks(_old_hashes(client, keys, family), HASHES_PER_TRIP):
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.hgetall(name)
        held = pipe.execute()
        renames = client.pipeline(transaction=False)
        writes = client.pipeline(transaction=False)
        written: list[int] = []
        """The shard of each HSET of ``writes``, in order."""
        for name, entries in zip(chunk, held, strict=True):
            bucket = int(name.rsplit(b":", 1)[1])
            shard = bucket >> (bucket_bits - keys.shards.bits)
            by_bucket: dict[int, dict[bytes, bytes]] = {}
            for field, value in entries.items():
                prefix = bucket << (8 * field_bytes) | int.from_bytes(field, "big")
                key = prefix << (family.key_bits - family.precision)
                _, new, new_field = known.address(family, key)
                by_bucket.setdefault(new, {})[new_field] = value
                if value == b"":  # held by many: its set is named after its key now
                    old_set = name + b":" + field.hex().encode()
                    renames.execute_command("RENAME", old_set, keys.overflow(family, key))
            for new, mapping in by_bucket.items():
                writes.hset(keys.entry(family, shard, new), mapping=mapping)  # type: ignore[arg-type]
                written.append(shard)
            moved += len(entries)
        renames.execute(raise_on_error=False)  # a set renamed by a run stopped half way
        counted = [0] * keys.shards.count
        for shard, made in zip(written, writes.execute(), strict=True):
            counted[shard] += made  # fields new to their hash: none, the second time
        pipe = client.pipeline(transaction=False)
        for shard, n in enumerate(counted):
            if n:
                pipe.hincrby(keys.counters(shard), count_field, n)
        for name in chunk:
            pipe.unlink(name)
        pipe.execute()
        if progress:
            progress(done + moved)
    return moved
