"""Records and intents as stored: a document version's packed record (id, URL, times, reduced
signature, paragraph fingerprints, what only some documents have) and the intent that
announces a version being written or keeps what a committed one still owes
(:mod:`dedup.index.layout` says where they live)."""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from dedup.index.layout import PARAGRAPH_BITS, PIECE_LOW, PIECES, version_digest

# -- records ---------------------------------------------------------------------------------

HEADER_FIELDS = (
    ("version", "B"),
    ("bits", "B"),
    ("paragraphs", "I"),
    ("indexed_at", "d"),
    ("content", "Q"),
    ("id_length", "H"),
    ("url_length", "H"),
    ("signature_length", "H"),
)
"""The record header, field by field (:mod:`struct` codes); the id, URL, signature and
fingerprints follow, and the extra JSON runs to the end. The scripts read it by these names."""
HEADER = struct.Struct("<" + "".join(code for _, code in HEADER_FIELDS))
HEADER_SIZE = HEADER.size
RECORD_VERSION = 1
BIT_DOUBLED = 1
BIT_REPEATS = 2
BIT_NEAR = 4
"""The record keeps, after the fingerprints, each paragraph's words and near-copy data
(:func:`pack_near`)."""
PIECE_BITS = PIECES.precision
"""Bits a record keeps of each piece key: those its entry is named by."""


@dataclass(frozen=True)
class NearParagraph:
    """What a record keeps of one paragraph to find its near copies in other documents."""

    words: int
    bits: bytes
    """What :func:`dedup.index.layout.paragraphs_bits` keeps of its signature; empty when
    the paragraph is not signed."""
    pieces: tuple[int, ...]
    """Entry keys of the pieces it keeps (:func:`dedup.index.layout.piece_key`); empty when
    the paragraph is not signed."""


@dataclass(frozen=True)
class Record:
    """What the store keeps of one indexed document."""

    doc_id: str
    url: str | None
    paragraphs: int
    indexed_at: float
    content: int
    """64-bit hash of the document's normalised content."""
    signature: bytes
    """Reduced signature (:func:`reduce_signature`); empty when the document has none."""
    fingerprints: list[int]
    """Top 48 bits of each paragraph's fingerprint, in paragraph order."""
    doubled_body: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    """Report fields only some documents have: internal repeats, excerpts, fetch time."""
    near: list[NearParagraph] | None = None
    """Each paragraph's near-copy data, when the index keeps it (``near_paragraphs``)."""

    @property
    def has_repeats(self) -> bool:
        """Whether the document repeats paragraphs inside itself."""
        return bool(self.extra.get("internal_repeats"))


def pack(record: Record) -> bytes:
    """The record as stored."""
    doc_id = record.doc_id.encode("utf-8")
    url = (record.url or "").encode("utf-8")
    extra = json.dumps(record.extra, separators=(",", ":")).encode() if record.extra else b""
    fps = b"".join((fp >> 16).to_bytes(6, "little") for fp in record.fingerprints)
    bits = (BIT_DOUBLED if record.doubled_body else 0) | (BIT_REPEATS if record.has_repeats else 0)
    if len(record.fingerprints) != record.paragraphs:
        raise ValueError("a record has one fingerprint per paragraph")
    near = b""
    if record.near is not None:
        if len(record.near) != record.paragraphs:
            raise ValueError("a record keeps near-copy data for every paragraph or none")
        bits |= BIT_NEAR
        near = pack_near(record.near)
    header = HEADER.pack(
        RECORD_VERSION,
        bits,
        record.paragraphs,
        record.indexed_at,
        record.content,
        len(doc_id),
        len(url),
        len(record.signature),
    )
    return header + doc_id + url + record.signature + fps + near + extra


def id_and_signature(data: bytes) -> tuple[str, bytes]:
    """A packed record's document id and reduced signature, the rest left unread (what a
    report needs of the copies and candidates it lists, hundreds at a time)."""
    _, _, _, _, _, n_id, n_url, n_sig = HEADER.unpack_from(data)
    at = HEADER_SIZE + n_id + n_url
    return data[HEADER_SIZE : HEADER_SIZE + n_id].decode("utf-8"), data[at : at + n_sig]


