"""Documents alike at a threshold, read from the index: the LSH candidates of stored versions
re-scored on their signatures (the threshold is the reader's: nothing is re-indexed), for
``list`` at a threshold, the Scrapy pipeline's check of a page not indexed yet, and the
duplicate groups of :mod:`dedup.index.groups`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import redis

from dedup.index.access import CLOCK_SKEW, MAX_CANDIDATES, MAX_EXACT, store_error
from dedup.index.keys import FLAGS
from dedup.index.layout import similarities
from dedup.index.reader import Reader
from dedup.index.records import Record
from dedup.index.reports import Memo
from dedup.pipeline.grouping import parse_hosts
from dedup.report import Listed

PAGE = 200
"""Documents whose candidates are read per round trip."""


@dataclass(frozen=True)
class Options:
    """How groups are formed: the threshold in force, the canonical rule, exact copies only."""

    threshold: float
    rule: str = "earliest"
    hosts: tuple[str, ...] = ()
    exact_only: bool = False


def options_for(reads: Reader, *, exact_only: bool = False) -> Options:
    """The options of the reader's settings (threshold, canonical rule and hosts)."""
    settings = reads.settings
    return Options(
        settings.near_duplicate_threshold,
        settings.canonical_rule,
        parse_hosts(settings.canonical_hosts),
        exact_only,
    )


def matches(
    reads: Reader, records: Sequence[tuple[int, Record]], options: Options
) -> list[list[tuple[str, float]]]:
    """For each record, the documents at least ``options.threshold`` alike (exact copies at
    1.0), in one round trip: the LSH candidates re-scored on their stored signatures."""
    return [exact + near for exact, near in split_matches(reads, records, options)]


def split_matches(
    reads: Reader,
    records: Sequence[tuple[int, Record]],
    options: Options,
    exact: int = MAX_EXACT,
    read: dict[str, tuple[int, bytes]] | None = None,
    memo: Memo | None = None,
    most_near: int = MAX_CANDIDATES,
) -> list[tuple[list[tuple[str, float]], list[tuple[str, float]]]]:
    """:func:`matches`, exact copies and near duplicates apart (at most ``exact`` exact
    copies named for each, and ``most_near`` LSH candidates scored). ``read``, when given,
    gains the serial and packed record of every document named, by id; ``memo`` is what the
    reading read already (:class:`dedup.index.reports.Memo`)."""
    found = []
    related_ = (
        reads.related(
            records,
            near=not options.exact_only,
            paragraphs=False,
            most_exact=exact,
            memo=memo,
            most_near=most_near,
        )
        if records
        else []
    )
    for (_, record), related in zip(records, related_, strict=True):
        if read is not None:
            read.update(related.packed)
        sig = record.signature
        alike = [
            (doc, packed) for doc, packed in related.candidates if sig and len(packed) == len(sig)
        ]
        scores = similarities(sig, [packed for _, packed in alike], reads.wide)
        near = [
            (doc, score)
            for (doc, _), score in zip(alike, scores, strict=True)
            if score >= options.threshold
        ]
        found.append(([(doc, 1.0) for doc in related.exact], near))
    return found


def flagged_serials(reads: Reader, flags: Iterable[str]) -> list[int]:
    """Serials carrying any of these flags, oldest first by serial (every shard's bitmaps read
    whole: 125 kB each over the shards at a million documents)."""
    names = list(flags)
    pipe = reads.client.pipeline(transaction=False)
    shards = reads.keys.shards
    for shard in range(shards.count):
        for flag in names:
            pipe.get(reads.keys.flag(flag, shard))
    replies = cast("list[bytes | None]", pipe.execute())
    serials: list[int] = []
    for shard in range(shards.count):
        raws = [raw or b"" for raw in replies[shard * len(names) : (shard + 1) * len(names)]]
        width = max(map(len, raws), default=0)
        bits = 0
        for raw in raws:
            bits |= int.from_bytes(raw.ljust(width, b"\0"), "big")
        # bit 0 of a bitmap is the highest bit of its first byte
        data = bits.to_bytes(width, "big")
        for index, byte in enumerate(data):
            if byte:
                serials.extend(
                    shards.serial(8 * index + k, shard) for k in range(8) if byte >> (7 - k) & 1
                )
    return sorted(serials)


def listed_at(
    reads: Reader,
    flag: str | None,
    limit: int,
    since: float | None = None,
    indexed_threshold: float | None = None,
) -> list[Listed]:
    """``list`` at the reader's threshold: the ``near_duplicate`` flag of each row re-scored
    from the stored signatures, the other flags as stored; newest first."""
    written = (
        reads.settings.near_duplicate_threshold if indexed_threshold is None else indexed_threshold
    )
    try:
        if (
            flag == "near_duplicate"
            and since is None
            and reads.settings.near_duplicate_threshold >= written
        ):
            serials = flagged_serials(reads, [flag])[::-1]
            pages: Iterable[list[tuple[int, Record]]] = (
                reads.records(serials[first : first + PAGE])
                for first in range(0, len(serials), PAGE)
            )
        else:
            pages = reads.walk_records(newest_first=True)
        out: list[Listed] = []
        for batch in pages:
            fresh = [(s, r) for s, r in batch if since is None or r.indexed_at >= since]
            for row in _rows_at(reads, fresh):
                if flag is None or flag in row["flags"]:
                    out.append(row)
                    if len(out) >= limit:
                        return out
            if since is not None and any(r.indexed_at < since - CLOCK_SKEW for _, r in batch):
                break
        return out
    except redis.RedisError as exc:
        raise store_error(exc) from None


def _rows_at(reads: Reader, records: list[tuple[int, Record]]) -> list[Listed]:
    """List rows of these records, ``near_duplicate`` re-scored (two round trips)."""
    if not records:
        return []
    stored = reads.flag_bits(records, FLAGS)
    options = Options(reads.settings.near_duplicate_threshold)
    rows: list[Listed] = []
    found = split_matches(reads, records, options)
    for (_, record), flags, (_, near) in zip(records, stored, found, strict=True):
        flags.discard("near_duplicate")
        if near:
            flags.add("near_duplicate")
        rows.append(
            {
                "doc_id": record.doc_id,
                "url": record.url,
                "flags": [name for name in FLAGS if name in flags],
                "paragraphs": record.paragraphs,
                "indexed_at": record.indexed_at,
            }
        )
    return rows


def page_matches(
    reads: Reader, signature: bytes, content_hash: str, threshold: float
) -> list[tuple[str, float]]:
    """The indexed documents a page not indexed yet duplicates: exact copies (at 1.0) and
    those at least ``threshold`` alike, in two round trips (the Scrapy pipeline asks this for
    every item)."""
    record = Record("", None, 0, 0.0, int(content_hash, 16), signature, [])
    try:
        [(exact, near)] = split_matches(reads, [(0, record)], Options(threshold))
    except redis.RedisError as exc:
        raise store_error(exc) from None
    return exact + sorted(near, key=lambda m: (-m[1], m[0]))
