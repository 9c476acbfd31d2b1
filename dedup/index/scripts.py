"""The index's Lua scripts and plain commands, sent a round trip at a time.

Each ``.lua`` file opens with the KEYS, ARGV and reply it takes; its wrapper is the only
code that knows their order, and its reply parser the only code that knows the reply's:
:mod:`dedup.index.entries` for the scripts on index entries, :mod:`dedup.index.versions` for
those on a document's versions in its shard. Every key a script touches is handed to it in
KEYS, all of one shard (one hash slot of a cluster), named by :mod:`dedup.index.keys`;
ARGV[1] is the :func:`layout_argument`, the few constants of the layout the scripts need,
defined once in Python. Here: how a script is loaded and called, and the round trip that
sends calls (one pipeline on one server; on a cluster redis-py sends each node its share).
"""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Generic, NamedTuple, TypeVar

import hiredis
import redis
from redis.crc import key_slot

from dedup.index import layout, splits
from dedup.index.keys import Keys
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
and ``done.lua`` set values and answer nothing the writer reads, and ``peek.lua`` and
``entries.lua`` only read: they need no reply kept."""

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
    """ARGV[1] of every script: the packing of serials, its size, the inline limit, the most
    holders of an entry read and answered to a write adding itself, and the fields per entry
    hash past which hashes split, separated by spaces."""
    serial = f"{layout.lua_format(layout.SERIAL.format)} {layout.SERIAL.size}"
    return f"{serial} {layout.INLINE} {layout.SAMPLE} {layout.SAMPLE_SEEING} {splits.LOAD}"


class Call(NamedTuple, Generic[T]):
    """One command, ready to send, and how to read its reply."""

    command: tuple[Any, ...]
    parse: Callable[[Any], T]
    script: Source | None = None
    """The script an EVALSHA runs, to load it where the server lacks it."""
    reply_key: str | None = None
    """Where a writing script keeps its reply (:data:`ONCE`)."""
    rebuild: Callable[[Any], Call[T]] | None = None
    """For a call on entries: the call named again from the depths a ``stale`` reply
    answered (:mod:`dedup.index.depths`)."""
    after: Callable[[Any], list[Call[Any]]] | None = None
    """For a call on entries: what its reply asks to be done next (splitting the buckets of
    families it left too full), sent after the calls of the next round trip."""


def script_call(
    name: str,
    keys: Sequence[str],
    args: Sequence[Any],
    parse: Callable[[Any], T],
    shard: tuple[Keys, int] | None = None,
    *,
    rebuild: Callable[[Any], Call[T]] | None = None,
    after: Callable[[Any], list[Call[Any]]] | None = None,
) -> Call[T]:
    """A call of one of the package's scripts, by digest. A writing script (:data:`ONCE`)
    needs its keys' ``shard``: the call's reply is kept there under a name of its own."""
    script = source(name)
    reply_key = None
    if name in ONCE:
        assert shard is not None, f"{name} writes: its calls need their shard"
        reply_key = shard[0].reply(shard[1], os.urandom(8).hex())
        keys, args = (*keys, reply_key), (*args, REPLY_KEPT)
    words = ("EVALSHA", script.sha, len(keys), *keys, layout_argument(), *args)
    return Call(words, parse, script, reply_key, rebuild, after)


def command(*words: Any, parse: Callable[[Any], T] = lambda x: x) -> Call[T]:
    """A plain command."""
    return Call(tuple(words), parse)


_later: weakref.WeakKeyDictionary[Any, list[Call[Any]]] = weakref.WeakKeyDictionary()
"""Per client, what replies asked to be done next (splitting buckets): sent after the calls
of its next round trip, so that it costs no round trip of its own; the calls before it in
that round trip were named by the depths before it."""
_spent: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()
"""Per client, the reply keys of writing calls whose replies it has read: no longer needed,
unlinked with its next round trip."""


_trips = 0
"""Round trips :func:`run` has made in this process: replies of one round trip asking for
the same splits are planned once (:func:`trip`)."""


def trip() -> int:
    """The number of the round trip whose replies are being read."""
    return _trips


STALE_TRIES = 5
"""Times a call on entries is named again after finding its shard's buckets split by others
(each time from the depths it was answered)."""


def run(client: IndexClient, calls: Sequence[Call[Any]]) -> list[Any]:
    """Calls in one round trip; scripts a server has lost (a restart, a new master after a
    failover) are loaded again, and only the calls that found none are sent once more.
    A call on entries named by depths no longer true is named again and sent again; the
    buckets that calls leave too full are split after the calls of the next round trip.

    redis-py's own script objects ask the server whether the scripts exist before every
    execution, a round trip more for each batch: half the cost of a one-document job.
    """
    if not calls:
        return []
    calls = list(calls)
    later = _later.pop(client, [])
    try:
        replies = _send(client, [*calls, *later])
    except (redis.ConnectionError, redis.TimeoutError):
        if not later:
            raise
        # The splits are what a lost connection may cost: the calls go again alone (each may
        # run twice), and replies will ask for the splits again.
        later = []
        replies = _send(client, calls)
    for step, reply in zip(later, replies[len(calls) :], strict=True):
        step.parse(reply)
    replies = replies[: len(calls)]
    for _ in range(STALE_TRIES):
        stale = [i for i, reply in enumerate(replies) if _is_stale(reply)]
        if not stale:
            break
        again = []
        for i in stale:
            rebuild = calls[i].rebuild
            assert rebuild is not None, "only calls on entries check depths"
            calls[i] = rebuild(replies[i][1])
            again.append(calls[i])
        for i, reply in zip(stale, _send(client, again), strict=True):
            replies[i] = reply
    else:
        if any(map(_is_stale, replies)):
            raise redis.ResponseError("dedup: the index's buckets kept splitting under a call")
    global _trips
    _trips += 1
    follow = [
        step
        for call, reply in zip(calls, replies, strict=True)
        if call.after
        for step in call.after(reply)
    ]
    if follow:
        _later.setdefault(client, []).extend(follow)
    return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]


def _is_stale(reply: Any) -> bool:
    """Whether a script answered that its keys were named by depths no longer true."""
    return isinstance(reply, list) and len(reply) == 2 and reply[0] == b"stale"


def _send(client: IndexClient, calls: Sequence[Call[Any]]) -> list[Any]:
    """The calls in one round trip (scripts loaded again where the server lost them); their
    replies, not parsed."""
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
            commands = [calls[i].command for i in todo]
            answers = cluster_exchange(client, commands) or _pipelined(client, commands)
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
    return replies[:asked]


def _pipelined(client: redis.RedisCluster, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Commands to a cluster by redis-py's pipeline, which follows slots that moved and
    masters that failed over, retrying."""
    pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
    # redis-py's cluster pipelines leave out the client's policies, and without one a
    # pipeline asks a node for the keys of each script call (COMMAND GETKEYS, a round trip
    # per call) instead of reading its KEYS.
    pipe._policy_resolver = cluster_policies()
    for words in commands:
        pipe.execute_command(*words)
    answers: list[Any] = pipe.execute(raise_on_error=False)
    return answers


