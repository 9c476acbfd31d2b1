"""How a document is laid out in the store: a packed record and a few small index entries.

A million documents must fit in about a gigabyte of Redis, everything included, so the
layout avoids what costs memory in Redis: a key per small thing, and long member names.

- The index is cut into **shards** (:class:`Shards`, a power of two of them), each with a
  hash tag of its own (a Redis Cluster keeps every key of a shard in one hash slot; the
  tags are spread evenly over the slots, so each master's share of shards is its share of
  slots). A document lives in the
  shard of its id: its id entry, its records, its flag bits and the shard's counters share a
  slot, so that one script can replace one version by the next. Index entries live in the
  shard of their bucket, so each LSH band, paragraph or content lookup goes to one slot.
- Every indexed version of a document gets a **serial** (a 32-bit integer): the shard's own
  count ``n`` times the number of shards plus the shard, so no key is written by every document
  and the shard can be read back from the serial. Its **record** (id, URL, time, MinHash
  signature, paragraph fingerprints, the internal repeats when there are any) is one packed
  string, a field of a hash holding 128 consecutive serials of the shard.
- A write spans several slots and no step is atomic with the next, so it is announced first:
  an **intent** next to the shard's records names the new version and its record before any
  entry names it, and becomes, when the version is committed, the work still owed (the old
  version's entries to take out, flags to raise on other documents, flags to refresh). A
  retry of the job, or any writer once the intent is older than its lease, finishes what a
  dead writer owed or takes back what it had begun (:class:`dedup.index.records.Intent`).
- LSH bands, paragraph fingerprints, exact content and document ids are **entries**: a field
  of a few bytes in one of many small hashes, chosen by the entry's high bits. The value is
  the serials of the documents holding the entry, packed 4 bytes each; an entry held by more
  than :data:`INLINE` documents (boilerplate, a wire story copied everywhere) moves to a set
  of its own, which is rare enough to cost nothing per document.
- Signatures keep a few bits of each MinHash value (b-bit minwise hashing, Li and König
  2010): 8 bits of the values the LSH bands read, 4 of the others. Two different values agree
  by chance with probability 1/256 or 1/16, which the similarity estimate subtracts; its
  spread grows by about 3% (0.0258 instead of 0.025 at Jaccard 0.8 with 256 values).

Everything here is pure: the store sends what it computes to Redis. The Lua scripts read
records and entries with the same layout, which :mod:`dedup.index.scripts` hands them from
the constants defined here: nothing of it is written a second time in Lua.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

import xxhash

if TYPE_CHECKING:  # numpy is imported where signatures are made: reading commands start faster
    import numpy as np
    import numpy.typing as npt

FORMAT_VERSION = "7"
"""Bumped when the layout or the hashing of stored signatures changes (3: keys in shards with
hash tags, 128-bit id entries; 4: every id entry keeps the digest of its version's content
and URL, and every index records its shards; 5: entry hashes split as they fill; 6: the
near-copy data of ``near_paragraphs`` keeps two pieces a paragraph, packed, and 64 bits of
its signature; 7: an entry whose holders moved to its overflow set keeps its first holders
in its field, followed by a mark, where format 6 kept ''). The near-copy data is an
extension recorded by the setting in the signature settings: with it off, records are those
of format 5. An index of an older format is read by no branch of the code: ``dedup
migrate`` (:mod:`dedup.index.migrate`)
brings it to this one."""

CLUSTER_SHARDS = 128
"""Shards of keys of a new index on a Redis Cluster (unless the ``index_shards`` setting
says otherwise), each in one hash slot. Every round trip of a batch's writes sends one script
call to each shard its entries fall in, so fewer shards cost less per document; a cluster
spreads evenly over up to about one master per eight shards (docs/SCALING.md)."""
SERVER_SHARDS = 1
"""Shards of keys of a new index on one server: there they spread nothing, and each would
cost a script call per round trip (about 30 for a one-document write with 128)."""
SLOTS = 16384
"""Hash slots of a Redis Cluster."""

INLINE = 8
"""Serials an entry keeps in its own field before it moves to a set of its own."""

SAMPLE = 64
"""The most holders of one entry a script reads: an entry held by more (a page copied ten
thousand times, a footer on every page) is counted in full and read as a sample of this
many, so that no call does work that grows with the copies of a page."""
SAMPLE_SEEING = 16
"""The most holders of one entry a write is answered when it adds itself: the candidates
it scores and flags. The holders of an entry held by more have been flagged by the writes
before (reports read :data:`SAMPLE`)."""

RECORDS_PER_BUCKET = 128
"""Consecutive serials whose records share one hash."""

INTENT_LEASE = 900.0
"""Seconds after which any writer may finish or take back another writer's intent: longer
than a job may run (``job_timeout``), so its writer is gone by then. A retry of the same job
takes back its own intents at once."""

WIDE_BITS = 8
"""Bits a record keeps of each MinHash value the LSH bands read (one byte each)."""
NARROW_BITS = 4
"""Bits a record keeps of each of the other MinHash values (two to a byte)."""
SIGNATURE_BITS = f"{WIDE_BITS}/{NARROW_BITS}"
"""Bits kept of each MinHash value, as the meta key records them."""

SERIAL = struct.Struct("<I")
"""A serial as entries and id entries hold them: 4 bytes, little-endian."""
ENTRY_BUCKET = struct.Struct("<I")
"""The bucket number that precedes each entry field the store sends the scripts."""


@dataclass(frozen=True, eq=False)
class Family:
    """A kind of index entry whose hashes split as they fill (:class:`Depth`): its key prefix
    letter and the bits of its 64-bit keys that tell entries apart. The families are the
    constants below, compared and hashed as objects: a write hashes one for each of its
    thousands of entries."""

    name: str
    precision: int
    """Top bits of a key that name its entry: the shard's, the bucket's, then the field's,
    fewer as the buckets split (two keys agreeing on these are one entry)."""
    key_bits: int = 64

    def prefix(self, key: int) -> int:
        """The bits of a key that name its entry (its top :attr:`precision` bits)."""
        return key >> (self.key_bits - self.precision)


# The precision of each family is what the fixed layout of format 4 kept (bucket and field
# bits): an index migrated from it loses nothing. LSH bands: 42 bits, so unrelated band keys
# agree by chance about once in 4e12; paragraphs 50; contents 62; near-copy pieces 44.
BANDS = Family("b", precision=42)
PARAGRAPHS = Family("p", precision=50)
CONTENT = Family("c", precision=62)
PIECES = Family("q", precision=44)
# An id entry names one document: 78 bits of a 128-bit hash of its id, so that the writer's
# script finds the current version without reading records (no two ids of ten billion agree
# on 78 bits but with a chance of about 1 in 30,000).
IDS = Family("i", precision=78, key_bits=128)
FAMILIES = (BANDS, PARAGRAPHS, CONTENT, PIECES, IDS)
"""The families of entries, whose hashes split as they fill."""

PARAGRAPH_BITS = 64
"""Bits a record keeps of a signed paragraph's signature, one per MinHash value (1-bit
minwise hashing): 16 bytes; a near copy at Jaccard 0.8 is estimated within about 0.05."""

_MASK = 0xFFFF_FFFF_FFFF_FFFF
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(x: int) -> int:
    """splitmix64's finaliser: every output bit depends on every input bit."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def reduce_signature(signature: npt.NDArray[np.uint32], wide: int) -> bytes:
    """What a record keeps of a MinHash signature: 8 bits of the first ``wide`` values (the
    LSH bands read them), 4 bits of the others, two to a byte.

    The bits are taken after a multiplicative mix: the minimum of many values has small high
    bits, so they would agree far more often than by chance; the mixed value's top bits are
    uniform.
    """
    import numpy as np

    mixed = signature.astype(np.uint32) * np.uint32(0x9E3779B1)
    top = (mixed >> np.uint32(32 - WIDE_BITS)).astype(np.uint8)
    tail = top[wide:] >> np.uint8(WIDE_BITS - NARROW_BITS)
    packed = tail[0::2] | (tail[1::2] << np.uint8(NARROW_BITS))
    return bytes(top[:wide]) + bytes(packed.astype(np.uint8))


