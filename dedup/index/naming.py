"""Entry operations named as the index's scripts take them: per operation the hash its
entry lives in (by what a process knows of its shard's depths, :mod:`dedup.index.depths`),
its code, and its field followed by what follows it. A compiled pass where a C compiler built
``_naming.c``; the same in Python otherwise. And the plain reads that count entries so named
(:func:`count_calls`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeAlias

from dedup.index import layout, scripts
from dedup.index.depths import Depths
from dedup.index.keys import Keys
from dedup.index.layout import Family
from dedup.index.scripts import Call

try:
    from dedup.index import _naming as compiled
except ImportError:  # built without a C compiler: _named names alike in Python
    compiled = None  # type: ignore[assignment]

Op: TypeAlias = tuple[Family, int, str, bytes, int]
"""One operation of a round trip on an entry: the entry's family and key, a letter, what
follows the field (the serial, for an update), and the ticket of its answer. Its hash and
field are named when its call is made, by what is known of its shard's depths."""


def named(
    keys: Keys, depths: Depths, shard: int, ops: Sequence[Op], *, sets: bool = False
) -> tuple[list[str], str, bytes]:
    """The keys, operation codes and packed fields of a shard's operations as a script
    takes them (``common.lua``'s ``each_operation``), named by what ``depths`` knows: per
    operation its entry's hash (and its overflow set with ``sets``), its letter, family
    letter and field width, its field followed by what follows it."""
    if compiled is not None and not sets:
        found = compiled.named(list(ops), _maker(keys, depths, shard), False)
        if found is not None:
            names, codes, packed = found
            assert isinstance(packed, bytes)
            return names, codes, packed
    names, codes, chunks = _named(keys, depths, shard, ops, sets=sets)
    return names, codes, b"".join(chunks)


def fields_of(
    keys: Keys, depths: Depths, shard: int, ops: Sequence[Op]
) -> tuple[list[str], list[bytes]]:
    """The hashes and fields of a shard's operations (:func:`named` without the rest)."""
    if compiled is not None:
        found = compiled.named(list(ops), _maker(keys, depths, shard), True)
        if found is not None:
            names, _, fields = found
            assert isinstance(fields, list)
            return names, fields
    names, _, chunks = _named(keys, depths, shard, ops)
    return names, chunks[::2]


def _maker(
    keys: Keys, depths: Depths, shard: int
) -> Callable[[Family], tuple[str, str, int, int, int, int] | None]:
    """What the compiled naming asks of each family of a call: its hashes' prefix in the
    shard, its letter, the shift of its keys to their bits past the shard's, how many
    those are, and its depth and split there (None for keys past 64 bits)."""

    def make(family: Family) -> tuple[str, str, int, int, int, int] | None:
        if family.key_bits > 64:
            return None
        depth = depths.of(shard, family)
        rest = family.precision - keys.shards.bits
        shift = family.key_bits - family.precision
        return (
            keys.entry_prefixes(family)[shard],
            family.name,
            shift,
            rest,
            depth.depth,
            depth.split,
        )

    return make


def _named(
    keys: Keys, depths: Depths, shard: int, ops: Sequence[Op], *, sets: bool = False
) -> tuple[list[str], str, list[bytes]]:
    """:func:`named`, the fields and what follows each apart.

    :func:`dedup.index.splits.address` for each operation, in a loop of its own: a bulk
    batch names about 7,000 operations, and a call per operation cost a fifth of its write.
    """
    names: list[str] = []
    codes: list[str] = []
    chunks: list[bytes] = []
    name, code_of, chunk = names.append, codes.append, chunks.append
    # Per family, what naming its operations takes (_Naming), made once a call; the
    # locals below are those of the family of the operation before.
    known: dict[str, _Naming] = {}
    last = None
    for family, key, code, tail, _ in ops:
        if family is not last:
            last = family
            found = known.get(family.name)
            if found is None:
                found = known[family.name] = _Naming.of(keys, depths, shard, family)
            shift, rest_mask, below, split, wide, narrow = found.bits
            wide_mask, narrow_mask, top, deeper = found.masks
            bucket_names, letters, prefix = found.names, found.letters, found.prefix
        low = (key >> shift) & rest_mask
        bucket = low >> below
        if bucket < split:
            bucket = (low >> (below - 1)) | deeper
            chunk((low & narrow_mask).to_bytes(narrow, "big"))
            width = narrow
        else:
            bucket |= top
            chunk((low & wide_mask).to_bytes(wide, "big"))
            width = wide
        hashed = bucket_names.get(bucket)
        if hashed is None:
            hashed = bucket_names[bucket] = prefix + str(bucket)
        name(hashed)
        if sets:
            name(keys.overflow(family, key))
        code_of(code + letters[width])
        chunk(tail)
    return names, "".join(codes), chunks


