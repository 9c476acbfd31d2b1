"""Reports: what the rest of the corpus holds for a document version, read in two round trips
whatever the size of the index (the holders of its entries in one script call per shard,
their records in one more), and the report built from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import NamedTuple, cast

from dedup.index import layout, records, scripts
from dedup.index.access import MAX_CANDIDATES, MAX_EXACT, Access
from dedup.index.entries import FEW, MEMBERS, Asked, Batch, Held
from dedup.index.layout import BANDS, CONTENT, PARAGRAPHS, PIECES
from dedup.index.records import Record
from dedup.index.versions import record as record_call
from dedup.report import NearCopy, Report, full_report, stored_from_record


class Related(NamedTuple):
    """What the rest of the corpus holds for one version."""

    exact: list[str]
    """Ids of the documents with exactly its content (some of them, when very many)."""
    exact_total: int
    """How many documents have exactly its content."""
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
    packed: dict[str, tuple[int, bytes]]
    """The serial and packed record of each document named in ``exact`` and
    ``candidates``, by id: what a reader following matches outwards need not read again."""


@dataclass
class Memo:
    """What the round trips of one reading have read already, not asked again by the next:
    the report of a page copied thousands of times, placing itself in its group, looks up
    the entries of the page and of its near copies (mostly the same entries) and the records
    of their holders (mostly the same sample) three times over. Kept for one reading only,
    which sees the index as its round trips found it."""

    held: dict[Asked, Held] = field(default_factory=dict)
    """Answers of entry lookups."""
    raws: dict[int, bytes | None] = field(default_factory=dict)
    """Packed records by serial (None: no record)."""
    named: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    """The id and reduced signature of those records."""
    serials: dict[bytes, list[int]] = field(default_factory=dict)
    """Serials unpacked from the lookups' answers, by the answer packed."""


