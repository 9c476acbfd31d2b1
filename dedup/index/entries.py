"""Index entries in round trips: lookups and updates of many documents' entries, grouped into
script calls per shard (``entries.lua`` and ``update.lua``, each run after ``common.lua``).

A :class:`Batch` gathers the calls of a whole round trip: entry lookups and updates for many
documents, grouped into script calls per shard, and any other command
(:func:`dedup.index.scripts.run` sends them).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from operator import itemgetter
from typing import Any

from dedup.index import layout, scripts
from dedup.index.depths import Depths
from dedup.index.keys import Keys
from dedup.index.layout import Family
from dedup.index.naming import Op, count_calls, named
from dedup.index.scripts import Call, script_call, serials
from dedup.servers.connection import IndexClient

COUNT, MEMBERS, FEW, AT_LIMIT = "c", "m", "b", "e"
"""Lookup modes: how many hold an entry; how many and which; which only while fewer than the
batch's limit do (paragraphs shared by a few documents); which only when exactly the limit
do (an entry about to stop being boilerplate)."""

ADD, ADD_SEEING, ADD_PARAGRAPH, ADD_PIECE, REMOVE, REMOVE_PARAGRAPH = "a", "A", "p", "q", "r", "x"
"""Update operations of ``update.lua``."""

Asked = tuple[str, int, str, bool]
"""A lookup: the family's letter, the entry's key, the mode, whether its set was named."""


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


class Batch:
    """The calls of one round trip. Entry lookups and updates are grouped into one script
    call per shard; every method returns tickets, the indexes of the answers in
    :meth:`send`'s reply.

    An entry's overflow set is only named for the operations that need it: the scripts hold
    back an operation on an entry that has moved to its set (boilerplate) and those after it
    on the same entry, and :meth:`send` sends those again with their sets, one round trip
    more for the batches that meet such entries. Naming every set would double the keys of
    every call of a write for the few entries that have one. A report names them at once
    (``lookups(..., sets=True)``): a few dozen keys more, where a page copied widely, whose
    entries all have a set, would pay a round trip more per read.
    """

    def __init__(
        self,
        keys: Keys,
        depths: Depths,
        *,
        boilerplate_at: int,
        few: int = 0,
        memo: dict[Asked, Held] | None = None,
    ) -> None:
        self.keys = keys
        self.depths = depths
        self.boilerplate_at = boilerplate_at
        self.few = few
        self._lookups: dict[int, list[Op]] = {}
        """The lookups of each shard, in order."""
        self._counts: dict[int, list[Op]] = {}
        """The counts of each shard, read without a script."""
        self._updates: dict[int, list[Op]] = {}
        """The updates of each shard, in order."""
        self._with_sets: dict[int, list[Op]] = {}
        """Updates known to need their entries' overflow sets, sent with them at once."""
        self._lookups_with_sets: dict[int, list[Op]] = {}
        """Lookups sent with their entries' overflow sets at once."""
        self._calls: list[tuple[int, Call[Any]]] = []
        self._known: list[tuple[int, Held]] = []
        self._asked: dict[Asked, int] = {}
        """The ticket of each lookup asked, to answer the same lookup asked again."""
        self.memo = memo
        """Lookups answered by earlier round trips of the same reader, answered again from
        here, and this batch's answers added (a report placing itself in its group asks the
        entries of a page and of its near copies, mostly the same, three times over)."""
        self._same: list[tuple[int, int]] = []
        """Tickets answered as another ticket is."""
        self._count = 0

    def _add(
        self,
        table: dict[int, list[Op]],
        family: Family,
        keys: Iterable[int],
        code: str,
        tail: bytes,
        with_sets: dict[int, list[Op]] | None = None,
    ) -> list[int]:
        """Tickets of operations on these entries, put among the calls of ``table``; with
        ``with_sets``, those on entries known to have overflow sets
        (:attr:`dedup.index.depths.Depths.sets`) among the calls of ``with_sets``, which
        name them."""
        first = self._count
        ops = [(family, key, code, tail, t) for t, key in enumerate(keys, first)]
        ticket = self._count = first + len(ops)
        known, name = self.depths.sets, family.name
        if with_sets is None or not known or all((name, op[1]) not in known for op in ops):
            self._place(table, family, ops)
        else:
            self._place(table, family, [op for op in ops if (name, op[1]) not in known])
            self._place(with_sets, family, [op for op in ops if (name, op[1]) in known])
        return list(range(first, ticket))

    def _place(self, table: dict[int, list[Op]], family: Family, ops: list[Op]) -> None:
        """Put operations of one family among the calls of their shards, in order."""
        if not ops:
            return
        if self.keys.shards.count == 1:
            table.setdefault(0, []).extend(ops)
            return
        shift = family.key_bits - self.keys.shards.bits
        for op in ops:
            shard = op[1] >> shift
            found = table.get(shard)
            if found is None:
                table[shard] = [op]
            else:
                found.append(op)

    def lookups(
        self, family: Family, keys: Iterable[int], mode: str = COUNT, *, sets: bool = False
    ) -> list[int]:
        """Ask how many documents hold each of these entries (and which, by ``mode``); with
        ``sets``, naming their overflow sets at once (for entries likely to have one: a
        reader saves the round trip that would name them)."""
        table = self._lookups_with_sets if sets else self._lookups
        tickets = []
        memo = self.memo
        for key in keys:
            asked = (family.name, key, mode, sets)
            first = self._asked.get(asked)
            if first is None and memo is not None and asked in memo:
                tickets.append(self.known(memo[asked]))
            elif first is None:
                first = self._asked[asked] = self._add(table, family, (key,), mode, b"")[0]
                tickets.append(first)
            else:  # asked already by this batch (documents of one page share their bands)
                tickets.append(self._count)
                self._same.append((self._count, first))
                self._count += 1
        return tickets

    def counts(self, family: Family, keys: Iterable[int]) -> list[int]:
        """Ask how many documents hold each of these entries, by plain reads of their hashes
        (:func:`dedup.index.naming.count_calls`): cheaper than a script for the thousands a
        bulk write counts. Entries known to have overflow sets are counted by the script."""
        return self._add(self._counts, family, keys, COUNT, b"", self._lookups_with_sets)

    def lookup(self, family: Family, key: int, mode: str = COUNT) -> int:
        """Ask how many documents hold an entry (and which, by ``mode``)."""
        return self.lookups(family, (key,), mode)[0]

    def updates(
        self,
        family: Family,
        keys: Iterable[int],
        op: str,
        serial: int,
        *,
        sets: bool | None = None,
    ) -> list[int]:
        """Add a serial to each of these entries or take it out (``op``: :data:`ADD` ...);
        with ``sets``, naming their overflow sets (entries that an operation found in one);
        by default, those of the entries known to have one; ``sets=False``, none."""
        tail = layout.SERIAL.pack(serial)
        if sets is None:
            return self._add(self._updates, family, keys, op, tail, self._with_sets)
        return self._add(self._with_sets if sets else self._updates, family, keys, op, tail)

    def take_updates(self, shard: int) -> list[Op]:
        """The updates of one shard, taken out of the batch to be sent another way (their
        tickets answered by :meth:`known` in another batch)."""
        return self._updates.pop(shard, [])

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

    def _script(self, shard: int, ops: list[Op], *, lookup: bool, sets: bool) -> Call[list[Held]]:
        names, codes, chunk = named(self.keys, self.depths, shard, ops, sets=sets)
        spec = self.depths.spec(shard, (op[0] for op in ops))
        given = "1" if sets else "0"

        def rebuild(found: bytes) -> Call[list[Held]]:
            self.depths.learn(shard, found)
            return self._script(shard, ops, lookup=lookup, sets=sets)

        if lookup:
            return script_call(
                "entries.lua",
                (self.keys.counters(shard), *names),
                [codes, self.few, chunk, given, spec],
                _held_list,
                rebuild=rebuild,
            )
        return script_call(
            "update.lua",
            (self.keys.counters(shard), *names),
            [codes, self.boilerplate_at, chunk, given, spec],
            lambda reply: updated_list(reply[0]),
            (self.keys, shard),
            rebuild=rebuild,
            after=lambda reply: self.depths.splits(shard, reply[1]),
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
                (True, self._lookups_with_sets, True),
                (False, self._updates, False),
                (False, self._with_sets, True),
            )
            for g, ops in table.items()
            for chunk in _chunked(ops, lookup=lookup, sets=sets)
        ]
        calls = [self._script(g, ops, lookup=lookup, sets=sets) for lookup, g, ops, sets in grouped]
        counting = [
            (shard, ops, *count_calls(self.keys, self.depths, shard, ops))
            for shard, ops in self._counts.items()
        ]
        for *_, some, _ in counting:
            calls += some
        calls += [call for _, call in self._calls]
        replies = scripts.run(client, calls)
        again: list[tuple[bool, int, list[Op]]] = []
        for (lookup, shard, ops, _), held in zip(grouped, replies, strict=False):
            back = []
            for op, answer in zip(ops, held, strict=True):
                if answer.count < 0:
                    back.append(op)
                else:
                    answers[op[4]] = answer
            if back:
                again.append((lookup, shard, back))
        at = len(grouped)
        for shard, ops, some, read in counting:
            found = read(replies[at : at + len(some)])
            at += len(some)
            back = []
            for op, count in zip(ops, found or repeat(-1), strict=False):
                if count < 0:
                    back.append(op)
                else:
                    answers[op[4]] = Held((count, b"", 0))
            if back:
                again.append((True, shard, back))
        for (ticket, _), reply in zip(self._calls, replies[at:], strict=True):
            answers[ticket] = reply
        if again:
            again = [
                (lookup, g, chunk)
                for lookup, g, ops in again
                for chunk in _chunked(ops, lookup=lookup, sets=True)
            ]
            calls = [self._script(g, ops, lookup=lookup, sets=True) for lookup, g, ops in again]
            for (_, _, ops), held in zip(again, scripts.run(client, calls), strict=True):
                for op, answer in zip(ops, held, strict=True):
                    answers[op[4]] = answer
        for ticket, first in self._same:
            answers[ticket] = answers[first]
        if self.memo is not None:
            self.memo.update((asked, answers[ticket]) for asked, ticket in self._asked.items())
        inline = layout.INLINE
        tables = (self._lookups, self._lookups_with_sets, self._updates, self._with_sets)
        self.depths.note_sets(
            (op[0].name, op[1])
            for table in (*tables, self._counts)
            for ops in table.values()
            for op in ops
            if answers[op[4]][0] > inline
        )
        return answers


