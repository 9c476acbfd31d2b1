"""Duplicate groups read from the index: candidates from the LSH bands, scored on the stored
signatures at the threshold asked for, grouped by :mod:`dedup.pipeline.grouping`.

The index keeps every document's reduced signature, so the threshold is chosen when reading:
nothing is re-indexed. Which documents are walked depends on it:

- at or above the threshold the index was written with, every document in a group carries
  the ``near_duplicate`` or ``exact_duplicate`` flag, so the walk reads the two flag bitmaps
  (an eighth of a byte per document) and the records of the flagged documents only;
- below it, a flag says nothing, and every record is walked.

Memory grows with the documents in groups and their matches, never with the index: one
page of records at a time, a :class:`~dedup.pipeline.grouping.Candidate` and its similarities
per flagged document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import redis
import xxhash

from dedup.errors import NotFoundError
from dedup.index import layout, scripts, versions
from dedup.index import records as records_
from dedup.index.access import CLOCK_SKEW, MAX_CANDIDATES, MAX_EXACT, store_error
from dedup.index.matching import PAGE, flagged_serials, split_matches
from dedup.index.matching import Options as Options  # how groups are formed, for callers
from dedup.index.matching import options_for as options_for
from dedup.index.reader import Reader
from dedup.index.records import Record
from dedup.index.reports import Memo
from dedup.pipeline.grouping import Candidate, groups, rank
from dedup.report import Group, Report

PLACE_LIMIT = 2000
"""Documents a report explores at most to find its own group (a hub of copies stays cheap)."""
PLACE_EXACT = 32
"""Exact copies of a class a report reads to place itself: enough to rank the copies of a
page held a few times; of one held thousands of times, a sample."""
PLACE_CANDIDATES = 2 * PLACE_EXACT
"""LSH candidates of a class a report scores to place itself: of a page held a few times,
all of them; of one held thousands of times, a sample, as of its exact copies. The samples
of a page's entries are read from sets in hash order, which differs from one master of a
cluster to the next: 200 candidates there were three samples' worth, three times the
records read and scored on one server, for the same group."""
PLACE_READS = 20
"""Classes of documents (one content each) whose matches a report reads at most to find its
own group: each read costs a lookup of every band of the class."""


def group_id(canonical: str) -> str:
    """A group's id: named after its canonical copy, so it stays while the canonical does."""
    return "g-" + xxhash.xxh64_hexdigest(canonical.encode("utf-8"))


def candidate_of(record: Record) -> Candidate:
    """What the canonical rules read of a record."""
    return Candidate(
        record.doc_id,
        record.url,
        record.extra.get("fetched_at"),
        record.indexed_at,
        int(record.extra.get("words", 0)),
    )


def _records_by_id(reads: Reader, ids: Sequence[str]) -> list[tuple[int, Record]]:
    """The current records of these documents (those deleted meanwhile left out)."""
    calls = [versions.current(reads.keys, reads.depths, layout.id_entry(doc)) for doc in ids]
    current = scripts.run(reads.client, calls)
    return reads.records([serial for serial in current if serial], near=False)