_EQUAL_NARROW = [
    sum((diff >> shift) & ((1 << NARROW_BITS) - 1) == 0 for shift in range(0, 8, NARROW_BITS))
    for diff in range(256)
]
"""Narrow values two bytes agree on, by the bytes' XOR."""


def similarity(first: bytes, second: bytes, wide: int) -> float:
    """Estimated Jaccard similarity of two reduced signatures, corrected for chance agreement.

    Two different MinHash values agree on 8 bits with probability 1/256, on 4 bits with 1/16:
    the expected number of equal positions is ``J * n + (1 - J) * chance``, solved for ``J``.
    ``dedup/index/lua/common.lua`` computes the same number from the same constants, in the
    same order of operations.
    """
    if len(first) != len(second):
        raise ValueError("reduced signatures of different lengths")
    # Counted on the XOR of the two as one integer, in C: equal bytes are zero bytes of the
    # wide part, equal nibbles zero hex digits of the narrow one (a report scores hundreds).
    rest = len(first) - wide
    head = int.from_bytes(first[:wide], "big") ^ int.from_bytes(second[:wide], "big")
    equal = head.to_bytes(wide, "big").count(0)
    tail = int.from_bytes(first[wide:], "big") ^ int.from_bytes(second[wide:], "big")
    if NARROW_BITS == 4 and rest:
        equal += f"{tail:0{2 * rest}x}".count("0")
    else:
        equal += sum(_EQUAL_NARROW[b] for b in tail.to_bytes(rest, "big"))
    narrow = 8 // NARROW_BITS * (len(first) - wide)
    chance = wide / (1 << WIDE_BITS) + narrow / (1 << NARROW_BITS)
    return max(0.0, (equal - chance) / (wide + narrow - chance))