def unpack(data: bytes, *, near: bool = True) -> Record:
    """The inverse of :func:`pack`; with ``near`` false, the near-copy data is stepped over
    and left out (``Record.near`` None), for readers that need only the rest: unpacking it
    is most of the cost of a record."""
    _, bits, paragraphs, indexed_at, content, n_id, n_url, n_sig = HEADER.unpack_from(data)
    at = HEADER_SIZE
    doc_id = data[at : at + n_id].decode("utf-8")
    at += n_id
    url = data[at : at + n_url].decode("utf-8") or None
    at += n_url
    signature = data[at : at + n_sig]
    at += n_sig
    raw = data[at : at + 6 * paragraphs]
    fingerprints = [int.from_bytes(raw[k : k + 6], "little") << 16 for k in range(0, len(raw), 6)]
    at += 6 * paragraphs
    kept: list[NearParagraph] | None = None
    if bits & BIT_NEAR:
        if near:
            kept, at = unpack_near(data, at, paragraphs)
        else:
            at = _near_end(data, at, paragraphs)
    extra = json.loads(data[at:]) if at < len(data) else {}
    return Record(
        doc_id=doc_id,
        url=url,
        paragraphs=paragraphs,
        indexed_at=indexed_at,
        content=content,
        signature=signature,
        fingerprints=fingerprints,
        doubled_body=bool(bits & BIT_DOUBLED),
        extra=extra,
        near=kept,
    )


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = data[at]
        at += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return n, at
        shift += 7


def pack_near(near: list[NearParagraph]) -> bytes:
    """Each paragraph's near-copy data as a record keeps it: the number of pieces every
    signed paragraph keeps (one byte), then per paragraph its word count (a varint, one byte
    under 128 words) and, for a signed one, its :data:`PARAGRAPH_BITS` and its piece keys,
    :data:`PIECE_BITS` each, packed together (11 bytes for two): 28 bytes a signed
    paragraph of under 128 words."""
    kept = {len(p.pieces) for p in near if p.pieces}
    if len(kept) > 1:
        raise ValueError("every signed paragraph of a record keeps as many pieces")
    count = kept.pop() if kept else 0
    width, size = PARAGRAPH_BITS // 8, _keys_size(count)
    out = bytearray((count,))
    for p in near:
        out += _varint(p.words << 1 | bool(p.pieces))
        if p.pieces:
            if len(p.bits) != width:
                raise ValueError(f"a paragraph with pieces keeps {width} bytes of signature bits")
            packed = 0
            for key in p.pieces:
                packed = packed << PIECE_BITS | key >> PIECE_LOW
            out += p.bits
            out += packed.to_bytes(size, "little")
    return bytes(out)


