"""The index's Lua scripts and plain commands, sent a round trip at a time.

Each ``.lua`` file opens with the KEYS, ARGV and reply it takes; its wrapper here is the only
code that knows their order, and its reply parser the only code that knows the reply's.
Every key a script touches is handed to it in KEYS, all of one group (one hash slot of a
cluster), named by :mod:`dedup.index.keys`; ARGV[1] is the :func:`layout_argument`, the few
constants of the layout the scripts need, defined once in Python.

A :class:`Batch` gathers the calls of a whole round trip: entry lookups and updates for many
documents, grouped into one script call per group, and any other command. On one server the
round trip is one pipeline; on a cluster redis-py sends each node its share.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from itertools import repeat
from operator import itemgetter
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar

import hiredis
import redis

from dedup.index import layout
from dedup.index.keys import FLAGS, Keys, overflow_of
from dedup.index.layout import Family
from dedup.servers.connection import IndexClient, cluster_policies

T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    """A script as the server runs it: ``common.lua`` followed by the script itself."""

    name: str
    text: str
    sha: str
    """What EVALSHA names the script by."""


ONCE = frozenset({"begin.lua", "commit.lua", "update.lua"})
"""The scripts whose effect or answer would differ run twice. Each of their calls runs once
however many times it is sent (``once.lua``): the client sends a call again when the
connection drops before the reply, and the server may have run it already. ``flags.lua``
sets values and answers nothing the writer reads, and ``intent.lua`` answers the same run
twice: they need no reply kept."""

REPLY_KEPT = 3600
"""Seconds a writing call's reply is kept for the call sent again: longer than a client goes
on sending it (seven tries of a 60-second socket timeout). The writer unlinks it sooner, in
its next round trip, once the reply is in hand."""


@cache
def source(name: str) -> Source:
    """A Lua script of the package, preceded by the functions all scripts share; a writing
    script (:data:`ONCE`) as the body of a function that ``once.lua`` runs once."""
    folder = files("dedup.index").joinpath("lua")
    body = folder.joinpath(name).read_text()
    if name in ONCE:
        body = f"local function body()\n{body}\nend\n" + folder.joinpath("once.lua").read_text()
    text = folder.joinpath("common.lua").read_text() + body
    return Source(name, text, hashlib.sha1(text.encode("utf-8")).hexdigest())


@cache
def layout_argument() -> str:
    """ARGV[1] of every script: the packing of serials, its size, the inline limit and the
    most holders of an entry read and answered to a write adding itself, separated by
    spaces."""
    serial = f"{layout.lua_format(layout.SERIAL.format)} {layout.SERIAL.size}"
    return f"{serial} {layout.INLINE} {layout.SAMPLE} {layout.SAMPLE_SEEING}"


class Call(NamedTuple, Generic[T]):
    """One command, ready to send, and how to read its reply."""

    command: tuple[Any, ...]
    parse: Callable[[Any], T]
    script: Source | None = None
    """The script an EVALSHA runs, to load it where the server lacks it."""
    reply_key: str | None = None
    """Where a writing script keeps its reply (:data:`ONCE`)."""


def script_call(
    name: str,
    keys: Sequence[str],
    args: Sequence[Any],
    parse: Callable[[Any], T],
    group: tuple[Keys, int] | None = None,
) -> Call[T]:
    """A call of one of the package's scripts, by digest. A writing script (:data:`ONCE`)
    needs its keys' ``group``: the call's reply is kept there under a name of its own."""
    script = source(name)
    reply_key = None
    if name in ONCE:
        assert group is not None, f"{name} writes: its calls need their group"
        reply_key = group[0].reply(group[1], os.urandom(8).hex())
        keys, args = (*keys, reply_key), (*args, REPLY_KEPT)
    words = ("EVALSHA", script.sha, len(keys), *keys, layout_argument(), *args)
    return Call(words, parse, script, reply_key)


def command(*words: Any, parse: Callable[[Any], T] = lambda x: x) -> Call[T]:
    """A plain command."""
    return Call(tuple(words), parse)


_spent: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()
"""Per client, the reply keys of writing calls whose replies it has read: no longer needed,
unlinked with its next round trip."""


def run(client: IndexClient, calls: Sequence[Call[Any]]) -> list[Any]:
    """Calls in one round trip; scripts a server has lost (a restart, a new master after a
    failover) are loaded again, and only the calls that found none are sent once more.

    redis-py's own script objects ask the server whether the scripts exist before every
    execution, a round trip more for each batch: half the cost of a one-document job.
    """
    if not calls:
        return []
    asked = len(calls)
    spent = _spent.pop(client, None)
    if spent:
        # Unlinking twice is harmless: these ride along whatever happens to the round trip.
        if isinstance(client, redis.Redis):
            forget: list[Call[Any]] = [command("UNLINK", *spent)]
        else:
            forget = [command("UNLINK", key) for key in spent]
        calls = [*calls, *forget]
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in range(2):
        if isinstance(client, redis.Redis):
            answers = exchange(client, [calls[i].command for i in todo])
        else:
            pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
            # redis-py's cluster pipelines leave out the client's policies, and without one
            # a pipeline asks a node for the keys of each script call (COMMAND GETKEYS, a
            # round trip per call) instead of reading its KEYS.
            pipe._policy_resolver = cluster_policies()
            for i in todo:
                pipe.execute_command(*calls[i].command)
            answers = pipe.execute(raise_on_error=False)
        missing = []
        for i, answer in zip(todo, answers, strict=True):
            if isinstance(answer, redis.exceptions.NoScriptError) and not attempt:
                missing.append(i)
            elif isinstance(answer, Exception) and i < asked:
                raise answer
            else:
                replies[i] = answer
        if not missing:
            break
        for script in {calls[i].script for i in missing}:
            if script is not None:
                client.script_load(script.text)
        todo = missing
    kept = [call.reply_key for call in calls if call.reply_key is not None]
    if kept:
        _spent.setdefault(client, []).extend(kept)
    return [call.parse(reply) for call, reply in zip(calls[:asked], replies, strict=False)]


def exchange(client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Commands to one server in one round trip, on one connection of the client's pool;
    the replies in order, or the errors Redis answered in their place.

    What a redis-py pipeline does, without its bookkeeping per command (packing each
    argument in Python, a reply callback looked up per command), which was a third of the
    time of a one-document write: the commands are packed by hiredis and the replies read
    as they come, without callbacks (a hash is a flat list). A lost connection is dealt
    with as redis-py does it, by the client's retry policy: the round trip is sent again
    whole, which every call of the index allows (each may run twice).
    """
    pool = client.connection_pool
    packed = [b"".join(map(hiredis.pack_command, commands))]
    connection = pool.get_connection()

    def once() -> list[Any]:
        connection.send_packed_command(packed)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except redis.ResponseError as error:
                replies.append(error)
        return replies

    def lost(_: Exception) -> None:
        connection.disconnect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated

    try:
        replies: list[Any] = connection.retry.call_with_retry(once, lost)
        return replies
    finally:
        pool.release(connection)