SCORED_AT_ONCE = 8
"""Signatures from which :func:`similarities` scores in one numpy pass: below it, numpy's
fixed cost per call is more than :func:`similarity`'s per signature."""


def similarities(first: bytes, others: Sequence[bytes], wide: int) -> list[float]:
    """:func:`similarity` of ``first`` with each of ``others`` (all of its length), the same
    numbers: equal values counted for all of them at once (a report scores hundreds of
    candidates, a few dozen per document)."""
    if len(others) < SCORED_AT_ONCE:
        return [similarity(first, other, wide) for other in others]
    import numpy as np

    size = len(first)
    if set(map(len, others)) != {size}:
        raise ValueError("reduced signatures of different lengths")
    rows = np.frombuffer(b"".join(others), dtype=np.uint8).reshape(len(others), size)
    mine = np.frombuffer(first, dtype=np.uint8)
    equal = np.count_nonzero(rows[:, :wide] == mine[:wide], axis=1)
    rest = size - wide
    if rest:
        diff = rows[:, wide:] ^ mine[wide:]
        for shift in range(0, 8, NARROW_BITS):
            part = (diff >> np.uint8(shift)) & np.uint8((1 << NARROW_BITS) - 1)
            equal += np.count_nonzero(part == 0, axis=1)
    narrow = 8 // NARROW_BITS * rest
    chance = wide / (1 << WIDE_BITS) + narrow / (1 << NARROW_BITS)
    return list(np.maximum(0.0, (equal - chance) / (wide + narrow - chance)).tolist())


def band_keys(reduced: bytes, bands: int, rows: int) -> list[int]:
    """One 64-bit key per LSH band: documents with an equal key share the band."""
    return [
        _mix64(
            int.from_bytes(reduced[b * rows : (b + 1) * rows], "little")
            ^ ((b + 1) * _GOLDEN & _MASK)
        )
        for b in range(bands)
    ]


def paragraph_key(fingerprint: int) -> int:
    """The entry key of a paragraph fingerprint (its top 48 bits, as records keep them)."""
    return fingerprint & 0xFFFF_FFFF_FFFF_0000


def piece_key(key: int) -> int:
    """The entry key of a near-copy piece: its top :data:`PIECES` precision bits, as records
    keep them (all an entry is told by)."""
    return key >> PIECE_LOW << PIECE_LOW


PIECE_LOW = PIECES.key_bits - PIECES.precision
"""Low bits of a piece key that neither its entry nor a record keeps."""


def paragraphs_bits(signatures: npt.NDArray[np.uint32]) -> list[bytes]:
    """What a record keeps of each paragraph signature (a row): one bit of each value,
    after the same multiplicative mix as :func:`reduce_signature`; all rows in one pass."""
    import numpy as np

    mixed = signatures[:, :PARAGRAPH_BITS].astype(np.uint32) * np.uint32(0x9E3779B1)
    packed = np.packbits((mixed >> np.uint32(31)).astype(np.uint8), axis=1)
    return [row.tobytes() for row in packed]


def paragraph_similarity(first: bytes, second: bytes) -> float:
    """Estimated Jaccard similarity of two paragraphs' bits: two different values agree by
    chance half the time, which the estimate subtracts."""
    n = 8 * len(first)
    differ = int.from_bytes(first, "big") ^ int.from_bytes(second, "big")
    equal = n - differ.bit_count()
    return max(0.0, (equal - n / 2) / (n / 2))