class Reports(Access):
    """The reports of documents with the duplicates known now."""

    def related(
        self,
        versions: Sequence[tuple[int, Record]],
        *,
        near: bool = True,
        paragraphs: bool = True,
        most_exact: int = MAX_EXACT,
        memo: Memo | None = None,
        most_near: int = MAX_CANDIDATES,
    ) -> list[Related]:
        """What the rest of the corpus holds for each version, in two round trips: the
        holders of its entries, then their records. ``near=False`` leaves LSH candidates
        out, ``paragraphs=False`` the paragraphs and pieces (what duplicate groups need not);
        ``most_exact`` is how many exact copies are named at most (all are counted); with
        ``memo``, what it holds is not read again and what is read is added to it."""
        batch = Batch(
            self.keys,
            self.depths,
            boilerplate_at=self.settings.boilerplate_min_documents,
            few=self.settings.boilerplate_min_documents,
            memo=None if memo is None else memo.held,
        )
        asked = []
        for _, record in versions:
            entries = self.entries(record)
            asked.append(
                (
                    batch.lookups(CONTENT, entries.content, MEMBERS, sets=True),
                    batch.lookups(BANDS, entries.bands, MEMBERS, sets=True) if near else [],
                    (
                        batch.lookups(PARAGRAPHS, entries.paragraphs, FEW, sets=True)
                        if paragraphs
                        else []
                    ),
                    batch.lookups(PIECES, entries.pieces, FEW, sets=True) if paragraphs else [],
                )
            )
        answers = batch.send(self.client) if len(batch) else []
        wanted: dict[int, None] = {}
        lists = []
        limit = self.settings.boilerplate_min_documents
        unpacked = {} if memo is None else memo.serials

        def held_by(ticket: int) -> list[int]:
            # the answers of a page's entries are the same sample, asked by many documents
            packed = answers[ticket].packed
            found = unpacked.get(packed)
            if found is None:
                found = unpacked[packed] = scripts.serials(packed)
            return found

        for (serial, _), (content, bands, paras, pieces) in zip(versions, asked, strict=True):
            copies = [s for t in content for s in held_by(t) if s != serial]
            seen = set(copies) | {serial}
            exact = list(dict.fromkeys(copies))[: 2 * most_exact]
            alike = dict.fromkeys(chain.from_iterable(held_by(t) for t in bands))
            near_ = [s for s in alike if s not in seen][: 2 * most_near]
            shared = [
                [s for s in held_by(t) if s != serial] if 2 <= answers[t].count < limit else []
                for t in paras
            ]
            holding = [
                [s for s in held_by(t) if s != serial] if 2 <= answers[t].count < limit else []
                for t in pieces
            ]
            for serials in (exact, near_, *shared, *holding):
                wanted.update((s, None) for s in serials)
            # every holder of the content entry but this version (a sample of them is read)
            total = max((answers[t].count - 1 for t in content), default=0)
            lists.append((exact, near_, paras, shared, pieces, holding, total))
        serials = list(wanted)
        raws = self._raws(serials, memo)
        named = {} if memo is None else memo.named
        found = {}
        for s, raw in zip(serials, raws, strict=True):
            if raw:
                known = named.get(s)
                if known is None:
                    known = named[s] = records.id_and_signature(raw)
                found[s] = known
        raw_of = dict(zip(serials, raws, strict=True))
        out = []
        for exact, near_, paras, shared, pieces, holding, total in lists:
            held = [s for s in exact if s in found][:most_exact]
            candidates = [s for s in near_ if s in found][:most_near]
            holders = [[s for s in serials if s in found] for serials in holding]
            out.append(
                Related(
                    exact=[found[s][0] for s in held],
                    exact_total=total,
                    candidates=[found[s] for s in candidates],
                    counts=[answers[t].count for t in paras],
                    shared=[
                        [found[s][0] for s in serials if s in found][:limit] for serials in shared
                    ],
                    piece_counts=[answers[t].count for t in pieces],
                    piece_holders=holders,
                    records={
                        s: records.unpack(cast("bytes", raw_of[s]))
                        for s in dict.fromkeys(s for serials in holders for s in serials)
                    },
                    packed={
                        found[s][0]: (s, cast("bytes", raw_of[s])) for s in (*held, *candidates)
                    },
                )
            )
        return out

    def _raws(self, serials: list[int], memo: Memo | None) -> list[bytes | None]:
        """The packed records of these serials (None where there is none), those in
        ``memo`` from there."""
        if memo is None:
            return scripts.run(self.client, [record_call(self.keys, s) for s in serials])
        known = memo.raws
        unread = [s for s in serials if s not in known]
        if unread:
            read = scripts.run(self.client, [record_call(self.keys, s) for s in unread])
            known.update(zip(unread, read, strict=True))
        return [known[s] for s in serials]

    def report_of(
        self, serial: int, record: Record, limit: int | None = None, memo: Memo | None = None
    ) -> Report:
        """The report of the document version ``serial``, whose record is ``record``; its
        lists of duplicates cut at ``limit``, best first."""
        return self.reports_of([(serial, record)], limit, memo)[0]

    def reports_of(
        self,
        versions: Sequence[tuple[int, Record]],
        limit: int | None = None,
        memo: Memo | None = None,
    ) -> list[Report]:
        """The reports of these versions, read together."""
        related = self.related(versions, memo=memo)
        return [
            self._report(serial, record, found, limit)
            for (serial, record), found in zip(versions, related, strict=True)
        ]

    def _report(
        self, serial: int, record: Record, related: Related, limit: int | None = None
    ) -> Report:
        distinct = list(dict.fromkeys(record.fingerprints))
        threshold = self.settings.boilerplate_min_documents
        alike = [
            (o, packed) for o, packed in related.candidates if len(packed) == len(record.signature)
        ]
        scores = layout.similarities(record.signature, [packed for _, packed in alike], self.wide)
        near = [
            (other, score)
            for (other, _), score in zip(alike, scores, strict=True)
            if score >= self.settings.near_duplicate_threshold
        ]
        counts = dict(zip(distinct, related.counts, strict=True))
        shared = {
            fp: sorted(held) for fp, held in zip(distinct, related.shared, strict=True) if held
        }
        near_counts, copies, words = None, None, None
        if record.near is not None:
            near_counts, copies = self._near_copies(record, related)
            words = [p.words for p in record.near]
        return full_report(
            stored_from_record(record),
            fingerprints=record.fingerprints,
            counts=counts,
            exact=sorted(related.exact),
            near=sorted(near, key=lambda x: (-x[1], x[0])),
            shared=shared,
            boilerplate_min=threshold,
            indexed_at=record.indexed_at,
            near_counts=near_counts,
            copies=copies,
            words=words,
            exact_total=related.exact_total,
            limit=limit,
        )

    def _near_copies(
        self, record: Record, related: Related
    ) -> tuple[list[int], dict[int, list[NearCopy]]]:
        """Documents holding a piece of each paragraph, and each paragraph's copies: the
        paragraphs of other documents whose estimated similarity is at least
        ``repeat_threshold`` (the best one per document), found by a piece they share or
        next to such a pair on both sides (:func:`_runs`). Boilerplate paragraphs, whose
        pieces many documents hold, have none."""
        near = record.near or []
        distinct = list(dict.fromkeys(k for p in near for k in p.pieces))
        count = dict(zip(distinct, related.piece_counts, strict=True))
        holders = dict(zip(distinct, related.piece_holders, strict=True))
        near_counts = [max((count[k] for k in p.pieces), default=0) for p in near]
        open_ = [n < self.settings.boilerplate_min_documents for n in near_counts]
        found: dict[int, dict[int, tuple[float, int]]] = {}
        """Per candidate version, my paragraph -> (score, its paragraph)."""
        where: dict[int, dict[int, list[int]]] = {}
        """Per candidate version, its paragraphs by piece (a page copied whole holds every
        piece of hundreds of paragraphs: each is looked up, not compared with each)."""
        for i, mine in enumerate(near):
            if not open_[i]:
                continue
            for serial in sorted({s for k in mine.pieces for s in holders[k]}):
                other = related.records[serial]
                if serial not in where:
                    where[serial] = {}
                    for j, theirs in enumerate(other.near or []):
                        for k in theirs.pieces:
                            where[serial].setdefault(k, []).append(j)
                sharing = {j for k in mine.pieces for j in where[serial].get(k, ())}
                best = max(((self._alike(record, i, other, j), j) for j in sharing), default=None)
                if best is not None and best[0] >= self.settings.repeat_threshold:
                    found.setdefault(serial, {})[i] = best
        copies: dict[int, list[NearCopy]] = {}
        for serial, pairs in found.items():
            other = related.records[serial]
            for i, (score, j) in self._runs(record, other, pairs, open_).items():
                copies.setdefault(i, []).append(
                    {
                        "doc_id": other.doc_id,
                        "paragraph": j,
                        "similarity": round(score, 3),
                        "exact": other.fingerprints[j] == record.fingerprints[i],
                    }
                )
        for rows in copies.values():
            rows.sort(key=lambda r: (-r["similarity"], r["doc_id"]))
        return near_counts, copies

    @staticmethod
    def _alike(record: Record, i: int, other: Record, j: int) -> float:
        """Estimated similarity of my paragraph ``i`` and ``other``'s ``j`` (1.0 when equal;
        0.0 when either is too short to be signed)."""
        mine, theirs = (record.near or [])[i], (other.near or [])[j]
        if not mine.bits or not theirs.bits:
            return 0.0
        if other.fingerprints[j] == record.fingerprints[i]:
            return 1.0
        return layout.paragraph_similarity(mine.bits, theirs.bits)

    def _runs(
        self,
        record: Record,
        other: Record,
        pairs: dict[int, tuple[float, int]],
        open_: list[bool],
    ) -> dict[int, tuple[float, int]]:
        """The pairs found by a shared piece, and the runs they start: a paragraph next to a
        found one (the one before or after it on both sides) that is alike too is a copy as
        well, and so on while they are. An excerpt is consecutive paragraphs copied
        together; an edited one shares a kept piece in most of its paragraphs, not in each.
        Only neighbours of a pair are compared, so no unrelated paragraph is linked for
        sharing words alone."""
        out = dict(pairs)
        mine, theirs = len(record.near or []), len(other.near or [])
        for i, (_, j) in pairs.items():
            for step in (-1, 1):
                a, b = i + step, j + step
                while 0 <= a < mine and 0 <= b < theirs and open_[a] and a not in out:
                    score = self._alike(record, a, other, b)
                    if score < self.settings.repeat_threshold:
                        break
                    out[a] = (score, b)
                    a, b = a + step, b + step
        return out
