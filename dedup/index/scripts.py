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
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any, Generic, TypeVar

import redis
from redis.cluster import ClusterPipeline

from dedup.index import layout
from dedup.index.keys import FLAGS, Keys
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


@cache
def source(name: str) -> Source:
    """A Lua script of the package, preceded by the functions all scripts share."""
    folder = files("dedup.index").joinpath("lua")
    text = folder.joinpath("common.lua").read_text() + folder.joinpath(name).read_text()
    return Source(name, text, hashlib.sha1(text.encode("utf-8")).hexdigest())


@cache
def layout_argument() -> str:
    """ARGV[1] of every script: the packing of serials and the inline limit, as JSON."""
    return json.dumps(
        {
            "serial": {
                "format": layout.lua_format(layout.SERIAL.format),
                "size": layout.SERIAL.size,
            },
            "inline": layout.INLINE,
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Call(Generic[T]):
    """One command, ready to send, and how to read its reply."""

    command: tuple[Any, ...]
    parse: Callable[[Any], T]
    script: Source | None = None
    """The script an EVALSHA runs, to load it where the server lacks it."""


def script_call(
    name: str, keys: Sequence[str], args: Sequence[Any], parse: Callable[[Any], T]
) -> Call[T]:
    """A call of one of the package's scripts, by digest."""
    script = source(name)
    return Call(("EVALSHA", script.sha, len(keys), *keys, layout_argument(), *args), parse, script)


def command(*words: Any, parse: Callable[[Any], T] = lambda x: x) -> Call[T]:
    """A plain command."""
    return Call(tuple(words), parse)


def run(client: IndexClient, calls: Sequence[Call[Any]]) -> list[Any]:
    """Calls in one round trip; scripts a server has lost (a restart, a new master after a
    failover) are loaded again, and only the calls that found none are sent once more.

    redis-py's own script objects ask the server whether the scripts exist before every
    execution, a round trip more for each batch: half the cost of a one-document job.
    """
    if not calls:
        return []
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        if isinstance(pipe, ClusterPipeline):
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
            elif isinstance(answer, Exception):
                raise answer
            else:
                replies[i] = answer
        if not missing:
            break
        for script in {calls[i].script for i in missing}:
            if script is not None:
                client.script_load(script.text)
        todo = missing
    return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]


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


@dataclass(frozen=True)
class Held:
    """What one entry lookup or update answered."""

    count: int
    """Documents holding the entry (after the update)."""
    serials: list[int]
    """The serials asked for ('' when not asked or not answered)."""
    changed: bool = False
    """Whether an update changed the entry."""


@dataclass
class _Slot:
    keys: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    tickets: list[int] = field(default_factory=list)


class Batch:
    """The calls of one round trip. Entry lookups and updates are grouped into one script
    call per group; every method returns a ticket, the index of its answer in :meth:`send`'s
    reply."""

    def __init__(self, keys: Keys, *, boilerplate_at: int, few: int = 0) -> None:
        self.keys = keys
        self.boilerplate_at = boilerplate_at
        self.few = few
        self._lookups: defaultdict[int, _Slot] = defaultdict(_Slot)
        self._updates: defaultdict[int, _Slot] = defaultdict(_Slot)
        self._calls: list[tuple[int, Call[Any]]] = []
        self._count = 0

    def _ticket(self) -> int:
        self._count += 1
        return self._count - 1

    def _slot(
        self, table: defaultdict[int, _Slot], family: Family, key: int
    ) -> tuple[_Slot, bytes]:
        bucket, name = family.split(key)
        slot = table[family.group(bucket)]
        slot.keys += [self.keys.entry(family, bucket), self.keys.overflow(family, bucket, name)]
        return slot, name

    def lookup(self, family: Family, key: int, mode: str = COUNT) -> int:
        """Ask how many documents hold an entry (and which, by ``mode``)."""
        slot, name = self._slot(self._lookups, family, key)
        slot.modes.append(mode)
        slot.args.append(name)
        ticket = self._ticket()
        slot.tickets.append(ticket)
        return ticket

    def update(self, family: Family, key: int, op: str, serial: int) -> int:
        """Add a serial to an entry or take it out (``op``: :data:`ADD` ...)."""
        slot, name = self._slot(self._updates, family, key)
        slot.modes.append(op)
        slot.args += [name, serial]
        ticket = self._ticket()
        slot.tickets.append(ticket)
        return ticket

    def call(self, call: Call[Any]) -> int:
        """Any other call."""
        ticket = self._ticket()
        self._calls.append((ticket, call))
        return ticket

    def __len__(self) -> int:
        return self._count

    def _grouped(self) -> list[tuple[list[int], Call[Any]]]:
        out: list[tuple[list[int], Call[Any]]] = []
        for slot in self._lookups.values():
            call = script_call(
                "entries.lua", slot.keys, ["".join(slot.modes), self.few, *slot.args], _held_list
            )
            out.append((slot.tickets, call))
        for group, slot in self._updates.items():
            call = script_call(
                "update.lua",
                [self.keys.counters(group), *slot.keys],
                ["".join(slot.modes), self.boilerplate_at, *slot.args],
                _updated_list,
            )
            out.append((slot.tickets, call))
        return out

    def send(self, client: IndexClient) -> list[Any]:
        """Send every call in one round trip; the answers by ticket."""
        grouped = self._grouped()
        calls = [call for _, call in grouped] + [call for _, call in self._calls]
        replies = run(client, calls)
        answers: list[Any] = [None] * self._count
        for (tickets, _), reply in zip(grouped, replies, strict=False):
            for ticket, answer in zip(tickets, reply, strict=True):
                answers[ticket] = answer
        for (ticket, _), reply in zip(self._calls, replies[len(grouped) :], strict=True):
            answers[ticket] = reply
        return answers


def _held_list(reply: list[Any]) -> list[Held]:
    return [
        Held(int(n), serials(packed)) for n, packed in zip(reply[::2], reply[1::2], strict=True)
    ]


def _updated_list(reply: list[Any]) -> list[Held]:
    return [
        Held(int(reply[k]), serials(reply[k + 2]), bool(int(reply[k + 1])))
        for k in range(0, len(reply), 3)
    ]


# -- a document's group --------------------------------------------------------------------------


class Begun:
    """The reply of ``begin.lua``: the new serial, or 0 on a conflict."""

    def __init__(self, reply: list[Any]) -> None:
        self.serial = int(reply[1]) if reply[0] == b"ok" else 0


def begin(keys: Keys, doc_id: str, *, expect: int, intent: bytes) -> Call[Begun]:
    """``begin.lua``: the serial of a new version of ``doc_id``, its intent kept, unless the
    document's current version is no longer ``expect`` (0: none)."""
    bucket, name = layout.IDS.split(layout.id_key(doc_id))
    group = layout.IDS.group(bucket)
    return script_call(
        "begin.lua",
        [keys.entry(layout.IDS, bucket), keys.counters(group), keys.intents(group)],
        [name, expect, group, layout.GROUPS, intent],
        Begun,
    )


def commit(
    keys: Keys,
    doc_id: str,
    *,
    old: int,
    new: int,
    record: bytes,
    flags: set[str],
    documents: int,
    paragraphs: int,
    owed: bytes,
) -> Call[str]:
    """``commit.lua``: version ``new`` (0: none, a delete) becomes the current one of
    ``doc_id`` in place of ``old``; ``owed`` (an intent) is kept for what is left to do.
    The reply is ``ok``, ``conflict`` or ``lost``."""
    bucket, name = layout.IDS.split(layout.id_key(doc_id))
    group = layout.IDS.group(bucket)
    kept = new or old
    return script_call(
        "commit.lua",
        [
            keys.entry(layout.IDS, bucket),
            keys.counters(group),
            keys.intents(group),
            keys.records(kept),
            keys.records(old or kept),
            *(keys.flag(flag, group) for flag in FLAGS),
        ],
        [
            name,
            old,
            layout.position_of(old),
            new,
            layout.position_of(new),
            record,
            "".join("1" if f in flags else "0" for f in FLAGS),
            documents,
            paragraphs,
            owed,
            kept,
        ],
        lambda reply: decoded(reply[0]),
    )


def set_flags(keys: Keys, group: int, bits: Sequence[tuple[int, str, bool]]) -> Call[int]:
    """``flags.lua``: flag bits of versions of one group that still have a record."""
    names: list[str] = []
    args: list[Any] = []
    for serial, flag, on in bits:
        names += [keys.records(serial), keys.flag(flag, group)]
        args += [serial, layout.position_of(serial), int(on)]
    return script_call("flags.lua", names, args, int)


def current(keys: Keys, doc_id: str) -> Call[int]:
    """The serial of a document's current version (0 when it is not indexed)."""
    bucket, name = layout.IDS.split(layout.id_key(doc_id))
    return command(
        "HGET",
        keys.entry(layout.IDS, bucket),
        name,
        parse=lambda value: layout.SERIAL.unpack(value)[0] if value else 0,
    )


def record(keys: Keys, serial: int) -> Call[bytes | None]:
    """A version's packed record (None when it has none)."""
    return command("HGET", keys.records(serial), serial)


def intents(keys: Keys, group: int) -> Call[dict[int, bytes]]:
    """The intents kept in a group, by serial."""
    return command(
        "HGETALL",
        keys.intents(group),
        parse=lambda reply: {int(k): v for k, v in (reply or {}).items()},
    )


def intent(keys: Keys, serial: int) -> Call[bytes | None]:
    """The intent kept for one serial (None when there is none)."""
    return command("HGET", keys.intents(layout.group_of(serial)), serial)
