"""Lists: documents by indexing time or by flag, merged over the shards
(:mod:`dedup.index.walks`), in pages; the index's counts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice

import redis

from dedup.index import entries, walks
from dedup.index.access import CLOCK_SKEW, FLAG_READ, Access, store_error
from dedup.index.entries import Batch
from dedup.index.keys import FLAGS
from dedup.index.layout import CONTENT
from dedup.index.records import Record
from dedup.report import IndexCounts, Listed


class Lists(Access):
    """Lists of documents and the index's counts."""

    def list_documents(
        self, flag: str | None, limit: int, since: float | None = None
    ) -> list[Listed]:
        """Documents carrying ``flag`` (all documents when None), newest first.

        With ``since`` (seconds since the epoch), only those indexed at or after it.
        """
        return list(islice(self.scan_documents(flag, since=since, page=min(limit, 500)), limit))

    def scan_documents(
        self, flag: str | None = None, *, since: float | None = None, page: int = 500
    ) -> Iterator[Listed]:
        """The rows of :meth:`list_documents`, newest first, read ``page`` at a time.

        A flag without ``since`` walks the flag's own bitmaps; otherwise the walk goes down
        the records by time and stops past ``since`` (allowing for :data:`CLOCK_SKEW`), so a
        time window bounds the work whatever the size of the index. Positions never change,
        so documents indexed during the walk do not shift it.
        """
        try:
            if flag is not None and since is None:
                for batch in self.walk_flag(flag, page=page):
                    yield from (row for row in self._rows(batch) if flag in row["flags"])
                return
            for batch in self.walk_records(newest_first=True, page=page):
                rows = self._rows(batch)
                for row in rows:
                    if since is not None and row["indexed_at"] < since:
                        continue
                    if flag is None or flag in row["flags"]:
                        yield row
                if since is not None and any(
                    record.indexed_at < since - CLOCK_SKEW for _, record in batch
                ):
                    return
        except redis.RedisError as exc:
            raise store_error(exc) from None

    def walk_records(
        self, *, newest_first: bool, page: int = 500, below: tuple[int, int] | None = None
    ) -> Iterator[list[tuple[int, Record]]]:
        """Every record by indexing time, ``page`` at a time (newest first: from ``below``,
        a page cursor's time and serial, down)."""
        return walks.walk(self.client, self.keys, newest_first=newest_first, page=page, below=below)

    def walk_flag(
        self, flag: str, *, page: int = 500, below: tuple[int, int] | None = None
    ) -> Iterator[list[tuple[int, Record]]]:
        """The records whose version carries ``flag``, newest first, ``page`` at a time (from
        ``below`` down)."""
        return walks.walk(
            self.client,
            self.keys,
            newest_first=True,
            select=walks.flagged(self.keys, flag),
            most=FLAG_READ,
            page=page,
            below=below,
        )

    def flag_bits(
        self, versions: Sequence[tuple[int, Record]], names: Sequence[str]
    ) -> list[set[str]]:
        """The flags among ``names`` that each version's bits carry (one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for serial, _ in versions:
            shard, position = self.keys.shards.of(serial), self.keys.shards.position(serial)
            for name in names:
                pipe.getbit(self.keys.flag(name, shard), position)
        replies = iter(pipe.execute())
        return [{name for name in names if next(replies)} for _ in versions]

    def _rows(self, records: list[tuple[int, Record]]) -> list[Listed]:
        """List rows of these records (one round trip for their flags)."""
        if not records:
            return []
        flags = self.flag_bits(records, FLAGS)
        return [
            {
                "doc_id": record.doc_id,
                "url": record.url,
                "flags": [name for name in FLAGS if name in carried],
                "paragraphs": record.paragraphs,
                "indexed_at": record.indexed_at,
            }
            for (_, record), carried in zip(records, flags, strict=True)
        ]

    def content_matches(self, content_hashes: Sequence[str], limit: int = 20) -> list[list[str]]:
        """Ids of indexed documents with exactly each normalised content, ``limit`` at most each.

        Two round trips for a whole batch: a scraper asks this for every item it scrapes.
        """
        if not content_hashes:
            return []
        try:
            batch = Batch(
                self.keys, self.depths, boilerplate_at=self.settings.boilerplate_min_documents
            )
            tickets = batch.lookups(CONTENT, [int(h, 16) for h in content_hashes], entries.MEMBERS)
            answers = batch.send(self.client)
            lists = [answers[t].serials[: 2 * limit] for t in tickets]
            found = dict(self.records(list(dict.fromkeys(s for serials in lists for s in serials))))
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return [
            sorted([found[s].doc_id for s in serials if s in found][:limit]) for serials in lists
        ]

    def stats(self) -> IndexCounts:
        """Counts of documents, paragraphs and flags, summed over the shards."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for shard in range(self.keys.shards.count):
                pipe.hgetall(self.keys.counters(shard))
                for name in FLAGS:
                    pipe.bitcount(self.keys.flag(name, shard))
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise store_error(exc) from None
        totals = {"documents": 0, "paragraphs": 0, "distinct_paragraphs": 0}
        flags = dict.fromkeys(FLAGS, 0)
        width = 1 + len(FLAGS)
        for at in range(0, len(replies), width):
            counters = replies[at]
            for name in totals:
                totals[name] += int(counters.get(name.encode(), 0))
            for name, count in zip(FLAGS, replies[at + 1 : at + width], strict=True):
                flags[name] += int(count)
        return {
            "documents": totals["documents"],
            "paragraphs": totals["paragraphs"],
            "distinct_paragraphs": totals["distinct_paragraphs"],
            "flags": flags,
        }

    def page_documents(
        self,
        flag: str | None = None,
        *,
        since: float | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> tuple[list[Listed], int | None]:
        """One page of :meth:`list_documents` and where the next one starts.

        ``before`` is the cursor a previous page gave (None: the newest); the second value
        is the one to give for the next page, or None after the last. A cursor names the last
        row's indexing time and serial, which never change, so a page neither repeats nor
        skips documents indexed while a client pages through.
        """
        below = _from_cursor(before) if before is not None else None
        rows: list[Listed] = []
        try:
            pages = (
                self.walk_flag(flag, page=limit, below=below)
                if flag is not None and since is None
                else self.walk_records(newest_first=True, page=limit, below=below)
            )
            for batch in pages:
                for (serial, record), row in zip(batch, self._rows(batch), strict=True):
                    if since is not None and record.indexed_at < since - CLOCK_SKEW:
                        return rows, None
                    if since is not None and row["indexed_at"] < since:
                        continue
                    if flag is None or flag in row["flags"]:
                        rows.append(row)
                        if len(rows) == limit:
                            return rows, _cursor(record.indexed_at, serial)
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return rows, None


def _cursor(indexed_at: float, serial: int) -> int:
    """A page cursor: the last row's indexing time (in milliseconds) and serial, as one
    number."""
    return round(indexed_at * 1000) << 32 | serial


def _from_cursor(cursor: int) -> tuple[int, int]:
    return cursor >> 32, cursor & 0xFFFF_FFFF
