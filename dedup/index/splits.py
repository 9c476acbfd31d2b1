"""How an entry family's hashes split as a shard fills (linear hashing, Litwin 1980), and
where an entry lives at a given depth. Pure: :mod:`dedup.index.depths` keeps what a process
knows of each shard's depths, ``split.lua`` splits."""

from __future__ import annotations

from dataclasses import dataclass

from dedup.index.layout import Family


@dataclass(frozen=True)
class Depth:
    """How far one family's hashes in one shard have split (linear hashing, Litwin 1980).

    The shard's entries are cut by the next bits of their keys: those whose ``depth`` bits
    fall below ``split`` by ``depth + 1`` bits, the others by ``depth``. A bucket splits in
    two once the shard holds more than :data:`LOAD` fields per bucket, one at a time in
    order, so each holds about :data:`LOAD` whatever the size of the index: a small index
    has few hashes, a large one many, none past Redis's compact encoding.
    """

    depth: int = 0
    split: int = 0

    @property
    def buckets(self) -> int:
        """Hashes the family has in the shard."""
        return (1 << self.depth) + self.split

    def after_split(self) -> Depth:
        """The depth once the next bucket has split."""
        if self.split + 1 == 1 << self.depth:
            return Depth(self.depth + 1, 0)
        return Depth(self.depth, self.split + 1)


LOAD = 64
"""Fields per entry hash, on average, past which a shard's hashes of a family split: each
stays well inside Redis's compact encoding (128 fields by default), and the few bytes a
hash costs besides its fields are shared by many."""
MIN_FIELD_BITS = 8
"""Bits a field keeps at least: a family stops splitting before its fields would have
fewer (about 2**26 hashes a shard for LSH bands)."""


def address(family: Family, shard_bits: int, depth: Depth, key: int) -> tuple[int, int, bytes]:
    """Where an entry lives: its shard, its bucket (numbered as a heap: ``2**d + b`` for the
    ``b``-th bucket at depth ``d``) and its field there (the bits of :attr:`Family.prefix`
    past the shard's and the bucket's, big-endian)."""
    rest_bits = family.precision - shard_bits
    prefix = family.prefix(key)
    shard = prefix >> rest_bits
    rest = prefix & ((1 << rest_bits) - 1)
    d = depth.depth
    bucket = rest >> (rest_bits - d)
    if bucket < depth.split:
        d += 1
        bucket = rest >> (rest_bits - d)
    field_bits = rest_bits - d
    field = rest & ((1 << field_bits) - 1)
    return shard, (1 << d) | bucket, field.to_bytes((field_bits + 7) // 8, "big")


def field_bits(family: Family, shard_bits: int, depth: int) -> int:
    """Bits of a field of a bucket at ``depth``."""
    return family.precision - shard_bits - depth
