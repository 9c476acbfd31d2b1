"""The scripts on a document's versions in its shard: reading what a write starts from
(``peek.lua``), announcing a new version (``begin.lua``), committing (``commit.lua``), setting
flags (``flags.lua``), dropping intents once done (``done.lua``), and the plain reads of id
entries, records and intents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from dedup.index import layout, records
from dedup.index.depths import Depths
from dedup.index.entries import Held, updated_list
from dedup.index.keys import FLAGS, Keys
from dedup.index.naming import Op, named
from dedup.index.scripts import Call, command, decoded, script_call

SAME = 0
"""What ``begin.lua`` answers instead of a new serial: the current version is the one
announced."""


@dataclass(frozen=True)
class Writing:
    """A document's new version to announce (``begin.lua``)."""

    entry: layout.IdEntry
    digest: bytes
    """The new version's :func:`dedup.index.layout.version_digest`."""
    intent: bytes
    """The intent to keep, packed."""


class Peeked(NamedTuple):
    """What ``peek.lua`` answered for one shard."""

    current: list[tuple[int, bool]]
    """Per document, the serial of its current version (0: none), and whether that version
    is the one to write."""
    intents: dict[int, bytes]
    """The shard's intents that the writer must finish or take back, by serial."""


def _id_entries(
    keys: Keys, depths: Depths, shard: int, entries: Sequence[layout.IdEntry]
) -> tuple[list[str], list[bytes]]:
    """The hashes and fields of id entries of one shard, named by ``depths``."""
    names, fields = [], []
    for entry in entries:
        _, bucket, field = depths.address(layout.IDS, entry.key)
        names.append(keys.entry(layout.IDS, shard, bucket))
        fields.append(field)
    return names, fields


def peek(
    keys: Keys,
    depths: Depths,
    shard: int,
    documents: Sequence[tuple[layout.IdEntry, bytes]],
    *,
    token: str = "",
    cutoff: float = 0.0,
    intents: bool = True,
) -> Call[Peeked]:
    """``peek.lua``: the current version of each document of ``shard`` (its id entry, and
    the digest of its new version), and the intents kept in the shard that the writer
    ``token`` must finish or take back (its own, those left before ``cutoff``, and what the
    documents' current versions owe).

    Other writers' intents in flight are not answered: with every worker writing to the
    same shards, what each round trip carries would grow with the number of workers. With
    ``intents`` false none are (a writer's later call in the same shard and round trip)."""
    id_names, fields = _id_entries(keys, depths, shard, [entry for entry, _ in documents])
    names = [keys.counters(shard), keys.intents(shard), *id_names]
    args: list[Any] = []
    for field, (_, digest) in zip(fields, documents, strict=True):
        args += [field, digest]
    args += [json.dumps(token) if intents else "", repr(cutoff), records.OWED]
    args.append(depths.spec(shard, [layout.IDS]))

    def parse(reply: list[Any]) -> Peeked:
        found, kept = reply
        current = [(int(s), bool(same)) for s, same in zip(found[::2], found[1::2], strict=True)]
        return Peeked(current, {int(k): v for k, v in zip(kept[::2], kept[1::2], strict=True)})

    def rebuild(found: bytes) -> Call[Peeked]:
        depths.learn(shard, found)
        return peek(keys, depths, shard, documents, token=token, cutoff=cutoff, intents=intents)

    return script_call("peek.lua", names, args, parse, rebuild=rebuild)


class Began(NamedTuple):
    """What ``begin.lua`` answered for one document."""

    serial: int
    """The new version's serial, or :data:`SAME`."""
    current: int
    """The serial of the current version (0: none)."""


class Announced(NamedTuple):
    """What ``begin.lua`` answered for one shard."""

    began: list[Began]
    """Per document."""
    added: list[Held]
    """Per operation on the shard's own entries (nothing done for a document that got no
    serial; a count of -1 for an operation that needs its entry's overflow set)."""


def begin(
    keys: Keys,
    depths: Depths,
    shard: int,
    writes: Sequence[Writing],
    ops: Sequence[Op] = (),
    boilerplate_at: int = 0,
) -> Call[Announced]:
    """``begin.lua``: for each document of ``shard`` the serial of its new version (its
    intent kept), or why there is none; then ``ops``, updates of entries of this shard
    (:meth:`Batch.take_updates`) whose serial is the number of their document among
    ``writes`` (from 1), applied with the new serials, their keys named by ``depths``."""
    id_names, fields = _id_entries(keys, depths, shard, [write.entry for write in writes])
    names = [keys.counters(shard), keys.intents(shard), *id_names]
    args: list[Any] = [shard, keys.shards.count, len(writes)]
    for field, write in zip(fields, writes, strict=True):
        args += [field, write.digest, write.intent]
    entry_names, codes, chunk = named(keys, depths, shard, ops)
    names += entry_names
    families = [layout.IDS, *(op[0] for op in ops)]
    args += [codes, boilerplate_at, chunk, depths.spec(shard, families)]

    def parse(reply: list[Any]) -> Announced:
        began, added, _ = reply
        return Announced(list(map(Began, began[::2], began[1::2])), updated_list(added))

    def rebuild(found: bytes) -> Call[Announced]:
        depths.learn(shard, found)
        return begin(keys, depths, shard, writes, ops, boilerplate_at)

    return script_call(
        "begin.lua",
        names,
        args,
        parse,
        (keys, shard),
        rebuild=rebuild,
        after=lambda reply: depths.splits(shard, reply[2]),
    )