_ELSEWHERE = (
    redis.exceptions.AskError,  # MOVED too
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.ClusterCrossSlotError,
)
"""Answers of a master that the command's slot is not (or not yet) served there."""


def cluster_exchange(
    client: redis.RedisCluster, commands: Sequence[tuple[Any, ...]]
) -> list[Any] | None:
    """Commands to a cluster in one round trip: each to the master of its first key's slot
    as the client last learnt the slots, packed by hiredis, written to every master before
    any reply is read; the replies in order, or the errors Redis answered in their place.

    What :func:`exchange` is to one server: redis-py's cluster pipeline spends tens of
    microseconds of Python on each command, and a report on a cluster sends hundreds. None
    when a master could not be reached or answered that a slot is served elsewhere (a
    failover, a resharding): the commands then go again by :func:`_pipelined`, which
    follows the cluster where it went; each may have run once already, which every call of
    the index allows."""
    manager = client.nodes_manager
    by_node: dict[str, tuple[Any, list[int]]] = {}
    try:
        for i, words in enumerate(commands):
            key = _first_key(words)
            if key is None:
                return None
            node = manager.get_node_from_slot(key_slot(key))
            found = by_node.get(node.name)
            if found is None:
                found = by_node[node.name] = (node, [])
            found[1].append(i)
    except redis.exceptions.RedisClusterException:
        return None  # a slot no master serves, as the client knows them
    replies: list[Any] = [None] * len(commands)
    taken: list[tuple[Any, Any, list[int]]] = []
    try:
        for node, order in by_node.values():
            pool = client.get_redis_connection(node).connection_pool
            connection = pool.get_connection()
            taken.append((pool, connection, order))
            packed = b"".join(hiredis.pack_command(commands[i]) for i in order)
            connection.send_packed_command([packed])  # type: ignore[no-untyped-call]
        for _, connection, order in taken:
            for i, reply in zip(order, _replies(connection, len(order)), strict=True):
                replies[i] = reply
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        for _, connection, _ in taken:
            connection.disconnect()  # replies may be left unread on any of them
        return None
    finally:
        for pool, connection, _ in taken:
            pool.release(connection)
    if any(isinstance(reply, _ELSEWHERE) for reply in replies):
        return None
    return replies


def _first_key(words: tuple[Any, ...]) -> bytes | None:
    """The key a command is routed by: a script's first key, else its first argument."""
    if words[0] in ("EVALSHA", "EVAL"):
        key = words[3] if int(words[2]) > 0 else None
    else:
        key = words[1] if len(words) > 1 else None
    if isinstance(key, str):
        return key.encode("utf-8")
    return key if isinstance(key, bytes) else None


def _replies(connection: Any, count: int) -> list[Any]:
    """The next ``count`` replies of a connection, the errors Redis answered in their place."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except redis.ResponseError as error:
            replies.append(error)
    return replies


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
        return _replies(connection, len(commands))

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
    """Serials packed as entries hold them, each once (an entry in its overflow set answers
    its first holders, then those read from the set)."""
    return list(dict.fromkeys(layout.unpack_serials(packed))) if packed else []