class _Naming(NamedTuple):
    """What naming one family's operations in one shard takes (:func:`_named`)."""

    prefix: str
    bits: tuple[int, int, int, int, int, int]
    """The key's shift to the bits past the shard's, their mask, the bits below the
    bucket's, the split, and the widths of fields at the depth and one deeper."""
    masks: tuple[int, int, int, int]
    """The fields' masks at the depth and one deeper, and the top bits of buckets there."""
    names: dict[int, str]
    """The hashes named so far, by bucket."""
    letters: dict[int, str]
    """Each field width's family letter and digit, as operation codes end."""

    @classmethod
    def of(cls, keys: Keys, depths: Depths, shard: int, family: Family) -> _Naming:
        depth = depths.of(shard, family)
        d = depth.depth
        rest = family.precision - keys.shards.bits
        wide, narrow = (rest - d + 7) // 8, (rest - d + 6) // 8
        return cls(
            keys.entry_prefixes(family)[shard],
            (
                family.key_bits - family.precision,
                (1 << rest) - 1,
                rest - d,
                depth.split,
                wide,
                narrow,
            ),
            ((1 << (rest - d)) - 1, (1 << (rest - d - 1)) - 1, 1 << d, 2 << d),
            {},
            {w: f"{family.name}{w}" for w in (wide, narrow)},
        )


def count_calls(
    keys: Keys, depths: Depths, shard: int, ops: Sequence[Op]
) -> tuple[list[Call[Any]], Callable[[Sequence[Any]], list[int] | None]]:
    """Plain reads of how many documents hold each of a shard's entries: an ``HMGET`` of
    each hash named, then one of the depths of the shard's families; and how to read their
    replies: per operation its count, -1 for an entry whose holders moved to its overflow
    set (counted again by ``entries.lua``). None when the depths read are not those the
    hashes were named by: the depths are learnt, and every count must be read again.

    Depths only grow, so the depths read after the hashes being those they were named by
    means that no split moved a field in between (a script's ``check_depths``, without a
    script: a script costs a few microseconds an entry more than a read of it)."""
    names, fields = fields_of(keys, depths, shard, ops)
    by_hash: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        by_hash.setdefault(name, []).append(k)
    families = list(dict.fromkeys(op[0] for op in ops))
    known = [depths.of(shard, f) for f in families]
    wanted = [n for depth in known for n in (depth.depth, depth.split)]
    calls: list[Call[Any]] = [
        scripts.command("HMGET", name, *(fields[k] for k in ks)) for name, ks in by_hash.items()
    ]
    asked = [f for family in families for f in keys.depth_fields(family)[:2]]
    calls.append(scripts.command("HMGET", keys.counters(shard), *asked))
    size = layout.SERIAL.size

    def read(replies: Sequence[Any]) -> list[int] | None:
        found = [int(v or 0) for v in replies[-1]]
        if found != wanted:
            spec = " ".join(
                f"{f.name}:{found[2 * n]}:{found[2 * n + 1]}" for n, f in enumerate(families)
            )
            depths.learn(shard, spec)
            return None
        counts = [0] * len(names)
        for ks, values in zip(by_hash.values(), replies, strict=False):
            for k, value in zip(ks, values, strict=True):
                if value is not None:
                    # an entry in its overflow set keeps '' or its first holders and a mark
                    counts[k] = len(value) // size if value and not len(value) % size else -1
        return counts

    return calls, read