def _keys_size(count: int) -> int:
    return -(-count * PIECE_BITS // 8)


def unpack_near(data: bytes, at: int, paragraphs: int) -> tuple[list[NearParagraph], int]:
    """The inverse of :func:`pack_near`, read from ``at``; returns where it ends too."""
    count = data[at]
    at += 1
    width, size, mask = PARAGRAPH_BITS // 8, _keys_size(count), (1 << PIECE_BITS) - 1
    near = []
    for _ in range(paragraphs):
        head, at = _read_varint(data, at)
        bits = b""
        pieces: tuple[int, ...] = ()
        if head & 1:
            bits = data[at : at + width]
            packed = int.from_bytes(data[at + width : at + width + size], "little")
            at += width + size
            pieces = tuple(
                (packed >> (PIECE_BITS * (count - 1 - k)) & mask) << PIECE_LOW for k in range(count)
            )
        near.append(NearParagraph(head >> 1, bits, pieces))
    return near, at


def _near_end(data: bytes, at: int, paragraphs: int) -> int:
    """Where the near-copy data of :func:`pack_near` starting at ``at`` ends: matched by one
    regular expression over the paragraphs (:func:`_paragraphs_pattern`), in C."""
    found = _paragraphs_pattern(PARAGRAPH_BITS // 8 + _keys_size(data[at]), paragraphs).match(
        data, at + 1
    )
    if found is None:
        raise ValueError("near-copy data cut short")
    return found.end()


@cache
def _paragraphs_pattern(skip: int, paragraphs: int) -> re.Pattern[bytes]:
    """``paragraphs`` paragraphs of :func:`pack_near`: a varint whose lowest bit (that of its
    first byte) says whether ``skip`` bytes of bits and keys follow."""

    def among(values: range) -> bytes:
        return b"[" + b"".join(re.escape(bytes([v])) for v in values) + b"]"

    more = rb"[\x80-\xff]*[\x00-\x7f]"  # the varint's next bytes, after a first >= 0x80
    signed = among(range(1, 128, 2)) + b"|" + among(range(129, 256, 2)) + more
    plain = among(range(0, 128, 2)) + b"|" + among(range(128, 256, 2)) + more
    one = b"(?:(?:" + signed + b")" + b".{%d}|" % skip + plain + b")"
    return re.compile(one + b"{%d}" % paragraphs, re.DOTALL)


# -- intents ---------------------------------------------------------------------------------

WRITING = "w"
"""An intent's kind while its version is being written: the entries may name it already."""
OWED = "o"
"""An intent's kind once its version is committed (or its document deleted): what is owed."""


@dataclass(frozen=True)
class Intent:
    """A write in flight, or the work a committed write still owes, kept in its shard.

    While ``kind`` is :data:`WRITING`, ``record`` is the version being written (its entries
    may already name it; taking it back removes them). Once :data:`OWED`, ``old`` is the
    version it replaced, whose entries are still to be taken out, ``raised`` the flags to set
    on other versions and ``refresh`` the versions whose flags to bring in line with reports.
    """

    kind: str
    token: str
    """Who wrote it: a job's id, so that the job's retry knows its own."""
    at: float
    """When (seconds since the epoch, the writer's clock)."""
    record: Record | None = None
    old_serial: int = 0
    old: Record | None = None
    raised: dict[str, list[int]] = field(default_factory=dict)
    refresh: list[int] = field(default_factory=list)


_INTENT_HEAD = struct.Struct("<II")


def pack_intent(intent: Intent, record: bytes | None = None) -> bytes:
    """The intent as its shard keeps it: a JSON head, then the records it carries
    (``record``: its record packed already, else packed here).

    ``begin.lua`` reads the head's first three fields, in this order, to pick out the intents
    a writer must handle (one it cannot read it answers, as if it had to)."""
    if record is None:
        record = pack(intent.record) if intent.record is not None else b""
    old = pack(intent.old) if intent.old is not None else b""
    fields: dict[str, Any] = {
        "kind": intent.kind,
        "token": intent.token,
        "at": intent.at,
        "old_serial": intent.old_serial,
        "raised": intent.raised,
        "refresh": intent.refresh,
        "record": len(record),
    }
    head = json.dumps(fields, separators=(",", ":")).encode()
    return _INTENT_HEAD.pack(len(head), len(old)) + head + record + old


def unpack_intent(data: bytes) -> Intent:
    """The inverse of :func:`pack_intent`."""
    n_head, n_old = _INTENT_HEAD.unpack_from(data)
    at = _INTENT_HEAD.size
    head = json.loads(data[at : at + n_head])
    at += n_head
    record = data[at : at + head["record"]]
    at += head["record"]
    old = data[at : at + n_old]
    return Intent(
        kind=head["kind"],
        token=head["token"],
        at=float(head["at"]),
        record=unpack(record) if record else None,
        old_serial=int(head["old_serial"]),
        old=unpack(old) if old else None,
        raised={k: [int(s) for s in v] for k, v in head["raised"].items()},
        refresh=[int(s) for s in head["refresh"]],
    )


def record_digest(record: Record) -> bytes:
    """The :func:`version_digest` of a stored version."""
    return version_digest(record.content, record.url)