def decoded(value: bytes | None) -> str:
    """A Redis reply as text ('' for none)."""
    return value.decode("utf-8") if value is not None else ""


def serials(packed: bytes | None) -> list[int]:
    """Serials packed as entries hold them."""
    return layout.unpack_serials(packed) if packed else []


# -- entries, grouped by slot --------------------------------------------------------------------

COUNT, MEMBERS, FEW, AT_LIMIT = "c", "m", "b", "e"
"""Lookup modes: how many hold an entry; how many and which; which only while fewer than the
batch's limit do (paragraphs shared by a few documents); which only when exactly the limit
do (an entry about to stop being boilerplate)."""

ADD, ADD_SEEING, ADD_PARAGRAPH, ADD_PIECE, REMOVE, REMOVE_PARAGRAPH = "a", "A", "p", "q", "r", "x"
"""Update operations of ``update.lua``."""


class Held(tuple[int, bytes, int]):
    """What one entry lookup or update answered: a tuple made straight from the script's
    reply (a batch's replies hold thousands of them; a class with an ``__init__`` of its own
    cost a tenth of a bulk write)."""

    __slots__ = ()

    count = property(itemgetter(0), doc="Documents holding the entry (after the update).")
    packed = property(
        itemgetter(1), doc="The serials asked for, packed (empty when not asked or answered)."
    )
    changed = property(itemgetter(2), doc="1 when an update changed the entry.")

    @property
    def serials(self) -> list[int]:
        """The serials asked for."""
        return serials(self.packed)


_Op: TypeAlias = tuple[str, str, bytes, int]
"""One operation of a round trip on an entry: the entry's hash, a letter and the field's
width, the field (followed by the serial for an update), and the ticket of its answer."""


