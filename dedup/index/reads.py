"""Reading the index: reports, lists and counts (:class:`dedup.index.store.Store` adds the writes).

A report is read in a few round trips whatever the size of the index: the document's id entry
names its current version, its record follows, the holders of its entries (LSH bands,
paragraphs, exact content, near-copy pieces) are asked in one script call per shard, and
their records in one more. Lists merge the shards' records by indexing time
(:mod:`dedup.index.walks`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from dedup.errors import NotFoundError
from dedup.index import groups
from dedup.index.access import store_error
from dedup.index.reader import Reader
from dedup.index.records import Record
from dedup.index.reports import Memo
from dedup.report import Report


class Reads(Reader):
    """The read side of the index in one Redis or a Redis Cluster, under one namespace: what
    :class:`dedup.index.reader.Reader` reads, and each report with its duplicate group."""

    def report(self, doc_id: str, limit: int | None = None) -> Report:
        """The report of one document with the duplicates known now; its lists of
        duplicates cut at ``limit``, best first (their totals count them all)."""
        try:
            serial, record = self.resolve(doc_id)
            if record is None:
                raise NotFoundError(
                    f"no document with id {doc_id!r} in namespace {self.keys.namespace!r}"
                )
            with collector_held():
                memo = Memo()  # the report and its placement read many of the same entries
                report = self.report_of(serial, record, limit, memo)
                return self.grouped(serial, record, report, memo)
        except redis.RedisError as exc:
            raise store_error(exc) from None

    def grouped(
        self, serial: int, record: Record, report: Report, memo: Memo | None = None
    ) -> Report:
        """The report with the duplicate group of the document and its canonical copy, at the
        settings' threshold and canonical rule (:mod:`dedup.index.groups`); ``memo``, what
        the report's reading read already."""
        group = groups.place(self, serial, record, groups.options_for(self), memo)
        if group is None:
            return report
        return {**report, "group": group["group"], "canonical": group["canonical"]}


@contextmanager
def collector_held() -> Iterator[None]:
    """Python's cyclic garbage collector held off meanwhile, and left as it was after.

    The report of a page copied thousands of times keeps tens of thousands of small objects
    (answers, records, similarities) alive until it returns, and makes no reference cycles:
    reference counting frees them all. Left on, the collector scanned them and the whole
    heap many times over during one report (a full pass is tens of milliseconds), which made
    one report in ten on a cluster twice as slow as the others. It runs after, as before.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
