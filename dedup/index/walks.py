"""Walking the records of every shard in one order: newest first, or oldest first.

Each shard numbers its versions (its positions) in the order they were written, so one shard's
records come in time order by position. A walk merges the shards' streams by indexing time:
it reads a few positions of every shard at a time, and hands out a record only once every
shard that could still hold a newer one (an older one, walking up) has been read that far.
Shards fill at the same rate (documents go to the shard of a hash of their id), so the
shards' reads stay in step and each round trip serves all of them.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dedup.index import records
from dedup.index.keys import Keys
from dedup.index.records import Record
from dedup.servers.connection import IndexClient

FIRST_READ = 2
"""Positions read per shard on the first round trip; each later read of a shard doubles it."""
MOST_READ = 128
"""Positions read per shard at most in one round trip."""


@dataclass
class _Stream:
    """Where the walk is in one shard."""

    shard: int
    next: int
    """The next position to read."""
    end: int
    """Past the last position to read (the floor less one walking down, the top plus one
    walking up)."""
    index: int
    """Its place among the walk's streams."""
    most: int
    step: int = FIRST_READ
    buffered: deque[tuple[int, Record]] = field(default_factory=deque)

    @property
    def done(self) -> bool:
        return self.next == self.end

    def take(self, newest_first: bool) -> range:
        """The positions of the next read, in walking order, and the stream moved past them."""
        if newest_first:
            low = max(self.end + 1, self.next - self.step + 1)
            positions = range(self.next, low - 1, -1)
            self.next = low - 1
        else:
            high = min(self.end, self.next + self.step)
            positions = range(self.next, high)
            self.next = high
        self.step = min(self.most, self.step * 2)
        return positions


Positions = Callable[[IndexClient, list[tuple[int, range]]], list[list[int]]]
"""Which positions of each ``(shard, positions)`` asked to hand out: all (a walk of every
record) or those whose flag bit is set."""


def every(_client: IndexClient, asked: list[tuple[int, range]]) -> list[list[int]]:
    """Every position."""
    return [list(positions) for _, positions in asked]


def flagged(keys: Keys, flag: str) -> Positions:
    """The positions whose bit is set in the shard's bitmap of ``flag``."""

    def select(client: IndexClient, asked: list[tuple[int, range]]) -> list[list[int]]:
        pipe = client.pipeline(transaction=False)
        for shard, positions in asked:
            pipe.getrange(keys.flag(flag, shard), min(positions) // 8, max(positions) // 8)
        out = []
        for (_, positions), chunk in zip(asked, pipe.execute(), strict=True):
            base = 8 * (min(positions) // 8)
            found = [
                base + 8 * at + k
                for at, byte in enumerate(bytes(chunk or b""))
                if byte
                for k in range(8)
                if byte >> (7 - k) & 1
            ]
            wanted = [p for p in found if p in positions]
            out.append(wanted if positions.step > 0 else wanted[::-1])
        return out

    return select


def bounds(client: IndexClient, keys: Keys) -> list[tuple[int, int]]:
    """In each shard, the lowest position that may hold a record (below it, a purge left
    none) and the last position given out (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for shard in range(keys.shards.count):
        pipe.hmget(keys.counters(shard), "floor", "serial")
    return [(max(1, int(low or 1)), int(top or 0)) for low, top in pipe.execute()]


def walk(
    client: IndexClient,
    keys: Keys,
    *,
    newest_first: bool,
    select: Positions = every,
    most: int = MOST_READ,
    page: int = 500,
    below: tuple[int, int] | None = None,
) -> Iterator[list[tuple[int, Record]]]:
    """The records of every shard, merged by indexing time (then serial), ``page`` at a
    time; with ``below`` (newest first only), only those ordered after that indexing time in
    milliseconds and serial."""
    streams: list[_Stream] = []
    for shard, (low, top) in enumerate(bounds(client, keys)):
        if top >= low:
            start, end = (top, low - 1) if newest_first else (low, top + 1)
            streams.append(_Stream(shard, start, end, len(streams), most))
    heap: list[tuple[Any, int]] = []
    sign = -1 if newest_first else 1

    def order(serial: int, record: Record) -> tuple[float, int]:
        return (sign * record.indexed_at, sign * serial)

    def refill(wanting: list[_Stream]) -> None:
        asked = [(s.shard, s.take(newest_first)) for s in wanting]
        chosen = select(client, asked)
        pipe = client.pipeline(transaction=False)
        serials = []
        for (shard, _), positions in zip(asked, chosen, strict=True):
            these = [keys.shards.serial(p, shard) for p in positions]
            serials.append(these)
            for serial in these:
                pipe.hget(keys.records(serial), serial)
        replies = iter(pipe.execute())
        for stream, these in zip(wanting, serials, strict=True):
            was_empty = not stream.buffered
            for serial in these:
                raw = next(replies)
                if raw:
                    stream.buffered.append((serial, records.unpack(raw)))
            if was_empty and stream.buffered:
                heapq.heappush(heap, (order(*stream.buffered[0]), stream.index))

    out: list[tuple[int, Record]] = []
    while True:
        # A stream with nothing buffered may still hold the next record: read it first,
        # with every stream running low, in one round trip.
        if any(not s.buffered and not s.done for s in streams):
            refill([s for s in streams if not s.done and len(s.buffered) < s.step // 4 + 1])
            continue
        if not heap:
            break
        _, index = heapq.heappop(heap)
        stream = streams[index]
        serial, record = stream.buffered.popleft()
        if stream.buffered:
            heapq.heappush(heap, (order(*stream.buffered[0]), index))
        if below is not None and (round(record.indexed_at * 1000), serial) >= below:
            continue
        out.append((serial, record))
        if len(out) >= page:
            yield out
            out = []
    if out:
        yield out
