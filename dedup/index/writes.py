"""Steps 1 to 3 of a batch's write (:mod:`dedup.index.store`): count who holds each new
version's paragraphs (its boilerplate, which its signature leaves out), announce it with its
record, add its entries and learn who held them, and score the candidates found."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

from dedup.index import layout, records, scripts, versions
from dedup.index.access import MAX_CANDIDATES, MAX_EXACT, NO_ENTRIES, record_or_intent
from dedup.index.entries import Batch, Held
from dedup.index.layout import PARAGRAPHS, PIECES, Family
from dedup.index.owed import Owed
from dedup.index.plan import ADDED, COUNT, Indexed, Pass, Plan
from dedup.index.records import Intent, Record
from dedup.pipeline.analysis import Analysis
from dedup.report import record_extra
from dedup.servers.connection import IndexClient
from dedup.settings import Settings

ANNOUNCED_PER_CALL = 10
"""Documents one call of the announcing script takes at most (it adds their entries of its
shard too: every entry, on one server)."""


class Writes(Owed):
    """The steps before a batch's commit."""

    def __init__(
        self, client: IndexClient, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, settings, clock)
        self._at = settings.boilerplate_min_documents

    def _record(self, analysis: Analysis, plan: Plan, boilerplate: frozenset[int]) -> Record:
        """The record of a new version; its signature leaves out ``boilerplate``."""
        sig = analysis.document_signature(boilerplate)
        near = None
        if analysis.pieces is not None:
            bits = layout.paragraphs_bits(analysis.paragraph_signatures)
            near = [
                records.NearParagraph(words, bits[i] if keys else b"", keys)
                for i, (words, keys) in enumerate(
                    zip(analysis.word_counts, plan.pieces, strict=True)
                )
            ]
        return Record(
            doc_id=analysis.document.doc_id,
            url=analysis.document.url,
            paragraphs=len(analysis.paragraphs),
            indexed_at=plan.indexed_at,
            content=int(analysis.content_hash, 16),
            signature=layout.reduce_signature(sig, self.wide) if sig is not None else b"",
            fingerprints=plan.keys,
            doubled_body=analysis.repeats.doubled_body,
            extra=record_extra(analysis),
            near=near,
        )

    def _peek(self, plans: dict[int, Plan], run: Pass) -> dict[int, int]:
        """Step 1, reading: each document's current version, the intents of its shard that
        this writer must handle (finished or taken back here: its own, those a dead writer
        left, what the versions about to be replaced owe), and how many documents held each
        new paragraph and piece before the batch, which this returns. A document whose
        version is indexed already is done."""
        batch = self._batch()
        paragraphs = list(dict.fromkeys(k for p in plans.values() for k in p.keys))
        pieces = list(dict.fromkeys(k for p in plans.values() for ks in p.pieces for k in ks))
        counting = [
            *batch.counts(PARAGRAPHS, paragraphs),
            *batch.counts(PIECES, pieces),
        ]
        cutoff = time.time() - layout.INTENT_LEASE
        peeking = [
            (shard, order[at : at + ANNOUNCED_PER_CALL], not at)
            for shard, order in self._by_shard(plans).items()
            for at in range(0, len(order), ANNOUNCED_PER_CALL)
        ]
        tickets = [
            batch.call(
                versions.peek(
                    self.keys,
                    self.depths,
                    shard,
                    [(plans[i].id, plans[i].digest) for i in order],
                    token=run.token,
                    cutoff=cutoff,
                    intents=first,
                )
            )
            for shard, order, first in peeking
        ]
        answers = batch.send(self.client)
        found: list[tuple[int, bytes]] = []
        current = set()
        for (_, order, _), ticket in zip(peeking, tickets, strict=True):
            peeked = answers[ticket]
            found += peeked.intents.items()
            for i, (serial, same) in zip(order, peeked.current, strict=True):
                plans[i].old_serial = serial
                current.add(serial)
                if same:
                    run.results[i] = Indexed(plans[i].doc_id, changed=False)
                    del plans[i]
        self._recover(found, run.token, stale_only=False, replaced=current)
        counts = (answers[t].count for t in counting)
        return dict(zip([*paragraphs, *pieces], counts, strict=True))

    def _boilerplate(self, plans: dict[int, Plan], counts: dict[int, int]) -> dict[int, set[int]]:
        """What each new version's signature leaves out: its paragraphs that were
        boilerplate before the batch, whatever order its documents are added in (held, with
        this version and not its earlier one, by ``boilerplate_min_documents`` documents,
        or one of their pieces is). Where the earlier version decides (an entry held by one
        fewer), one round trip reads its record."""
        at = self._at

        def keys(plan: Plan) -> Iterable[int]:
            return (*plan.keys, *(k for ks in plan.pieces for k in ks))

        undecided = [
            i
            for i, plan in plans.items()
            if plan.old_serial and any(counts[k] == at - 1 for k in keys(plan))
        ]
        kept: dict[int, set[int]] = {}
        if undecided:
            calls = [versions.record(self.keys, plans[i].old_serial) for i in undecided]
            for i, raw in zip(undecided, scripts.run(self.client, calls), strict=True):
                old = self.entries(records.unpack(raw)) if raw else NO_ENTRIES
                kept[i] = {*old.paragraphs, *old.pieces}
        out = {}
        for i, plan in plans.items():
            mine = kept.get(i, set())
            held = {k for k in keys(plan) if counts[k] + 1 - (k in mine) >= at}
            out[i] = {
                n
                for n, key in enumerate(plan.keys)
                if key in held or (plan.pieces and not held.isdisjoint(plan.pieces[n]))
            }
        return out

    def _begin(self, plans: dict[int, Plan], run: Pass) -> None:
        """Step 1: read (:meth:`_peek`), then a serial and an intent for each new version,
        its record leaving out its boilerplate (:meth:`_boilerplate`), and its entries of
        its own shard."""
        for plan in plans.values():
            analysis = plan.analysis
            assert analysis is not None
            plan.keys = [layout.paragraph_key(fp) for fp in analysis.fingerprints]
            plan.pieces = [tuple(map(layout.piece_key, p)) for p in analysis.pieces or ()]
            content = int(analysis.content_hash, 16)
            plan.digest = layout.version_digest(content, analysis.document.url)
        counts = self._peek(plans, run)
        if not plans:
            return
        boilerplate = self._boilerplate(plans, counts)
        now = time.time()
        for i, plan in plans.items():
            analysis = plan.analysis
            assert analysis is not None
            plan.indexed_at = round(self.clock(), 3)
            plan.record = self._record(analysis, plan, frozenset(boilerplate[i]))
            plan.packed = records.pack(plan.record)
        # The entries of a document's own shard are added by the announcing script itself,
        # with the serial it takes (each operation names its document's place in the call):
        # on one server, where the index has one shard, that is every entry. A few documents
        # a call, so that no call holds the server long.
        announcing = [
            (shard, order[at : at + ANNOUNCED_PER_CALL])
            for shard, order in self._by_shard(plans).items()
            for at in range(0, len(order), ANNOUNCED_PER_CALL)
        ]
        own = self._batch()
        tickets: dict[int, dict[str, tuple[list[int], list[int]]]] = {}
        begins: list[tuple[int, list[versions.Writing]]] = []
        taken = []
        for shard, order in announcing:
            writes = []
            for number, i in enumerate(order, 1):
                plan = plans[i]
                assert plan.record is not None
                intent = Intent(records.WRITING, run.token, now, record=plan.record)
                packed = records.pack_intent(intent, plan.packed)
                writes.append(versions.Writing(plan.id, plan.digest, packed))
                plan.written = self.entries(plan.record)
                tickets[i] = {}
                for name, (family, op) in ADDED.items():
                    shift = family.key_bits - self.keys.shards.bits
                    mine = [k for k in getattr(plan.written, name) if k >> shift == shard]
                    tickets[i][name] = mine, own.updates(family, mine, op, number, sets=False)
            taken.append(own.take_updates(shard))
            begins.append((shard, writes))
        # The records of the versions to replace, read beside: what the new version does not
        # count as its own holders, and what the owed work takes out.
        olds = [i for i, p in plans.items() if p.old_serial]
        reading = [versions.record(self.keys, plans[i].old_serial) for i in olds]
        # One round trip, but where a young shard's few hashes would take the entries many
        # times over before the splits its replies ask for are sent (Depths.calls_fitting).
        adding = [
            (shard, Counter(map(itemgetter(0), ops)))
            for (shard, _), ops in zip(begins, taken, strict=True)
        ]
        replies: list[Any] = []
        sent = 0
        while sent < len(begins):
            n = self.depths.calls_fitting(adding[sent:])
            calls = [
                versions.begin(self.keys, self.depths, shard, writes, ops, self._at)
                for (shard, writes), ops in zip(
                    begins[sent : sent + n], taken[sent : sent + n], strict=True
                )
            ]
            sent += n
            replies += scripts.run(self.client, calls if sent < len(begins) else calls + reading)
        for i, raw in zip(olds, replies[len(announcing) :], strict=True):
            plans[i].old = records.unpack(raw) if raw else None
        moved: list[tuple[int, Intent]] = []
        for (_, order), ops, announced in zip(announcing, taken, replies, strict=False):
            # A shard's operations are numbered in a row, each document's family by family.
            added, base = announced.added, ops[0][4] if ops else 0
            for i, answer in zip(order, announced.began, strict=True):
                plan = plans[i]
                plan.own = {
                    name: (mine, added[t[0] - base : t[-1] - base + 1] if t else [])
                    for name, (mine, t) in tickets[i].items()
                }
                if answer.current != plan.old_serial:
                    # Another writer of the document since the peek: what it owes was not
                    # read, so this version is taken back and the document written again.
                    if answer.serial != versions.SAME:
                        intent = Intent(records.WRITING, run.token, now, record=plan.record)
                        moved.append((answer.serial, intent))
                    run.again.append(i)
                    del plans[i]
                elif answer.serial == versions.SAME:
                    run.results[i] = Indexed(plan.doc_id, changed=False)
                    del plans[i]
                else:
                    plan.serial = answer.serial
        self._finish(moved)

    def _add(self, plans: dict[int, Plan]) -> None:
        """Step 2: the new entries (but those the announcing script added), and who held
        them. Paragraphs held by many make the new version ``boilerplate``, and those
        turning boilerplate now flag their holders."""
        batch = self._batch()
        asked: dict[int, dict[str, list[int]]] = {}
        got: dict[int, dict[str, list[Held]]] = {}
        for i, plan in plans.items():
            asked[i], got[i] = {}, {}
            for name, (family, op) in ADDED.items():
                keys = getattr(plan.written, name)
                ours, answered = plan.own[name]
                if len(ours) == len(keys) and min(map(COUNT, answered), default=0) >= 0:
                    got[i][name] = answered  # all added by the announcing script (one shard)
                else:
                    asked[i][name] = self._entry_tickets(
                        batch, plan, family, op, keys, ours, answered
                    )
        answers = batch.send(self.client)
        at = self._at
        # Versions this batch replaces still hold their entries until the batch's owed work
        # takes them out: they are no one's candidates, and the counts they swell are
        # checked again once they are out (each new version marked boilerplate, and those it
        # raised, are refreshed then). A version's own earlier one is left out of its counts
        # below: only the others' can have swelled them (none, for a document written alone).
        replaced = {p.old_serial for p in plans.values() if p.old_serial}
        counted: dict[int, dict[int, Held]] = {}
        for i, plan in plans.items():
            got[i].update((name, [answers[t] for t in ts]) for name, ts in asked[i].items())
            mine = plan.written
            counted[i] = dict(zip(mine.paragraphs, got[i]["paragraphs"], strict=True))
            counted[i].update(zip(mine.pieces, got[i]["pieces"], strict=True))
        for i, plan in plans.items():
            # The old version still holds its entries until the commit's owed work takes it
            # out: it is not counted, nor a candidate.
            old = self.entries(plan.old) if plan.old is not None else NO_ENTRIES
            kept = set(old.paragraphs) | set(old.pieces)
            plan.raised = {"boilerplate": set()}
            for key, held in counted[i].items():
                if held.count - (key in kept) >= at:
                    plan.flags.add("boilerplate")
                if held.changed and key not in kept and held.count == at:
                    plan.raised["boilerplate"].update(held.serials)
            mine = plan.written
            gone = replaced | {plan.old_serial}
            plan.exact = [
                (s, "") for held in got[i]["content"] for s in held.serials if s not in gone
            ]
            bands = zip(mine.bands, got[i]["bands"], strict=True)
            plan.near = [(s, "", 0.0) for _, held in bands for s in held.serials if s not in gone]
            if replaced - {plan.old_serial}:
                if "boilerplate" in plan.flags:
                    plan.refresh.add(plan.serial)
                plan.refresh |= plan.raised["boilerplate"]

    def _entry_tickets(
        self,
        batch: Batch,
        plan: Plan,
        family: Family,
        op: str,
        keys: Sequence[int],
        ours: Sequence[int],
        answered: Sequence[Held],
    ) -> list[int]:
        """Tickets of the answers for one family of a new version's entries (``keys``), in
        order: those the announcing script added (``ours``, ``answered``; sent again with
        their overflow sets where it could not), and the others added now."""
        own = dict(zip(ours, answered, strict=True))
        rest = iter(batch.updates(family, [k for k in keys if k not in own], op, plan.serial))
        tickets = []
        for key in keys:
            answer = own.get(key)
            if answer is None:
                tickets.append(next(rest))
            elif answer.count < 0:
                tickets += batch.updates(family, (key,), op, plan.serial, sets=True)
            else:
                tickets.append(batch.known(answer))
        return tickets

    def _score(self, plans: dict[int, Plan]) -> None:
        """Step 3: the exact copies and near duplicates among the holders, by their records
        or, for versions not committed yet, their intents."""
        wanted: dict[int, None] = {}
        for plan in plans.values():
            exact = [s for s, _ in plan.exact if s != plan.serial]
            plan.exact = [(s, "") for s in dict.fromkeys(exact)][:MAX_EXACT]
            seen = {s for s, _ in plan.exact} | {plan.serial}
            near = [s for s, _, _ in plan.near if s not in seen]
            plan.near = [(s, "", 0.0) for s in dict.fromkeys(near)][:MAX_CANDIDATES]
            wanted.update((s, None) for s, _ in plan.exact)
            wanted.update((s, None) for s, _, _ in plan.near)
        batch = self._batch()
        asked = {
            s: (
                batch.call(versions.record(self.keys, s)),
                batch.call(versions.intent(self.keys, s)),
            )
            for s in wanted
        }
        answers = batch.send(self.client) if len(batch) else []
        found = {}
        for serial, (record, intent) in asked.items():
            # scored on ids and signatures: their near-copy data is most of an unpacking
            known = record_or_intent(answers[record], answers[intent], near=False)
            if known is not None:
                found[serial] = known
        threshold = self.settings.near_duplicate_threshold
        for plan in plans.values():
            assert plan.record is not None
            plan.exact = [(s, found[s].doc_id) for s, _ in plan.exact if s in found]
            sig = plan.record.signature
            alike = [
                (s, other)
                for s, _, _ in plan.near
                if sig and (other := found.get(s)) is not None and len(other.signature) == len(sig)
            ]
            scores = layout.similarities(sig, [other.signature for _, other in alike], self.wide)
            plan.near = [
                (s, other.doc_id, score)
                for (s, other), score in zip(alike, scores, strict=True)
                if score >= threshold
            ]
            analysis = plan.analysis
            assert analysis is not None
            if analysis.repeats.doubled_body:
                plan.flags.add("doubled_body")
            if analysis.repeats.runs:
                plan.flags.add("internal_repeat")
            if plan.exact:
                plan.flags.add("exact_duplicate")
                plan.raised["exact_duplicate"] = {s for s, _ in plan.exact}
            if plan.near:
                plan.flags.add("near_duplicate")
                plan.raised["near_duplicate"] = {s for s, _, _ in plan.near}