def unpack_serials(packed: bytes) -> tuple[int, ...]:
    """Serials packed as entries and refresh fields hold them (:data:`SERIAL`)."""
    return struct.unpack(f"<{len(packed) // SERIAL.size}{SERIAL.format[1:]}", packed)


def id_key(doc_id: str) -> int:
    """The 128-bit entry key of a document id."""
    return int(xxhash.xxh3_128_intdigest(doc_id.encode("utf-8")))


class IdEntry(NamedTuple):
    """A document's id entry: the key of :data:`IDS` its id hashes to."""

    key: int


def id_entry(doc_id: str) -> IdEntry:
    """The id entry of a document (its id hashed once: a write reads it at every step)."""
    return IdEntry(id_key(doc_id))


VERSION_BYTES = 8
"""Bytes of a version's digest that its id entry keeps after its serial."""


def version_digest(content: int, url: str | None) -> bytes:
    """What tells one version of a document from another: its content and URL.

    An id entry keeps it after the serial, so that the script announcing a new version sees,
    without reading the record, that the version is the one indexed already (a page scraped
    again unchanged): nothing is written then, and no serial is spent. The fetch time is left
    out: a page crawled again every day with the same content stays one version, and its
    report keeps the time it was first fetched with that content (what the canonical rule
    ``earliest`` asks about). Entries written before the digest existed hold the serial
    alone; a writer reads their record instead.
    """
    digest = xxhash.xxh64(content.to_bytes(8, "little"))
    text = b"" if url is None else url.encode("utf-8")
    digest.update(struct.pack("<bI", url is not None, len(text)) + text)
    return digest.digest()


def id_serial(value: bytes) -> int:
    """The serial an id entry names (its first bytes; a digest may follow)."""
    return int(SERIAL.unpack_from(value)[0])


# -- shards and serials ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shards:
    """How an index is cut into shards: ``count`` of them, a power of two."""

    count: int = CLUSTER_SHARDS

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 1 << MAX_SHARD_BITS or self.count & (self.count - 1):
            raise ValueError(f"shards must be a power of two from 1 to {1 << MAX_SHARD_BITS}")

    @property
    def bits(self) -> int:
        """log2 of the count: a bucket's shard is its top bits."""
        return self.count.bit_length() - 1

    def serial(self, position: int, shard: int) -> int:
        """The serial of the ``position``-th version indexed in a shard (from 1)."""
        return position * self.count + shard

    def of(self, serial: int) -> int:
        """The shard a version lives in."""
        return serial % self.count

    def position(self, serial: int) -> int:
        """A version's place in its shard: its bit in the shard's flag bitmaps."""
        return serial // self.count

    def of_key(self, family: Family, key: int) -> int:
        """The shard of an entry of a family that splits: its key's high bits."""
        return family.prefix(key) >> (family.precision - self.bits)

    def of_id(self, doc_id: str) -> int:
        """The shard a document lives in: that of its id entry."""
        return self.of_key(IDS, id_key(doc_id))

    @property
    def tags(self) -> tuple[str, ...]:
        """The hash tag of each shard (:func:`shard_tags`)."""
        return shard_tags(self.count)


MAX_SHARD_BITS = 12
"""At most 4,096 shards."""


@cache
def shard_tags(count: int) -> tuple[str, ...]:
    """The hash tag of each of ``count`` shards: short strings whose hash slots are spread
    evenly, shard ``g`` in the ``g``-th of ``count`` equal ranges of slots, so that any master
    holding a share of the slots holds the same share of the shards."""
    width = SLOTS // count
    tags: list[str | None] = [None] * count
    left, n = count, 0
    while left:
        tag = format(n, "x")
        shard = (binascii.crc_hqx(tag.encode(), 0) % SLOTS) // width
        if tags[shard] is None:
            tags[shard] = tag
            left -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def lua_format(fmt: str) -> str:
    """A :mod:`struct` format of this module in the notation of the ``struct`` library of
    Redis's Lua: sizes spelled out, and 64-bit integers read as their 8 bytes, since a Lua
    number cannot hold them exactly (the scripts only compare them)."""
    spelled = {"I": "I4", "Q": "c8"}
    return "".join(spelled.get(code, code) for code in fmt)