class Batch:
    """The calls of one round trip. Entry lookups and updates are grouped into one script
    call per group; every method returns tickets, the indexes of the answers in
    :meth:`send`'s reply.

    An entry's overflow set is only named for the operations that need it: the scripts hold
    back an operation on an entry that has moved to its set (boilerplate) and those after it
    on the same entry, and :meth:`send` sends those again with their sets, one round trip
    more for the batches that meet such entries. Naming every set would double the keys of
    every call for the few entries that have one.
    """

    def __init__(self, keys: Keys, *, boilerplate_at: int, few: int = 0) -> None:
        self.keys = keys
        self.boilerplate_at = boilerplate_at
        self.few = few
        self._lookups: dict[int, list[_Op]] = {}
        """The lookups of each group, in order."""
        self._updates: dict[int, list[_Op]] = {}
        """The updates of each group, in order."""
        self._with_sets: dict[int, list[_Op]] = {}
        """Updates known to need their entries' overflow sets, sent with them at once."""
        self._calls: list[tuple[int, Call[Any]]] = []
        self._known: list[tuple[int, Held]] = []
        self._count = 0

    def _add(
        self,
        table: dict[int, list[_Op]],
        family: Family,
        keys: Iterable[int],
        code: str,
        tail: bytes,
    ) -> list[int]:
        prefixes = self.keys.entry_prefixes(family)
        width = family.field_bytes
        code += str(width)
        bucket_shift = family.key_bits - family.bucket_bits
        group_shift = family.bucket_bits - self.keys.groups.bits
        field_shift = bucket_shift - 8 * width
        field_mask = (1 << (8 * width)) - 1
        first = ticket = self._count
        for key in keys:
            bucket = key >> bucket_shift
            group = bucket >> group_shift
            field = ((key >> field_shift) & field_mask).to_bytes(width, "big")
            op = (prefixes[group] + str(bucket), code, field + tail, ticket)
            ops = table.get(group)
            if ops is None:
                table[group] = [op]
            else:
                ops.append(op)
            ticket += 1
        self._count = ticket
        return list(range(first, ticket))

    def lookups(self, family: Family, keys: Iterable[int], mode: str = COUNT) -> list[int]:
        """Ask how many documents hold each of these entries (and which, by ``mode``)."""
        return self._add(self._lookups, family, keys, mode, b"")

    def lookup(self, family: Family, key: int, mode: str = COUNT) -> int:
        """Ask how many documents hold an entry (and which, by ``mode``)."""
        return self.lookups(family, (key,), mode)[0]

    def updates(
        self, family: Family, keys: Iterable[int], op: str, serial: int, *, sets: bool = False
    ) -> list[int]:
        """Add a serial to each of these entries or take it out (``op``: :data:`ADD` ...);
        with ``sets``, naming their overflow sets (entries that an operation found in one)."""
        table = self._with_sets if sets else self._updates
        return self._add(table, family, keys, op, layout.SERIAL.pack(serial))

    def take_updates(self, group: int) -> list[_Op]:
        """The updates of one group, taken out of the batch to be sent another way (their
        tickets answered by :meth:`known` in another batch)."""
        return self._updates.pop(group, [])

    def known(self, answer: Held) -> int:
        """An answer had already, by another call: its ticket among this batch's."""
        ticket = self._count
        self._count += 1
        self._known.append((ticket, answer))
        return ticket

    def update(self, family: Family, key: int, op: str, serial: int) -> int:
        """Add a serial to an entry or take it out (``op``: :data:`ADD` ...)."""
        return self.updates(family, (key,), op, serial)[0]

    def call(self, call: Call[Any]) -> int:
        """Any other call."""
        ticket = self._count
        self._count += 1
        self._calls.append((ticket, call))
        return ticket

    def __len__(self) -> int:
        return self._count

    def _script(self, group: int, ops: list[_Op], *, lookup: bool, sets: bool) -> Call[list[Held]]:
        names, codes, chunks, _ = zip(*ops, strict=True)
        keys: Sequence[str] = names
        if sets:
            keys = [
                key
                for name, code, chunk, _ in ops
                for key in (name, overflow_of(name, chunk[: int(code[1])]))
            ]
        given = "1" if sets else "0"
        if lookup:
            return script_call(
                "entries.lua", keys, ["".join(codes), self.few, b"".join(chunks), given], _held_list
            )
        return script_call(
            "update.lua",
            (self.keys.counters(group), *keys),
            ["".join(codes), self.boilerplate_at, b"".join(chunks), given],
            _updated_list,
            (self.keys, group),
        )

    def send(self, client: IndexClient) -> list[Any]:
        """Send every call in one round trip (and the operations held back for their
        overflow sets in one more); the answers by ticket."""
        answers: list[Any] = [None] * self._count
        for ticket, answer in self._known:
            answers[ticket] = answer
        grouped = [
            (lookup, g, chunk, sets)
            for lookup, table, sets in (
                (True, self._lookups, False),
                (False, self._updates, False),
                (False, self._with_sets, True),
            )
            for g, ops in table.items()
            for chunk in _chunked(ops, LOOKUPS_PER_CALL if lookup else OPS_PER_CALL)
        ]
        calls = [self._script(g, ops, lookup=lookup, sets=sets) for lookup, g, ops, sets in grouped]
        calls += [call for _, call in self._calls]
        replies = run(client, calls)
        for (ticket, _), reply in zip(self._calls, replies[len(grouped) :], strict=True):
            answers[ticket] = reply
        again: list[tuple[bool, int, list[_Op]]] = []
        for (lookup, group, ops, _), held in zip(grouped, replies, strict=False):
            back = []
            for op, answer in zip(ops, held, strict=True):
                if answer.count < 0:
                    back.append(op)
                else:
                    answers[op[3]] = answer
            if back:
                again.append((lookup, group, back))
        if again:
            again = [
                (lookup, g, chunk)
                for lookup, g, ops in again
                for chunk in _chunked(ops, LOOKUPS_PER_CALL if lookup else OPS_PER_CALL)
            ]
            calls = [self._script(g, ops, lookup=lookup, sets=True) for lookup, g, ops in again]
            for (_, _, ops), held in zip(again, run(client, calls), strict=True):
                for op, answer in zip(ops, held, strict=True):
                    answers[op[3]] = answer
        return answers


