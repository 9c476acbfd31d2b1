"""How far each family's entry hashes have split, shard by shard, as a process knows it.

Entry hashes split as the index grows (:class:`dedup.index.splits.Depth`): where an entry
lives depends on its shard's depth for its family, which the shard's counters keep. A
process reads every shard's depths once, names keys by what it knows, and hands each script
call the depths it named them by; a script that finds others changes nothing and answers the
depths it found (``stale``), and the call is named again and sent again
(:func:`dedup.index.scripts.run`). A call that leaves a shard holding more fields than its
hashes should answers so, and the writer splits the next buckets in order (``split.lua``,
one call a shard and family at a time), after the calls of its next round trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from dedup.index import scripts, splits
from dedup.index.keys import Keys
from dedup.index.layout import FAMILIES, Family
from dedup.index.scripts import Call, script_call
from dedup.index.splits import LOAD, MIN_FIELD_BITS, Depth
from dedup.servers.connection import IndexClient

BY_NAME = {family.name: family for family in FAMILIES}

SPLITS_PER_CALL = 4
"""Buckets one call of ``split.lua`` splits at most: a bucket of twice :data:`LOAD` fields
takes the server about half a millisecond, and one that fell behind several times that,
while no call may hold it for 10 ms."""
CALLS_PER_TRIP = 32
"""Calls of ``split.lua`` one round trip sends at most for one shard and family, one after
the other: a bulk batch adds a few thousand fields to a shard, about fifty buckets' worth; a
shard that falls behind catches up over the next round trips."""


SETS_KNOWN = 4096
"""Entries with overflow sets a process remembers (:attr:`Depths.sets`)."""


class Depths:
    """The depths of every shard's families, as last read or answered."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self._known: dict[tuple[int, str], Depth] = {}
        self._planned: dict[tuple[int, str], tuple[int, Depth, int]] = {}
        """Per shard and family, the splits planned from the replies of one round trip:
        its number, the depth they end at, how many."""
        self.loaded = False
        self.sets: dict[tuple[str, int], None] = {}
        """Entries last seen holding their serials in an overflow set (family letter, key),
        the latest :data:`SETS_KNOWN`: a call names their sets at once instead of learning it
        from an answer and sending the call again (a page copied thousands of times has all
        its entries so). An entry's set stays until its last holder goes, and a set named
        for an entry without one is not touched, so a stale note costs a key, no more."""

    def note_sets(self, entries: Iterable[tuple[str, int]]) -> None:
        """Remember these entries as held in overflow sets."""
        for entry in entries:
            self.sets.pop(entry, None)
            self.sets[entry] = None
        while len(self.sets) > SETS_KNOWN:
            del self.sets[next(iter(self.sets))]

    def load(self, client: IndexClient) -> None:
        """Read every shard's depths (one round trip; on a cluster each master sent its
        shards' reads by hand, as the scripts are: redis-py's cluster pipeline spent 8 ms of
        Python on the 128 reads, a third of a reader's first report)."""
        fields = [f for family in FAMILIES for f in self.keys.depth_fields(family)[:2]]
        shards = range(self.keys.shards.count)
        reads: list[Call[list[Any]]] = [
            scripts.command("HMGET", self.keys.counters(shard), *fields) for shard in shards
        ]
        for shard, values in zip(shards, scripts.run(client, reads), strict=True):
            for n, family in enumerate(FAMILIES):
                depth, split = values[2 * n : 2 * n + 2]
                self._known[shard, family.name] = Depth(int(depth or 0), int(split or 0))
        self.loaded = True

    def of(self, shard: int, family: Family) -> Depth:
        """What is known of a family's depth in a shard."""
        return self._known.get((shard, family.name), Depth())

    def address(self, family: Family, key: int) -> tuple[int, int, bytes]:
        """Shard, bucket and field of an entry (:func:`dedup.index.splits.address`)."""
        shard = self.keys.shards.of_key(family, key)
        return splits.address(family, self.keys.shards.bits, self.of(shard, family), key)

    def spec(self, shard: int, families: Iterable[Family]) -> str:
        """The depths a call names a shard's keys by, as the scripts read them
        (``common.lua``'s ``check_depths``): ``letter:depth:split``, space apart."""
        parts = []
        for family in dict.fromkeys(families):
            depth = self.of(shard, family)
            parts.append(f"{family.name}:{depth.depth}:{depth.split}")
        return " ".join(parts)

    def learn(self, shard: int, spec: bytes | str) -> None:
        """Depths a script answered for a shard (the format of :meth:`spec`)."""
        text = spec.decode() if isinstance(spec, bytes) else spec
        for part in text.split():
            name, depth, split = part.split(":")
            self._known[shard, name] = Depth(int(depth), int(split))

    def calls_fitting(self, calls: Sequence[tuple[int, Mapping[Family, int]]]) -> int:
        """How many of these calls adding entries (each its shard and how many entries of
        each family it adds) one round trip sends: those that add to no family of a shard
        more entries than its hashes hold now (:data:`LOAD` each), and the first call of
        each shard whatever it adds. The splits a round trip's replies ask for are sent
        with the next one, so a shard's hashes fill about twice over at most before they
        split; a bulk batch into a new index (one hash a family and shard) would fill them a
        hundred times over, and each such hash would take one call of ``split.lua`` tens of
        milliseconds."""
        added: dict[tuple[int, str], int] = {}
        seen: set[int] = set()
        for n, (shard, adds) in enumerate(calls):
            for family, count in adds.items():
                total = added[shard, family.name] = added.get((shard, family.name), 0) + count
                if shard in seen and total > LOAD * self.of(shard, family).buckets:
                    return n
            seen.add(shard)
        return len(calls)

    def splits(self, shard: int, grown: bytes | str) -> list[Call[None]]:
        """Split calls for what a script answered of a shard's growth (``letter:fields``,
        space apart): per family, its next buckets in order, until its hashes hold
        :data:`dedup.index.splits.LOAD` fields each on average, at most
        :data:`SPLITS_PER_CALL` a call and :data:`CALLS_PER_TRIP` calls, each going on
        where the one before stops. They are sent after the calls of the next round trip,
        whose replies are read after theirs: a reply asking again starts from where they
        left the depths, and a split asked twice runs once. The many calls of one round trip
        that find a shard's family grown plan its splits once: each goes on from where the
        splits planned by the replies before it end."""
        text = grown.decode() if isinstance(grown, bytes) else grown
        calls: list[Call[None]] = []
        trip = scripts.trip()
        for part in text.split():
            name, fields = part.split(":")
            family = BY_NAME[name]
            depth, done = self.of(shard, family), 0
            planned = self._planned.get((shard, name))
            if planned is not None and planned[0] == trip:
                _, depth, done = planned
            most = SPLITS_PER_CALL * CALLS_PER_TRIP - done
            left = min(-(-int(fields) // LOAD) - depth.buckets, most)
            while left > 0:
                names = [self.keys.counters(shard)]
                args: list[Any] = [family.name, depth.depth, depth.split]
                for _ in range(min(SPLITS_PER_CALL, left)):
                    bits = splits.field_bits(family, self.keys.shards.bits, depth.depth)
                    if bits - 1 < MIN_FIELD_BITS:
                        left = 0
                        break
                    parent = (1 << depth.depth) | depth.split
                    child = (1 << (depth.depth + 1)) | (2 * depth.split)
                    names += [self.keys.entry(family, shard, b) for b in (parent, child, child + 1)]
                    args.append(bits)
                    depth = depth.after_split()
                    left -= 1
                    done += 1
                if len(args) > 3:
                    calls.append(script_call("split.lua", names, args, partial(self.learn, shard)))
            self._planned[shard, name] = (trip, depth, done)
        return calls