class Grouping:
    """The documents met so far and their similarities, grown page by page.

    Documents with exactly the same content are one class: the matches of a class are read
    once, through its first document, and its other documents go wherever that one goes
    (:func:`dedup.pipeline.grouping.groups`' ``copies``). Ten thousand copies of a page cost
    one read of matches, not ten thousand.
    """

    def __init__(
        self,
        reads: Reader,
        options: Options,
        most_read: int | None = None,
        exact: int = MAX_EXACT,
        keep_records: bool = False,
        memo: Memo | None = None,
        most_near: int = MAX_CANDIDATES,
    ) -> None:
        self.reads = reads
        self.memo = memo
        """What this reading read already (:class:`dedup.index.reports.Memo`), for a
        placement's few round trips; None for a walk of the whole index, which would keep
        every answer."""
        self.options = options
        self.most_read = most_read
        """Classes whose matches are read at most (None: all)."""
        self.exact = exact
        """Exact copies named at most by each read of matches."""
        self.most_near = most_near
        """LSH candidates scored at most by each read of matches."""
        self.candidates: dict[str, Candidate] = {}
        self.content: dict[str, int] = {}
        """Each document's content hash: its class."""
        self.read: set[int] = set()
        """The classes whose matches were read."""
        self.similar: dict[str, dict[str, float]] = {}
        """Similarities of near duplicates (of different contents), both ways."""
        self.matched: set[str] = set()
        """Documents named by matches (exact copies among them)."""
        self.signatures: dict[str, bytes] = {}
        """Each document's reduced signature, to score two never compared
        (:func:`dedup.pipeline.grouping.groups`' ``score``)."""
        self.packed: dict[str, tuple[int, bytes]] | None = {} if keep_records else None
        """With ``keep_records``, the serial and packed record of the documents named by
        matches, read with them and not read again by id: a record that is there is its
        document's current version (a commit takes the old one's out)."""

    def add(self, records: Sequence[tuple[int, Record]]) -> None:
        """Know these records, and read the matches of the classes not read yet (one round
        trip per :data:`PAGE`)."""
        fresh = []
        for serial, record in records:
            self.know(record)
            if record.content not in self.read and (
                self.most_read is None or len(self.read) < self.most_read
            ):
                self.read.add(record.content)
                fresh.append((serial, record))
        for first in range(0, len(fresh), PAGE):
            page = fresh[first : first + PAGE]
            for (_, record), (exact, near) in zip(
                page,
                split_matches(
                    self.reads,
                    page,
                    self.options,
                    self.exact,
                    self.packed,
                    self.memo,
                    self.most_near,
                ),
                strict=True,
            ):
                self.matched.update(doc for doc, _ in exact)
                mine = self.similar.setdefault(record.doc_id, {})
                for doc, score in near:
                    self.matched.add(doc)
                    mine[doc] = score
                    self.similar.setdefault(doc, {})[record.doc_id] = score

    def know(self, record: Record) -> None:
        """Know a document by its record."""
        self.candidates[record.doc_id] = candidate_of(record)
        self.content[record.doc_id] = record.content
        self.signatures[record.doc_id] = record.signature

    def score(self, first: str, second: str) -> float | None:
        """The similarity of two documents known, from their signatures (None when either
        has none)."""
        a, b = self.signatures.get(first, b""), self.signatures.get(second, b"")
        if not a or len(a) != len(b):
            return None
        return layout.similarity(a, b, self.reads.wide)

    def unknown(self) -> list[str]:
        """Documents matched but not read yet."""
        return sorted(doc for doc in self.matched if doc not in self.candidates)

    def complete(self, *, expand: bool, limit: int | None = None) -> None:
        """Read the documents matched but not read: their records, and with ``expand`` the
        matches of their classes, until nothing new turns up (or ``limit`` documents are
        known)."""
        while True:
            missing = self.unknown()
            if limit is not None:
                missing = missing[: max(0, limit - len(self.candidates))]
            if not missing:
                return
            packed = self.packed if self.packed is not None else {}
            unread = [doc for doc in missing if doc not in packed]
            found = {doc: packed.pop(doc) for doc in missing if doc in packed}
            read = {
                doc: (serial, records_.unpack(raw, near=False))
                for doc, (serial, raw) in found.items()
            }
            for first in range(0, len(unread), PAGE):
                for serial, record in _records_by_id(self.reads, unread[first : first + PAGE]):
                    read[record.doc_id] = serial, record
            ordered = [read[doc] for doc in missing if doc in read]
            for first in range(0, len(ordered), PAGE):
                records = ordered[first : first + PAGE]
                if expand:
                    self.add(records)
                else:
                    for _, record in records:
                        self.know(record)
            for doc in missing:
                if doc not in self.candidates:  # deleted since it was matched
                    self.matched.discard(doc)
                    for other in self.similar.pop(doc, {}):
                        self.similar.get(other, {}).pop(doc, None)

    def groups(self) -> Iterator[Group]:
        """The groups of the documents met, canonicals in rank order."""
        options = self.options
        classes: dict[int, list[Candidate]] = {}
        for doc, candidate in self.candidates.items():
            classes.setdefault(self.content[doc], []).append(candidate)
        head: dict[int, str] = {}
        copies: dict[str, list[str]] = {}
        for content, alike in classes.items():
            alike.sort(key=lambda c: rank(c, options.rule, options.hosts))
            head[content] = alike[0].doc_id
            copies[alike[0].doc_id] = [c.doc_id for c in alike[1:]]
        similar: dict[str, dict[str, float]] = {}
        class_of = self.content
        for doc, others in self.similar.items():
            ours = class_of.get(doc)
            if ours is None:
                continue
            mine = head[ours]
            row = similar.setdefault(mine, {})
            for other, score in others.items():
                theirs_content = class_of.get(other)
                if theirs_content is None or theirs_content == ours:
                    continue
                theirs = head[theirs_content]
                if score > row.get(theirs, 0.0):  # both ways: the best of the two classes' pairs
                    row[theirs] = score
                    similar.setdefault(theirs, {})[mine] = score
        heads = [self.candidates[doc] for doc in head.values()]
        for canonical, members in groups(
            heads, similar, options.threshold, options.rule, options.hosts, copies, self.score
        ):
            yield {
                "group": group_id(canonical),
                "canonical": canonical,
                "members": [
                    {"doc_id": doc, "similarity": round(score, 3)} for doc, score in members
                ],
            }


