"""Steps 1 to 3 of a batch's write (:mod:`dedup.index.store`): announce each new version
with its guessed record, add its entries and learn who held them, correct a wrong guess of
its boilerplate, and score the candidates found."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from dedup.index import entries, layout, records, scripts, versions
from dedup.index.access import MAX_CANDIDATES, MAX_EXACT, NO_ENTRIES, record_or_intent
from dedup.index.entries import Batch, Held
from dedup.index.layout import BANDS, Family
from dedup.index.owed import Owed
from dedup.index.plan import ADDED, COUNT, Indexed, Pass, Plan
from dedup.index.records import Intent, Record
from dedup.index.seen import Seen
from dedup.pipeline.analysis import Analysis
from dedup.report import record_extra
from dedup.servers.connection import IndexClient
from dedup.settings import Settings

ANNOUNCED_PER_CALL = 10
"""Documents one call of the announcing script takes at most (it adds their entries of its
group too: every entry, on one server)."""


class Writes(Owed):
    """The steps before a batch's commit."""

    def __init__(
        self, client: IndexClient, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, settings, clock)
        self._seen = Seen(settings.boilerplate_min_documents)
        self._at = settings.boilerplate_min_documents

    def _record(self, analysis: Analysis, plan: Plan, boilerplate: frozenset[int]) -> Record:
        """The record of a new version; its signature leaves out ``boilerplate``."""
        sig = analysis.document_signature(boilerplate)
        near = None
        if analysis.pieces is not None:
            near = [
                records.NearParagraph(
                    words,
                    layout.paragraph_bits(analysis.paragraph_signatures[i]) if keys else b"",
                    keys,
                )
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

    def _begin(self, plans: dict[int, Plan], run: Pass) -> None:
        """Step 1: a serial and an intent for each new version, its record built on a guess
        of its boilerplate (:mod:`dedup.index.seen`); the current versions and the intents of
        the documents' groups that concern this writer (finishing those it, or a dead one,
        left, and what the versions about to be replaced owe)."""
        now = time.time()
        for plan in plans.values():
            analysis = plan.analysis
            assert analysis is not None
            plan.keys = [layout.paragraph_key(fp) for fp in analysis.fingerprints]
            plan.pieces = [tuple(layout.piece_key(k) for k in p) for p in analysis.pieces or ()]
            plan.guessed = self._seen.guess(plan.keys, plan.pieces or [()] * len(plan.keys))
            plan.indexed_at = round(self.clock(), 3)
            plan.record = self._record(analysis, plan, plan.guessed)
            plan.packed = records.pack(plan.record)
            plan.digest = records.record_digest(plan.record)
        # The entries of a document's own group are added by the announcing script itself,
        # with the serial it takes (each operation names its document's place in the call):
        # on one server, where the index has one group, that is every entry. A few documents
        # a call, so that no call holds the server long.
        announcing = [
            (group, order[at : at + ANNOUNCED_PER_CALL], not at)
            for group, order in self._by_group(plans).items()
            for at in range(0, len(order), ANNOUNCED_PER_CALL)
        ]
        own = self._batch()
        tickets: dict[int, dict[str, tuple[list[int], list[int]]]] = {}
        calls, taken = [], []
        for group, order, first in announcing:
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
                    shift = family.key_bits - self.keys.groups.bits
                    mine = [k for k in getattr(plan.written, name) if k >> shift == group]
                    tickets[i][name] = mine, own.updates(family, mine, op, number)
            taken.append(own.take_updates(group))
            calls.append(
                versions.begin(
                    self.keys,
                    group,
                    writes,
                    taken[-1],
                    self._at,
                    token=run.token,
                    cutoff=now - layout.INTENT_LEASE,
                    intents=first,
                )
            )
        found: list[tuple[int, bytes]] = []
        current = set()
        for (_, order, _), ops, announced in zip(
            announcing, taken, scripts.run(self.client, calls), strict=True
        ):
            found += announced.intents.items()
            # A group's operations are numbered in a row, each document's family by family.
            added, base = announced.added, ops[0][3] if ops else 0
            for i, answer in zip(order, announced.began, strict=True):
                plan = plans[i]
                plan.old_serial = answer.current
                current.add(answer.current)
                plan.own = {
                    name: (mine, added[t[0] - base : t[-1] - base + 1] if t else [])
                    for name, (mine, t) in tickets[i].items()
                }
                if answer.serial == versions.SAME:
                    run.results[i] = Indexed(plan.doc_id, changed=False)
                    del plans[i]
                else:
                    plan.serial = answer.serial
        # What this writer left before, what dead ones left, and what the current versions
        # still owe (a commit replacing one drops it: it is done first, whoever wrote it).
        self._recover(found, run.token, stale_only=False, replaced=current)

    def _add(self, plans: dict[int, Plan], run: Pass) -> None:
        """Step 2: the new entries (but those the announcing script added), and who held
        them; the current versions' records. The entries' counts tell the new versions'
        boilerplate: where the guess was wrong, the record and its bands are corrected
        (:meth:`_correct`)."""
        batch = self._batch()
        olds = {
            i: batch.call(versions.record(self.keys, p.old_serial))
            for i, p in plans.items()
            if p.old_serial
        }
        asked: dict[int, dict[str, list[int]]] = {}
        got: dict[int, dict[str, list[Held]]] = {}
        for i, plan in plans.items():
            asked[i], got[i] = {}, {}
            for name, (family, op) in ADDED.items():
                keys = getattr(plan.written, name)
                ours, answered = plan.own[name]
                if len(ours) == len(keys) and min(map(COUNT, answered), default=0) >= 0:
                    got[i][name] = answered  # all added by the announcing script (one group)
                else:
                    asked[i][name] = self._entry_tickets(
                        batch, plan, family, op, keys, ours, answered
                    )
        answers = batch.send(self.client)
        for i, ticket in olds.items():
            raw = answers[ticket]
            plans[i].old = records.unpack(raw) if raw else None
        at = self._at
        # Versions this batch replaces still hold their entries until the batch's owed work
        # takes them out: they are no one's candidates, and the counts they swell are
        # checked again once they are out (each new version marked boilerplate, and those it
        # raised, are refreshed then).
        replaced = {p.old_serial for p in plans.values() if p.old_serial}
        counted: dict[int, dict[int, Held]] = {}
        first: dict[int, int] = {}
        """Per paragraph or piece entry, its holders once the batch's first version was added
        to it: one more than before the batch."""
        for i, plan in plans.items():
            got[i].update((name, [answers[t] for t in ts]) for name, ts in asked[i].items())
            mine = plan.written
            counted[i] = dict(zip(mine.paragraphs, got[i]["paragraphs"], strict=True))
            counted[i].update(zip(mine.pieces, got[i]["pieces"], strict=True))
            for key, held in counted[i].items():
                first.setdefault(key, held.count)
                self._seen.saw(key, held.count)
        wrong: dict[int, tuple[Record, list[int]]] = {}
        """The right record of each version whose boilerplate was guessed wrong, and its
        band keys."""
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
            # The signature leaves out what was boilerplate before the batch, whatever order
            # its documents are added in, counting this version and not its old self.
            pieces = plan.pieces
            boilerplate = frozenset(
                n
                for n, key in enumerate(plan.keys)
                if first[key] - (key in kept) >= at
                or (pieces and any(first[k] - (k in kept) >= at for k in pieces[n]))
            )
            mine = plan.written
            gone = replaced | {plan.old_serial}
            plan.exact = [
                (s, "") for held in got[i]["content"] for s in held.serials if s not in gone
            ]
            bands = list(zip(mine.bands, got[i]["bands"], strict=True))
            if boilerplate != plan.guessed:
                analysis = plan.analysis
                assert analysis is not None and plan.record is not None
                record = self._record(analysis, plan, boilerplate)
                if record.signature != plan.record.signature:
                    right = self.band_keys(record.signature)
                    wrong[i] = record, right
                    kept_bands = set(right)
                    bands = [(key, held) for key, held in bands if key in kept_bands]
            plan.near = [(s, "", 0.0) for _, held in bands for s in held.serials if s not in gone]
            if replaced and "boilerplate" in plan.flags:
                plan.refresh.add(plan.serial)
            if replaced:
                plan.refresh |= plan.raised["boilerplate"]
        if wrong:
            self._correct(plans, wrong, run, replaced)

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

    def _correct(
        self,
        plans: dict[int, Plan],
        wrong: dict[int, tuple[Record, list[int]]],
        run: Pass,
        replaced: set[int],
    ) -> None:
        """Two round trips for the versions whose boilerplate was guessed wrong: their
        intents take the right records (still naming the bands of the guess, as strays),
        then the guess's bands are taken out and the right ones added. An intent taken back
        meanwhile by another writer (its lease over) leaves its document to write again."""
        now = time.time()
        by_group: dict[int, list[int]] = {}
        missing: dict[int, list[int]] = {}
        for i, (record, right) in wrong.items():
            plan = plans[i]
            guessed = set(plan.written.bands)  # the announced record's
            plan.stray = sorted(guessed - set(right))
            missing[i] = [k for k in right if k not in guessed]
            plan.record, plan.packed = record, records.pack(record)
            by_group.setdefault(self.keys.groups.of(plan.serial), []).append(i)
        calls = []
        for group, order in by_group.items():
            intents = []
            for i in order:
                plan = plans[i]
                intent = Intent(
                    records.WRITING, run.token, now, record=plan.record, stray=plan.stray
                )
                intents.append((plan.serial, records.pack_intent(intent, plan.packed)))
            calls.append(versions.replace_intents(self.keys, group, intents))
        for order, kept in zip(by_group.values(), scripts.run(self.client, calls), strict=True):
            for i, ok in zip(order, kept, strict=True):
                if not ok:  # taken back with every entry its intent named
                    run.again.append(i)
                    del plans[i], missing[i]
        batch = self._batch()
        asked = {}
        for i, keys in missing.items():
            plan = plans[i]
            batch.updates(BANDS, plan.stray, entries.REMOVE, plan.serial)
            asked[i] = batch.updates(BANDS, keys, entries.ADD_SEEING, plan.serial)
        answers = batch.send(self.client)
        for i, tickets in asked.items():
            plan = plans[i]
            gone = replaced | {plan.old_serial}
            plan.near += [
                (s, "", 0.0) for t in tickets for s in answers[t].serials if s not in gone
            ]

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
            known = record_or_intent(answers[record], answers[intent])
            if known is not None:
                found[serial] = known
        threshold = self.settings.near_duplicate_threshold
        for plan in plans.values():
            assert plan.record is not None
            plan.exact = [(s, found[s].doc_id) for s, _ in plan.exact if s in found]
            sig = plan.record.signature
            scored = []
            for s, _, _ in plan.near:
                other = found.get(s)
                if sig and other is not None and len(other.signature) == len(sig):
                    score = layout.similarity(sig, other.signature, self.wide)
                    if score >= threshold:
                        scored.append((s, other.doc_id, score))
            plan.near = scored
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