OPS_PER_CALL = 200
"""Entry updates per script call at most: Redis runs one call at a time, and a batch of 200
documents holds about 9,000. The calls of a round trip still go together."""
LOOKUPS_PER_CALL = 50
"""Entry lookups per script call at most: each may read :data:`dedup.index.layout.SAMPLE`
holders of an entry."""


def _chunked(ops: list[_Op], most: int = OPS_PER_CALL) -> list[list[_Op]]:
    """The operations in calls of at most ``most``, those on one entry in one call and in
    their order (a script holds back an entry's later operations when one needs its overflow
    set)."""
    if len(ops) <= most:
        return [ops]
    by_entry: dict[tuple[str, bytes], list[_Op]] = {}
    for op in ops:
        by_entry.setdefault((op[0], op[2][: int(op[1][1])]), []).append(op)
    chunks: list[list[_Op]] = [[]]
    for entry in by_entry.values():
        if chunks[-1] and len(chunks[-1]) + len(entry) > most:
            chunks.append([])
        chunks[-1] += entry
    return chunks


def _held_list(reply: list[Any]) -> list[Held]:
    return list(map(Held, zip(reply[::2], reply[1::2], repeat(0))))


def _updated_list(reply: list[Any]) -> list[Held]:
    return list(map(Held, zip(reply[::3], reply[2::3], reply[1::3], strict=True)))


# -- a document's group --------------------------------------------------------------------------


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


class Began(NamedTuple):
    """What ``begin.lua`` answered for one document."""

    serial: int
    """The new version's serial, or :data:`SAME`."""
    current: int
    """The serial of the current version (0: none)."""


class Announced(NamedTuple):
    """What ``begin.lua`` answered for one group."""

    intents: dict[int, bytes]
    """The group's intents as they were that the writer must finish or take back, by
    serial."""
    began: list[Began]
    """Per document."""
    added: list[Held]
    """Per operation on the group's own entries (nothing done for a document that got no
    serial; a count of -1 for an operation that needs its entry's overflow set)."""


def begin(
    keys: Keys,
    group: int,
    writes: Sequence[Writing],
    ops: Sequence[_Op] = (),
    boilerplate_at: int = 0,
    *,
    token: str,
    cutoff: float,
    intents: bool = True,
) -> Call[Announced]:
    """``begin.lua``: the intents kept in ``group`` before that the writer ``token`` must
    finish or take back (its own, those left before ``cutoff``, and what the documents'
    current versions owe), and for each of its documents the serial of its new version (its
    intent kept), or why there is none; then ``ops``, updates of entries of this group
    (:meth:`Batch.take_updates`) whose serial is the number of their document among
    ``writes`` (from 1), applied with the new serials.

    Other writers' intents in flight are not answered: with every worker writing to the
    same groups, what each round trip carries would grow with the number of workers. With
    ``intents`` false none are (a writer's later call in the same group and round trip,
    which would otherwise meet the intents its first call kept)."""
    names = [keys.counters(group), keys.intents(group)]
    args: list[Any] = [group, keys.groups.count, len(writes)]
    for write in writes:
        names.append(keys.entry(layout.IDS, write.entry.bucket))
        args += [write.entry.field, write.digest, write.intent]
    names += [name for name, _, _, _ in ops]
    args += ["".join(code for _, code, _, _ in ops), boilerplate_at]
    args.append(b"".join(chunk for _, _, chunk, _ in ops))
    args += [json.dumps(token) if intents else "", repr(cutoff), layout.OWED]

    def parse(reply: list[Any]) -> Announced:
        found, began, added = reply
        intents = {int(k): v for k, v in zip(found[::2], found[1::2], strict=True)}
        return Announced(intents, list(map(Began, began[::2], began[1::2])), _updated_list(added))

    return script_call("begin.lua", names, args, parse, (keys, group))


