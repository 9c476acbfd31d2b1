"""The index's Lua scripts, one typed wrapper each: named arguments in, a named result out.

Each ``.lua`` file opens with the KEYS, ARGV and reply it takes; its method in
:class:`Scripts` is the only code that knows their order, and its reply type the only code
that knows the reply's. A method returns a :class:`Call`, not a reply, so that the store can
send the calls of a whole batch in one round trip (:func:`run`).

ARGV[1] of every script is the :func:`layout_argument`: key prefixes, the record header, how serials
and entries are packed, the signature's bits, thresholds and limits. Those constants are
defined once, in Python (:mod:`dedup.index.layout`, :mod:`dedup.index.keys`, the settings),
and handed to the scripts with every call instead of being written again in Lua.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Generic, NamedTuple, TypeVar

import redis

from dedup.index import layout
from dedup.index.keys import FLAGS, Keys
from dedup.index.layout import BANDS, CONTENT, IDS, PARAGRAPHS, PIECES, Family, Record
from dedup.settings import Settings

MAX_CANDIDATES = 200
"""LSH candidates scored per document at most (a hub of copies does not stall a write)."""
MAX_EXACT = 1000
"""Exact copies listed per document at most."""

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


@dataclass(frozen=True)
class Call(Generic[T]):
    """One script call, ready to send, and how to read its reply."""

    script: Source
    args: tuple[bytes | str | int | float, ...]
    parse: Callable[[Any], T]


def run(client: redis.Redis, calls: Sequence[Call[T]]) -> list[T]:
    """Script calls in one round trip, by digest; when the server has lost its script cache
    (a restart), the scripts are loaded again and the calls sent once more.

    redis-py's own pipelines ask the server whether the scripts exist before every
    execution, a round trip more for each batch: half the cost of a one-document job.
    """
    if not calls:
        return []
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(call.script.sha, 0, *call.args)
        try:
            replies = pipe.execute()
        except redis.exceptions.NoScriptError:
            if attempt:
                raise
            for script in {call.script for call in calls}:
                client.script_load(script.text)
            continue
        return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]
    raise AssertionError("unreachable")


def decoded(value: bytes | None) -> str:
    """A Redis reply as text ('' for none)."""
    return value.decode("utf-8") if value is not None else ""


def entries(family: Family, keys: Iterable[int]) -> bytes:
    """Index entries packed for the scripts: bucket number, then field, for each key."""
    parts = []
    for key in keys:
        bucket, field = family.split(key)
        parts.append(layout.ENTRY_BUCKET.pack(bucket) + field)
    return b"".join(parts)


def id_entry(doc_id: str) -> bytes:
    """The id entry of a document followed by the id, as the scripts resolve it."""
    return entries(IDS, [layout.id_key(doc_id)]) + doc_id.encode("utf-8")


def _packing(packed: struct.Struct) -> dict[str, Any]:
    """A :mod:`struct` packing as the scripts unpack it."""
    return {"format": layout.lua_format(packed.format), "size": packed.size}


def layout_argument(keys: Keys, settings: Settings) -> str:
    """ARGV[1] of every script: what the scripts must know of the layout, as JSON.

    The same for every call of one namespace and settings, so it is encoded once.
    """

    def family(f: Family) -> dict[str, Any]:
        return {"prefix": keys.entry_prefix(f), "width": f.field_bytes}

    return json.dumps(
        {
            "records": keys.record_prefix,
            "records_per_bucket": layout.RECORDS_PER_BUCKET,
            "refresh": layout.REFRESH,
            "header": {
                **_packing(layout.HEADER),
                "fields": [name for name, _ in layout.HEADER_FIELDS],
            },
            "serial": _packing(layout.SERIAL),
            "bucket": _packing(layout.ENTRY_BUCKET),
            "ids": family(IDS),
            "bands": family(BANDS),
            "paras": family(PARAGRAPHS),
            "contents": family(CONTENT),
            "pieces": family(PIECES),
            "counters": keys.counters,
            "flags": {name: keys.flag(name) for name in FLAGS},
            "inline": layout.INLINE,
            "signature": {"wide_bits": layout.WIDE_BITS, "narrow_bits": layout.NARROW_BITS},
            "boilerplate_at": settings.boilerplate_min_documents,
            "near_threshold": settings.near_duplicate_threshold,
            "max_candidates": MAX_CANDIDATES,
            "max_exact": MAX_EXACT,
        },
        separators=(",", ":"),
    )


class Entries(NamedTuple):
    """The index entries of one document version, by family (their 64-bit keys)."""

    bands: Iterable[int]
    paragraphs: Iterable[int]
    content: Iterable[int]
    pieces: Iterable[int] = ()
    """Near-copy pieces of its paragraphs (``near_paragraphs``), each once."""


NO_ENTRIES = Entries((), (), ())
"""The entries of no version (a document not indexed before, or being deleted)."""


class Resolved(NamedTuple):
    """The reply of ``resolve.lua``."""

    serial: int
    """The document's current version (0 when it is not indexed)."""
    record: Record | None
    owed: list[int]
    """Versions whose flags the write of ``serial`` changed and that are not refreshed yet."""
    counts: list[int]
    """Documents holding each paragraph entry asked about, in the order asked."""
    piece_counts: list[int]
    """Documents holding each piece entry asked about, in the order asked."""