@dataclass(frozen=True)
class Commit:
    """A document's version to make current, or a document to delete (``commit.lua``)."""

    entry: layout.IdEntry
    old: int
    """The serial of its current version as read (0: none)."""
    new: int
    """The serial of its new version (0: a delete)."""
    record: bytes
    """The new record, packed ('' for a delete)."""
    flags: frozenset[str]
    """The flags of the new version."""
    documents: int
    paragraphs: int
    """The change of the shard's counts of documents and paragraphs."""
    owed: bytes
    """The owed intent, packed ('' when nothing is owed)."""
    digest: bytes = b""
    """The new version's :func:`dedup.index.layout.version_digest` ('' for a delete)."""
    raising: Sequence[tuple[int, str]] = ()
    """Flags to raise on other versions of the shard (serial, flag) once committed."""


def commit(keys: Keys, depths: Depths, shard: int, commits: Sequence[Commit]) -> Call[list[str]]:
    """``commit.lua``: for each document of ``shard``, version ``new`` becomes the current
    one in place of ``old``, the flags it raises on versions of the shard are set, and the
    owed intent is kept for what is left to do; the reply per document is ``ok``,
    ``conflict`` or ``lost``."""
    id_names, fields = _id_entries(keys, depths, shard, [c.entry for c in commits])
    names = [keys.counters(shard), keys.intents(shard)]
    names += [keys.flag(f, shard) for f in FLAGS]
    names_raised: list[str] = []
    args: list[Any] = ["f" * len(FLAGS), len(commits), depths.spec(shard, [layout.IDS])]
    position = keys.shards.position
    raising: list[Any] = []
    for number, (c, id_name, field) in enumerate(zip(commits, id_names, fields, strict=True), 1):
        for serial, flag in c.raising:
            names_raised.append(keys.records(serial))
            raising += [number, serial, position(serial), FLAGS.index(flag) + 1]
        kept = c.new or c.old
        names += [id_name, keys.records(kept), keys.records(c.old or kept)]
        args += [
            field,
            c.old,
            position(c.old),
            c.new,
            position(c.new),
            c.record,
            "".join("1" if f in c.flags else "0" for f in FLAGS),
            c.documents,
            c.paragraphs,
            c.owed,
            kept,
            c.digest,
        ]
    names += names_raised
    args += raising

    def rebuild(found: bytes) -> Call[list[str]]:
        depths.learn(shard, found)
        return commit(keys, depths, shard, commits)

    return script_call(
        "commit.lua",
        names,
        args,
        lambda reply: [decoded(r) for r in reply[0]],
        (keys, shard),
        rebuild=rebuild,
        after=lambda reply: depths.splits(shard, reply[1]),
    )


def set_flags(keys: Keys, shard: int, bits: Sequence[tuple[int, str, bool]]) -> Call[int]:
    """``flags.lua``: flag bits of versions of one shard that have a record, and raised bits
    of versions still being written (their commit keeps them)."""
    names: list[str] = [keys.intents(shard)]
    args: list[Any] = []
    for serial, flag, on in bits:
        names += [keys.records(serial), keys.flag(flag, shard)]
        args += [serial, keys.shards.position(serial), int(on)]
    return script_call("flags.lua", names, args, int)


def drop_intents(keys: Keys, shard: int, done: Sequence[tuple[int, bool]]) -> Call[int]:
    """``done.lua``: drop the intents of these versions of ``shard`` (serial, and whether
    the version was taken back: its flag bits are cleared with its intent)."""
    names = [keys.intents(shard), *(keys.flag(f, shard) for f in FLAGS)]
    args: list[Any] = []
    for serial, taken_back in done:
        args += [serial, keys.shards.position(serial) if taken_back else 0]
    return script_call("done.lua", names, args, int)


def current(keys: Keys, depths: Depths, entry: layout.IdEntry) -> Call[int]:
    """The serial of the current version of the document of an id entry (0 when it is not
    indexed): ``peek.lua`` on that entry alone."""
    shard = keys.shards.of_key(layout.IDS, entry.key)
    call = peek(keys, depths, shard, [(entry, b"")], intents=False)

    def rebuild(found: bytes) -> Call[int]:
        depths.learn(shard, found)
        return current(keys, depths, entry)

    return Call(call.command, lambda reply: int(reply[0][0]), call.script, None, rebuild)


def record(keys: Keys, serial: int) -> Call[bytes | None]:
    """A version's packed record (None when it has none)."""
    return command("HGET", keys.records(serial), serial)


def intents(keys: Keys, shard: int) -> Call[dict[int, bytes]]:
    """The intents kept in a shard, by serial."""
    return command("HGETALL", keys.intents(shard), parse=_int_keyed)


def _int_keyed(reply: dict[bytes, bytes] | list[bytes] | None) -> dict[int, bytes]:
    """A hash with integer fields, as a pipeline (a dict) or :func:`exchange` (a flat
    list) reads it."""
    if isinstance(reply, dict):
        return {int(k): v for k, v in reply.items()}
    reply = reply or []
    return {int(k): v for k, v in zip(reply[::2], reply[1::2], strict=True)}


def intent(keys: Keys, serial: int) -> Call[bytes | None]:
    """The intent kept for one serial (None when there is none)."""
    return command("HGET", keys.intents(keys.shards.of(serial)), serial)