def read_groups(
    reads: Reader,
    options: Options,
    *,
    since: float | None = None,
    indexed_threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Group]:
    """Every duplicate group of the index (with ``since``: those with a member indexed since
    then, with all their members).

    Args:
        indexed_threshold: the threshold the index's flags were raised at (default: the
            reader's settings); a lower ``options.threshold`` walks every record.
        progress: called with (documents read, documents to read) after each page.
    """
    try:
        yield from _read_groups(reads, options, since, indexed_threshold, progress)
    except redis.RedisError as exc:
        raise store_error(exc) from None


def _read_groups(
    reads: Reader,
    options: Options,
    since: float | None,
    indexed_threshold: float | None,
    progress: Callable[[int, int], None] | None,
) -> Iterator[Group]:
    written = (
        reads.settings.near_duplicate_threshold if indexed_threshold is None else indexed_threshold
    )
    flags = ("exact_duplicate",) if options.exact_only else ("near_duplicate", "exact_duplicate")
    flagged_only = options.exact_only or options.threshold >= written
    grouping = Grouping(reads, options)
    done = 0
    if flagged_only and since is None:
        serials = flagged_serials(reads, flags)
        for first in range(0, len(serials), PAGE * 5):
            records = reads.records(serials[first : first + PAGE * 5])
            grouping.add(records)
            done += len(records)
            if progress is not None:
                progress(done, len(serials))
    else:
        total = reads.stats()["documents"]
        flag_set = set(flags)
        for batch in reads.walk_records(newest_first=since is not None):
            if since is not None:
                fresh = [(s, r) for s, r in batch if r.indexed_at >= since]
            else:
                fresh = batch
            if flagged_only:
                fresh = _with_flags(reads, fresh, flag_set)
            grouping.add(fresh)
            done += len(batch)
            if progress is not None:
                progress(min(done, total), total)
            if since is not None and any(r.indexed_at < since - CLOCK_SKEW for _, r in batch):
                break
    # Members outside the walk: matched documents not flagged (stale flags) or indexed before
    # ``since``; with ``since`` the groups of those older members are followed too.
    grouping.complete(expand=since is not None)
    for group in grouping.groups():
        if since is None or any(
            grouping.candidates[m["doc_id"]].indexed_at >= since for m in group["members"]
        ):
            yield group


def _with_flags(
    reads: Reader, records: list[tuple[int, Record]], flags: set[str]
) -> list[tuple[int, Record]]:
    """The records whose version carries one of ``flags`` (one round trip)."""
    if not records:
        return []
    carried = reads.flag_bits(records, sorted(flags))
    return [r for r, found in zip(records, carried, strict=True) if found]


def place(
    reads: Reader, serial: int, record: Record, options: Options, memo: Memo | None = None
) -> Group | None:
    """The group a document belongs to, found from its own matches outwards (at most
    :data:`PLACE_LIMIT` documents), or None when it is in none. ``memo``: what the reading
    read already (its report's); kept for the placement's own round trips besides."""
    grouping = Grouping(
        reads,
        options,
        most_read=PLACE_READS,
        exact=PLACE_EXACT,
        keep_records=True,
        most_near=PLACE_CANDIDATES,
        memo=memo if memo is not None else Memo(),
    )
    grouping.add([(serial, record)])
    grouping.complete(expand=True, limit=PLACE_LIMIT)
    for group in grouping.groups():
        if any(m["doc_id"] == record.doc_id for m in group["members"]):
            return group
    return None


def placed(reads: Reader, report: Report, options: Options | None = None) -> Report:
    """The report with its ``group`` and ``canonical`` filled in."""
    try:
        serial, record = reads.resolve(report["doc_id"])
        if record is None:
            raise NotFoundError(f"no document with id {report['doc_id']!r}")
        group = place(reads, serial, record, options or options_for(reads))
    except redis.RedisError as exc:
        raise store_error(exc) from None
    if group is None:
        return report
    return {**report, "group": group["group"], "canonical": group["canonical"]}