class Related(NamedTuple):
    """The reply of ``related.lua``: what the rest of the corpus holds for one version."""

    exact: list[str]
    """Ids of the documents with exactly its content."""
    candidates: list[tuple[str, bytes]]
    """Ids and reduced signatures of the documents sharing an LSH band with it."""
    counts: list[int]
    """Documents holding each paragraph entry asked about, in the order asked."""
    shared: list[list[str]]
    """For each paragraph entry, the other documents holding it while it is not boilerplate."""
    piece_counts: list[int]
    """Documents holding each piece entry asked about, in the order asked."""
    piece_holders: list[list[int]]
    """For each piece entry held by fewer than ``boilerplate_min_documents``, the other
    versions holding it (with a record)."""
    records: dict[int, Record]
    """The records of those versions, by serial."""


class Written(NamedTuple):
    """The reply of ``index.lua``."""

    done: bool
    """False when the document's version was no longer the one expected: nothing written."""
    exact: list[str]
    """Ids of the documents with exactly the new version's content."""
    near: list[tuple[str, float]]
    """Ids and similarities of its near duplicates."""
    affected: list[int]
    """Versions whose flags the write may have changed, to refresh."""
    serial: int
    """The new version's serial (0 after a delete)."""


def _resolved(reply: list[Any]) -> Resolved:
    serial, raw, owed, counts, piece_counts = reply
    return Resolved(
        int(serial),
        layout.unpack(raw) if raw else None,
        layout.unpack_serials(owed) if owed else [],
        [int(n) for n in counts],
        [int(n) for n in piece_counts],
    )


def _related(reply: list[Any]) -> Related:
    exact, candidates, signatures, counts, shared, piece_counts, holders, records = reply
    flat = list(records)
    return Related(
        [decoded(x) for x in exact],
        [(decoded(x), bytes(s)) for x, s in zip(candidates, signatures, strict=True)],
        [int(n) for n in counts],
        [[decoded(m) for m in group] for group in shared],
        [int(n) for n in piece_counts],
        [[int(s) for s in group] for group in holders],
        {int(s): layout.unpack(raw) for s, raw in zip(flat[::2], flat[1::2], strict=True)},
    )


def _contents(reply: list[Any]) -> list[list[str]]:
    return [[decoded(m) for m in members] for members in reply]


def _written(reply: list[Any]) -> Written:
    if reply[0] == b"conflict":
        return Written(False, [], [], [], 0)
    _, exact, near, affected, serial = reply
    flat = [decoded(x) for x in near]
    return Written(
        done=True,
        exact=[decoded(x) for x in exact],
        near=[(doc, float(score)) for doc, score in zip(flat[::2], flat[1::2], strict=True)],
        affected=[int(x) for x in affected],
        serial=int(serial),
    )


class Scripts:
    """The index's scripts for one namespace and settings: a method per script."""

    def __init__(self, keys: Keys, settings: Settings) -> None:
        self.layout = layout_argument(keys, settings)

    def resolve(
        self, doc_id: str, paragraphs: Iterable[int] = (), pieces: Iterable[int] = ()
    ) -> Call[Resolved]:
        """``resolve.lua``: the current version of a document, and how many documents hold
        each of the paragraph entries ``paragraphs`` and piece entries ``pieces`` (keys,
        each once)."""
        return Call(
            source("resolve.lua"),
            (
                self.layout,
                id_entry(doc_id),
                entries(PARAGRAPHS, paragraphs),
                entries(PIECES, pieces),
            ),
            _resolved,
        )

    def related(self, serial: int, of: Entries) -> Call[Related]:
        """``related.lua``: what the rest of the corpus holds for version ``serial``, whose
        entries are ``of`` (paragraph keys each once)."""
        return Call(
            source("related.lua"),
            (
                self.layout,
                serial,
                entries(BANDS, of.bands),
                entries(PARAGRAPHS, of.paragraphs),
                entries(CONTENT, of.content),
                entries(PIECES, of.pieces),
            ),
            _related,
        )

    def contents(self, content_keys: Iterable[int], limit: int) -> Call[list[list[str]]]:
        """``content.lua``: the ids of up to ``limit`` documents with each of these contents."""
        return Call(
            source("content.lua"), (self.layout, limit, entries(CONTENT, content_keys)), _contents
        )

    def write(
        self,
        *,
        doc_id: str,
        expect: int,
        record: Record | None,
        flags: Iterable[str],
        wide: int,
        new: Entries,
        old: Entries,
    ) -> Call[Written]:
        """``index.lua``: replace version ``expect`` (0: none) of document ``doc_id`` by
        ``record`` (None: delete it), unless the document has another version by now.

        Args:
            flags: the flags the new version raises of itself (``doubled_body``...).
            wide: signature values the LSH bands read, which records keep whole.
            new: the new version's entries (paragraph keys each once).
            old: the old version's, as read with its record.
        """
        return Call(
            source("index.lua"),
            (
                self.layout,
                expect,
                layout.pack(record) if record is not None else b"",
                " ".join(flags),
                wide,
                id_entry(doc_id),
                entries(BANDS, new.bands),
                entries(PARAGRAPHS, new.paragraphs),
                entries(CONTENT, new.content),
                entries(BANDS, old.bands),
                entries(PARAGRAPHS, old.paragraphs),
                entries(CONTENT, old.content),
                entries(PIECES, new.pieces),
                entries(PIECES, old.pieces),
            ),
            _written,
        )