OPS_PER_CALL = 200
"""Entry updates per script call at most: Redis runs one call at a time, and a batch of 200
documents holds about 9,000. The calls of a round trip still go together."""
LOOKUPS_PER_CALL = 50
"""Entry lookups per script call at most: each may read :data:`dedup.index.layout.SAMPLE`
holders of an entry."""
SET_OPS_PER_CALL = 50
"""Entry updates per script call at most when their entries' overflow sets are given: the
entries of a page copied thousands of times, each update adding to a set and reading a
sample of it (:data:`dedup.index.layout.SAMPLE_SEEING`), ten to twenty microseconds; 200 of
them held a server near 10 ms."""


def _chunked(ops: list[Op], *, lookup: bool, sets: bool) -> list[list[Op]]:
    """The operations in calls of at most :data:`LOOKUPS_PER_CALL` lookups,
    :data:`SET_OPS_PER_CALL` updates naming their overflow sets or :data:`OPS_PER_CALL`
    others, in their order. Without their overflow sets, those on one entry go in one call:
    a script holds back an entry's later operations when one needs its set, and a later call
    must not run them first. With their sets none is held back, and the calls of one shard
    run in their order, so an entry's operations are cut like any others: a batch of 200
    copies of one page puts 200 operations on each of its entries, and one call of them
    held a master 10-20 ms."""
    most = LOOKUPS_PER_CALL if lookup else SET_OPS_PER_CALL if sets else OPS_PER_CALL
    if len(ops) <= most:
        return [ops]
    if sets:
        return [ops[first : first + most] for first in range(0, len(ops), most)]
    by_entry: dict[tuple[str, int], list[Op]] = {}
    for op in ops:
        by_entry.setdefault((op[0].name, op[0].prefix(op[1])), []).append(op)
    chunks: list[list[Op]] = [[]]
    for entry in by_entry.values():
        if chunks[-1] and len(chunks[-1]) + len(entry) > most:
            chunks.append([])
        chunks[-1] += entry
    return chunks


def _held_list(reply: list[Any]) -> list[Held]:
    return list(map(Held, zip(reply[::2], reply[1::2], repeat(0))))


NEW_ENTRY = Held((1, b"", 1))
"""The answer of an update that made its entry: one holder, changed, no serials."""


def updated_list(reply: list[Any]) -> list[Held]:
    """The answers of updates (``update.lua``'s, or ``begin.lua``'s on its own entries): a
    mark per operation, ``n`` for one that made its entry, and the values of the others
    (``common.lua``'s ``update_all``)."""
    marks, rest = reply
    others = list(map(Held, zip(rest[::3], rest[2::3], rest[1::3], strict=True)))
    if len(others) == len(marks):
        return others
    out = [NEW_ENTRY] * len(marks)
    at = -1
    for answer in others:
        at = marks.index(b"+", at + 1)
        out[at] = answer
    return out