def replace_intents(
    keys: Keys, group: int, intents: Sequence[tuple[int, bytes]]
) -> Call[list[int]]:
    """``intent.lua``: replace the intents of versions of ``group`` still being written;
    per version 1, or 0 when its intent is gone (taken back by another writer)."""
    args: list[Any] = [x for pair in intents for x in pair]
    return script_call("intent.lua", [keys.intents(group)], args, lambda r: [int(x) for x in r])


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
    """The change of the group's counts of documents and paragraphs."""
    owed: bytes
    """The owed intent, packed ('' when nothing is owed)."""
    digest: bytes = b""
    """The new version's :func:`dedup.index.layout.version_digest` ('' for a delete)."""


def commit(keys: Keys, group: int, commits: Sequence[Commit]) -> Call[list[str]]:
    """``commit.lua``: for each document of ``group``, version ``new`` becomes the current
    one in place of ``old``, and the owed intent is kept for what is left to do; the reply
    per document is ``ok``, ``conflict`` or ``lost``."""
    names = [keys.counters(group), keys.intents(group), keys.raised(group)]
    names += [keys.flag(f, group) for f in FLAGS]
    args: list[Any] = ["f" * len(FLAGS)]
    position = keys.groups.position
    for c in commits:
        kept = c.new or c.old
        names += [
            keys.entry(layout.IDS, c.entry.bucket),
            keys.records(kept),
            keys.records(c.old or kept),
        ]
        args += [
            c.entry.field,
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
    return script_call(
        "commit.lua", names, args, lambda reply: [decoded(r) for r in reply], (keys, group)
    )


# flags.lua keeps a flag raised on a version being written as its number, one digit, which
# commit.lua finds in the string of them: ten flags would need another mark.
assert len(FLAGS) <= 9, "raised flags are kept one digit each"


def set_flags(keys: Keys, group: int, bits: Sequence[tuple[int, str, bool]]) -> Call[int]:
    """``flags.lua``: flag bits of versions of one group that have a record; a flag raised on
    a version still being written is kept for its commit."""
    names: list[str] = [keys.intents(group), keys.raised(group)]
    args: list[Any] = []
    for serial, flag, on in bits:
        names += [keys.records(serial), keys.flag(flag, group)]
        args += [serial, keys.groups.position(serial), int(on), FLAGS.index(flag) + 1]
    return script_call("flags.lua", names, args, int)


def current(keys: Keys, entry: layout.IdEntry) -> Call[int]:
    """The serial of the current version of the document of an id entry (0 when it is not
    indexed)."""
    return command(
        "HGET",
        keys.entry(layout.IDS, entry.bucket),
        entry.field,
        parse=lambda value: layout.id_serial(value) if value else 0,
    )


def record(keys: Keys, serial: int) -> Call[bytes | None]:
    """A version's packed record (None when it has none)."""
    return command("HGET", keys.records(serial), serial)


def intents(keys: Keys, group: int) -> Call[dict[int, bytes]]:
    """The intents kept in a group, by serial."""
    return command("HGETALL", keys.intents(group), parse=_int_keyed)


def _int_keyed(reply: dict[bytes, bytes] | list[bytes] | None) -> dict[int, bytes]:
    """A hash with integer fields, as a pipeline (a dict) or :func:`exchange` (a flat
    list) reads it."""
    if isinstance(reply, dict):
        return {int(k): v for k, v in reply.items()}
    reply = reply or []
    return {int(k): v for k, v in zip(reply[::2], reply[1::2], strict=True)}


def intent(keys: Keys, serial: int) -> Call[bytes | None]:
    """The intent kept for one serial (None when there is none)."""
    return command("HGET", keys.intents(keys.groups.of(serial)), serial)
