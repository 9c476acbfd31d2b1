"""Writing the index: documents in, duplicates flagged on both sides; deletes and purges.

The layout is :mod:`dedup.index.layout` (a packed record per document version, small bucketed
hashes of index entries, flag bitmaps, all in groups with hash tags), the key names
:mod:`dedup.index.keys`, the scripts :mod:`dedup.index.scripts`. One document's write spans
many hash slots, and nothing is atomic across slots (on one server the same steps run, as a
cluster of one shard), so a batch is written in steps, each a round trip for the whole batch:

1. announce each new version in its group (``begin.lua``), which reads the current one: an
   intent holding the new record, under a new serial, unless the id entry's digest shows
   the version is indexed already; only then does the same script add the serial to the
   entries of that group (all of them, when the index has one group). The record leaves out
   the boilerplate the writer guesses (:mod:`dedup.index.seen`);
2. add the new version's other entries, which answers who held them before (LSH band sharers,
   exact copies, paragraphs turning boilerplate) and how many hold each paragraph: what was
   boilerplate before the batch. A wrong guess is corrected: the intent takes the right
   record, then the bands move (two round trips, only for batches that guessed wrong);
3. read those candidates' records (or their intents: a near duplicate written at the same
   moment by another worker is found before its commit) and score them;
4. commit in the document's group (``commit.lua``): the id entry, the record, its flags and
   the counters change together, and the intent becomes what is owed;
5. do what is owed: take the old version's entries out, raise flags on the other documents,
   refresh the flags the change may have moved; then drop the intent.

Readers ignore serials without a record, so steps 1-3 are invisible until the commit. A writer
killed at any step leaves an intent; the job's retry (same token) or, after a lease, any
writer takes back a version that was not committed or finishes what a committed one owed.
Every step is idempotent: entries are sets of serials, flags are set to values, and a commit
checks the current version, so a redirected cluster pipeline or a replayed batch changes
nothing. Reports and lists are read by :class:`dedup.index.reads.Reads`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from operator import itemgetter
from typing import cast

import redis
from redis.cluster import RedisCluster

from dedup.errors import SettingsMismatchError, StoreError
from dedup.index import layout, scripts, texts
from dedup.index.keys import Keys
from dedup.index.layout import BANDS, CONTENT, PARAGRAPHS, PIECES, Family, Intent, Record
from dedup.index.reads import (
    CLOCK_SKEW,
    MAX_CANDIDATES,
    MAX_EXACT,
    NO_ENTRIES,
    UNRECORDED,
    Entries,
    Reads,
    record_or_intent,
    recorded_groups,
    store_error,
)
from dedup.index.scripts import Batch, Held
from dedup.index.seen import Seen
from dedup.pipeline import signature
from dedup.pipeline.analysis import Analysis
from dedup.report import record_extra
from dedup.servers.connection import IndexClient, unlink_all
from dedup.settings import Settings

_CONFLICT_RETRIES = 5

FAILING_OVER = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError,
    redis.ReadOnlyError,
)
"""What a cluster answers while a master fails over or slots move."""
FAILOVER_PATIENCE = 60.0
"""Seconds a write on a cluster waits for every slot to be served again before its job
fails (and RQ retries it): a failover takes the cluster's node timeout and a little more."""


def signature_settings(settings: Settings, groups: int) -> dict[str, str]:
    """What a stored signature depends on: writers with other values must not mix in.

    ``near_paragraphs`` is named only when on, so an index built before the setting existed
    (or with it off) has the same settings as a writer with it off; ``groups`` only when
    they are not the 1,024 of an index built before the setting.
    """
    recorded = {
        "format": layout.FORMAT_VERSION,
        "scheme": signature.SCHEME,
        "hash": "xxh64-words-combined",
        "signature_bits": str(layout.SIGNATURE_BITS),
        "num_perm": str(settings.num_perm),
        "seed": str(settings.seed),
        "shingle_words": str(settings.shingle_words),
        "paragraph_shingle_words": str(settings.paragraph_shingle_words),
        "min_paragraph_words": str(settings.min_paragraph_words),
        "lsh_bands": str(settings.lsh_bands),
        "lsh_rows": str(settings.lsh_rows),
    }
    if settings.near_paragraphs:
        recorded["near_paragraphs"] = "true"
    if str(groups) != UNRECORDED["groups"]:
        recorded["groups"] = str(groups)
    return recorded


_SETTING_NAMES = {"groups": "index_groups"}
"""Recorded signature settings whose setting has another name."""


def _versions() -> dict[str, str]:
    return {
        "datasketch_version": metadata.version("datasketch"),
        "dedup_version": metadata.version("dedup"),
    }


@dataclass(frozen=True)
class Indexed:
    """What indexing one document found."""

    doc_id: str
    changed: bool
    exact: list[str] = field(default_factory=list)
    near: list[tuple[str, float]] = field(default_factory=list)


_COUNT = itemgetter(0)
"""An answer's holders (:attr:`dedup.index.scripts.Held.count`), for C-speed passes."""

_ADDED: dict[str, tuple[Family, str]] = {
    "bands": (BANDS, scripts.ADD_SEEING),
    "content": (CONTENT, scripts.ADD_SEEING),
    "paragraphs": (PARAGRAPHS, scripts.ADD_PARAGRAPH),
    "pieces": (PIECES, scripts.ADD_PIECE),
}
"""How a new version joins each family of its entries (:class:`dedup.index.reads.Entries`'s
fields): band sharers and exact copies answer who held them; paragraphs and pieces how many,
and who once they turn boilerplate."""


@dataclass
class _Plan:
    """One document's write, as it goes through the steps."""

    doc_id: str
    analysis: Analysis | None
    """None for a delete."""
    old_serial: int = 0
    expect: int = scripts.ANY
    """The current version the writer expects: :data:`dedup.index.scripts.ANY` (the id
    entry's digest tells), or one whose record was read and is another version."""
    id: layout.IdEntry = field(init=False)
    """The document's id entry (its id hashed once for every step)."""
    old: Record | None = None
    record: Record | None = None
    packed: bytes = b""
    """The new record, packed ('' for a delete)."""
    digest: bytes = b""
    """The new version's digest, which its id entry keeps."""
    indexed_at: float = 0.0
    guessed: frozenset[int] = frozenset()
    """The paragraphs the announced record leaves out of its signature as boilerplate."""
    stray: list[int] = field(default_factory=list)
    """Band keys of a signature guessed wrong, added and being taken out."""
    serial: int = 0
    written: Entries = NO_ENTRIES
    """The entries of the announced record."""
    own: dict[str, tuple[list[int], list[Held]]] = field(default_factory=dict)
    """Per family, the entries of the document's own group, which the announcing script
    added, and what it answered for each."""
    keys: list[int] = field(default_factory=list)
    """The entry key of each of the new version's paragraphs, in order."""
    pieces: list[tuple[int, ...]] = field(default_factory=list)
    exact: list[tuple[int, str]] = field(default_factory=list)
    near: list[tuple[int, str, float]] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    raised: dict[str, set[int]] = field(default_factory=dict)
    refresh: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.id = layout.id_entry(self.doc_id)


@dataclass
class _Pass:
    """One pass of a batch's write: its writer, and what it settled for its documents."""

    token: str
    results: dict[int, Indexed]
    """The documents written, or found unchanged."""
    again: dict[int, int] = field(default_factory=dict)
    """The documents to write in another pass, each with the current version to expect."""


class Store(Reads):
    """The index in one Redis or a Redis Cluster, under one namespace, for one set of
    signature settings."""

    def __init__(
        self, client: IndexClient, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, settings, clock)
        self._meta_checked = False
        self._seen = Seen(settings.boilerplate_min_documents)
        self._at = settings.boilerplate_min_documents

    # -- settings ---------------------------------------------------------------------------

    def check_settings(self) -> None:
        """Record our signature settings in an empty store, or refuse to mix with others.

        The index's groups are ours unless ``index_groups`` is set: then they must agree.
        """
        try:
            stored = self.client.hget(self.meta_key, "signature")
            if stored is None:
                wanted = signature_settings(self.settings, self.new_index_groups())
                new = json.dumps(wanted, sort_keys=True)
                self.client.hsetnx(self.meta_key, "signature", new)
                stored = self.client.hget(self.meta_key, "signature")
        except redis.RedisError as exc:
            raise store_error(exc) from None
        have = json.loads(cast("bytes", stored))
        groups = self.settings.index_groups or recorded_groups(have)
        wanted = signature_settings(self.settings, groups)
        if have != wanted:
            diff = ", ".join(
                f"{_SETTING_NAMES.get(k, k)}={have.get(k, UNRECORDED.get(k))} "
                f"(ours {wanted.get(k, UNRECORDED.get(k))})"
                for k in sorted(set(have) | set(wanted))
                if have.get(k) != wanted.get(k)
            )
            raise SettingsMismatchError(
                f"namespace {self.settings.namespace!r} was built with other signature "
                f"settings: {diff}; use another namespace or the same settings"
            )
        self.client.hset(self.meta_key, items=[x for pair in _versions().items() for x in pair])
        # the index's, checked above
        self._lsh = self.settings.lsh_bands, self.settings.lsh_rows
        self._keys = Keys(self.settings.namespace, layout.Groups(groups))
        self._meta_checked = True

    # -- writing ----------------------------------------------------------------------------

    def index(self, analyses: Sequence[Analysis], token: str | None = None) -> list[Indexed]:
        """Index a batch of analysed documents; each ends indexed exactly once.

        ``token`` names the writer (a job's id): a retry with the same token takes back or
        finishes what an earlier run of it left half-done, at once rather than after the
        lease (:data:`dedup.index.layout.INTENT_LEASE`).
        """
        if not self._meta_checked:
            self.check_settings()
        token = token or uuid.uuid4().hex
        waited = 0.0
        while True:
            try:
                return self._index(list(analyses), token)
            except FAILING_OVER as exc:
                # A cluster serves every slot again within seconds of losing a master (its
                # replica is promoted): the batch is written again, as the job's retry would,
                # and the same token takes back or finishes what the first try left.
                if not isinstance(self.client, RedisCluster) or waited >= FAILOVER_PATIENCE:
                    raise store_error(exc) from None
                pause = min(2.0, 0.25 * 2 ** int(waited))
                time.sleep(pause)
                waited += pause
            except redis.RedisError as exc:
                raise store_error(exc) from None

    def _index(self, analyses: list[Analysis], token: str) -> list[Indexed]:
        results: dict[int, Indexed] = {}
        pending = dict.fromkeys(range(len(analyses)), scripts.ANY)
        for _ in range(_CONFLICT_RETRIES):
            if not pending:
                break
            plans = {
                i: _Plan(analyses[i].document.doc_id, analyses[i], expect=expect)
                for i, expect in pending.items()
            }
            pending = self._write(plans, token, results)
        if pending:
            raise StoreError(f"document {analyses[min(pending)].document.doc_id} kept changing")
        return [results[i] for i in range(len(analyses))]

    def _write(
        self, plans: dict[int, _Plan], token: str, results: dict[int, Indexed]
    ) -> dict[int, int]:
        """The steps of the module's docstring for these documents; returns those to write
        again (another writer of the same id met on the way, or a version whose id entry
        keeps no digest), each with the current version to expect."""
        run = _Pass(token, results)
        self._begin(plans, run)
        self._add(plans, run)
        self._score(plans)
        run.again.update(dict.fromkeys(self._commit(plans, token), scripts.ANY))
        for i, plan in plans.items():
            near = sorted(((d, s) for _, d, s in plan.near), key=lambda x: (-x[1], x[0]))
            results[i] = Indexed(plan.doc_id, True, sorted(d for _, d in plan.exact), near)
        return run.again

    def _read(self, plans: dict[int, _Plan], token: str) -> None:
        """Current versions, their records, and the intents of the documents' groups
        (finishing those this writer, or a dead one, left): what a delete starts from."""
        batch = self._batch()
        current = {i: batch.call(scripts.current(self.keys, p.id)) for i, p in plans.items()}
        groups = set(self._by_group(plans))
        found = {g: batch.call(scripts.intents(self.keys, g)) for g in groups}
        answers = batch.send(self.client)
        for i, plan in plans.items():
            plan.old_serial = answers[current[i]]
        # What the versions about to be replaced still owe is done first, whoever wrote it:
        # their commit drops it.
        self._recover(
            [(s, packed) for g in groups for s, packed in answers[found[g]].items()],
            token,
            stale_only=False,
            replaced={p.old_serial for p in plans.values()},
        )
        olds = [p for p in plans.values() if p.old_serial]
        records = scripts.run(self.client, [scripts.record(self.keys, p.old_serial) for p in olds])
        for plan, raw in zip(olds, records, strict=True):
            plan.old = layout.unpack(raw) if raw else None
            if plan.old is None:  # an id entry ahead of its record cannot be: read as none
                plan.old_serial = 0

    def _record(self, analysis: Analysis, plan: _Plan, boilerplate: frozenset[int]) -> Record:
        """The record of a new version; its signature leaves out ``boilerplate``."""
        sig = analysis.document_signature(boilerplate)
        near = None
        if analysis.pieces is not None:
            near = [
                layout.NearParagraph(
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

    def _begin(self, plans: dict[int, _Plan], run: _Pass) -> None:
        """Step 1: a serial and an intent for each new version, its record built on a guess
        of its boilerplate (:mod:`dedup.index.seen`); the current versions and the intents of
        the documents' groups (finishing those this writer, or a dead one, left, and what the
        versions about to be replaced owe)."""
        now = time.time()
        for plan in plans.values():
            analysis = plan.analysis
            assert analysis is not None
            plan.keys = [layout.paragraph_key(fp) for fp in analysis.fingerprints]
            plan.pieces = [tuple(layout.piece_key(k) for k in p) for p in analysis.pieces or ()]
            plan.guessed = self._seen.guess(plan.keys, plan.pieces or [()] * len(plan.keys))
            plan.indexed_at = round(self.clock(), 3)
            plan.record = self._record(analysis, plan, plan.guessed)
            plan.packed = layout.pack(plan.record)
            plan.digest = layout.record_digest(plan.record)
        by_group = self._by_group(plans)
        # The entries of a document's own group are added by the announcing script itself,
        # with the serial it takes (each operation names its document's place in the call):
        # on one server, where the index has one group, that is every entry.
        own = self._batch()
        tickets: dict[int, dict[str, tuple[list[int], list[int]]]] = {}
        calls, taken = [], []
        for group, order in by_group.items():
            writes = []
            for number, i in enumerate(order, 1):
                plan = plans[i]
                assert plan.record is not None
                intent = Intent(layout.WRITING, run.token, now, record=plan.record)
                packed = layout.pack_intent(intent, plan.packed)
                writes.append(scripts.Writing(plan.id, plan.expect, plan.digest, packed))
                plan.written = self.entries(plan.record)
                tickets[i] = {}
                for name, (family, op) in _ADDED.items():
                    shift = family.key_bits - self.keys.groups.bits
                    mine = [k for k in getattr(plan.written, name) if k >> shift == group]
                    tickets[i][name] = mine, own.updates(family, mine, op, number)
            taken.append(own.take_updates(group))
            calls.append(scripts.begin(self.keys, group, writes, taken[-1], self._at))
        found: list[tuple[int, bytes]] = []
        current = set()
        for order, ops, announced in zip(
            by_group.values(), taken, scripts.run(self.client, calls), strict=True
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
                if answer.serial > 0:
                    plan.serial = answer.serial
                elif answer.serial == scripts.SAME:
                    run.results[i] = Indexed(plan.doc_id, changed=False)
                    del plans[i]
                elif answer.serial == scripts.CONFLICT:
                    run.again[i] = scripts.ANY
                    del plans[i]
                # UNKNOWN: no serial; the current version's record is read next
        # What this writer left before, what dead ones left, and what the current versions
        # still owe (a commit replacing one drops it: it is done first, whoever wrote it).
        self._recover(found, run.token, stale_only=False, replaced=current)

    def _by_group(self, plans: dict[int, _Plan]) -> dict[int, list[int]]:
        """The plans by their documents' groups, in their order."""
        by_group: dict[int, list[int]] = {}
        for i, plan in plans.items():
            group = self.keys.groups.of_bucket(layout.IDS, plan.id.bucket)
            by_group.setdefault(group, []).append(i)
        return by_group

    def _add(self, plans: dict[int, _Plan], run: _Pass) -> None:
        """Step 2: the new entries (but those the announcing script added), and who held
        them; the current versions' records. The entries' counts tell the new versions'
        boilerplate: where the guess was wrong, the record and its bands are corrected
        (:meth:`_correct`)."""
        batch = self._batch()
        olds = {
            i: batch.call(scripts.record(self.keys, p.old_serial))
            for i, p in plans.items()
            if p.old_serial
        }
        asked: dict[int, dict[str, list[int]]] = {}
        got: dict[int, dict[str, list[Held]]] = {}
        written: dict[int, Entries] = {}
        for i, plan in plans.items():
            if not plan.serial:
                continue
            written[i] = plan.written
            asked[i], got[i] = {}, {}
            for name, (family, op) in _ADDED.items():
                keys = getattr(plan.written, name)
                ours, answered = plan.own[name]
                if len(ours) == len(keys) and min(map(_COUNT, answered), default=0) >= 0:
                    got[i][name] = answered  # all added by the announcing script (one group)
                else:
                    asked[i][name] = self._entry_tickets(
                        batch, plan, family, op, keys, ours, answered
                    )
        answers = batch.send(self.client)
        for i, ticket in olds.items():
            raw = answers[ticket]
            plan = plans[i]
            plan.old = layout.unpack(raw) if raw else None
            if not plan.serial:  # its id entry keeps no digest: now its record tells
                if plan.old is not None and layout.record_digest(plan.old) == plan.digest:
                    run.results[i] = Indexed(plan.doc_id, changed=False)
                else:
                    run.again[i] = plan.old_serial
                del plans[i]
        at = self.settings.boilerplate_min_documents
        # Versions this batch replaces still hold their entries until the batch's owed work
        # takes them out: they are no one's candidates, and the counts they swell are
        # checked again once they are out (each new version marked boilerplate, and those it
        # raised, are refreshed then).
        replaced = {p.old_serial for p in plans.values() if p.old_serial}
        counted: dict[int, dict[int, Held]] = {}
        first: dict[int, int] = {}
        """Per paragraph or piece entry, its holders once the batch's first version was added
        to it: one more than before the batch."""
        for i in plans:
            got[i].update((name, [answers[t] for t in ts]) for name, ts in asked[i].items())
            mine = written[i]
            counted[i] = dict(zip(mine.paragraphs, got[i]["paragraphs"], strict=True))
            counted[i].update(zip(mine.pieces, got[i]["pieces"], strict=True))
            for key, held in counted[i].items():
                first.setdefault(key, held.count)
                self._seen.saw(key, held.count)
        wrong: dict[int, Record] = {}
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
            mine = written[i]
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
                    wrong[i] = record
                    right = set(self.band_keys(record.signature))
                    bands = [(key, held) for key, held in bands if key in right]
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
        plan: _Plan,
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
        self, plans: dict[int, _Plan], wrong: dict[int, Record], run: _Pass, replaced: set[int]
    ) -> None:
        """Two round trips for the versions whose boilerplate was guessed wrong: their
        intents take the right records (still naming the bands of the guess, as strays),
        then the guess's bands are taken out and the right ones added. An intent taken back
        meanwhile by another writer (its lease over) leaves its document to write again."""
        now = time.time()
        by_group: dict[int, list[int]] = {}
        missing: dict[int, list[int]] = {}
        for i, record in wrong.items():
            plan = plans[i]
            assert plan.record is not None
            guessed = set(self.band_keys(plan.record.signature))
            right = self.band_keys(record.signature)
            plan.stray = sorted(guessed - set(right))
            missing[i] = [k for k in right if k not in guessed]
            plan.record, plan.packed = record, layout.pack(record)
            by_group.setdefault(self.keys.groups.of(plan.serial), []).append(i)
        calls = []
        for group, order in by_group.items():
            intents = []
            for i in order:
                plan = plans[i]
                intent = Intent(
                    layout.WRITING, run.token, now, record=plan.record, stray=plan.stray
                )
                intents.append((plan.serial, layout.pack_intent(intent, plan.packed)))
            calls.append(scripts.replace_intents(self.keys, group, intents))
        for order, kept in zip(by_group.values(), scripts.run(self.client, calls), strict=True):
            for i, ok in zip(order, kept, strict=True):
                if not ok:  # taken back with every entry its intent named
                    run.again[i] = scripts.ANY
                    del plans[i], missing[i]
        batch = self._batch()
        asked = {}
        for i, keys in missing.items():
            plan = plans[i]
            batch.updates(BANDS, plan.stray, scripts.REMOVE, plan.serial)
            asked[i] = batch.updates(BANDS, keys, scripts.ADD_SEEING, plan.serial)
        answers = batch.send(self.client)
        for i, tickets in asked.items():
            plan = plans[i]
            gone = replaced | {plan.old_serial}
            plan.near += [
                (s, "", 0.0) for t in tickets for s in answers[t].serials if s not in gone
            ]

    def _affected_lookups(self, batch: Batch, old: Record | None) -> list[int]:
        """Lookups of the documents whose flags taking out the old version may change: its
        band sharers, its exact copies, holders of its paragraphs about to stop being
        boilerplate."""
        if old is None:
            return []
        entries = self.entries(old)
        return (
            batch.lookups(BANDS, entries.bands, scripts.MEMBERS)
            + batch.lookups(CONTENT, entries.content, scripts.MEMBERS)
            + batch.lookups(PARAGRAPHS, entries.paragraphs, scripts.AT_LIMIT)
            + batch.lookups(PIECES, entries.pieces, scripts.AT_LIMIT)
        )

    def _score(self, plans: dict[int, _Plan]) -> None:
        """Step 3: the exact copies and near duplicates among the holders, by their records
        or, for versions not committed yet, their intents; and the documents whose flags
        taking out the replaced versions may change."""
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
            s: (batch.call(scripts.record(self.keys, s)), batch.call(scripts.intent(self.keys, s)))
            for s in wanted
        }
        affected = {
            i: self._affected_lookups(batch, plan.old)
            for i, plan in plans.items()
            if plan.old is not None
        }
        answers = batch.send(self.client) if len(batch) else []
        found = {}
        for serial, (record, intent) in asked.items():
            known = record_or_intent(answers[record], answers[intent])
            if known is not None:
                found[serial] = known
        for i, tickets in affected.items():
            plans[i].refresh |= {s for t in tickets for s in answers[t].serials}
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

    def _commit(self, plans: dict[int, _Plan], token: str) -> list[int]:
        """Steps 4 and 5; returns the documents another writer overtook (their new version
        taken back, to write again)."""
        owed: dict[int, Intent] = {}
        commits: dict[int, scripts.Commit] = {}
        now = time.time()
        for i, plan in plans.items():
            record = plan.record
            raised = {
                k: sorted(v - {plan.serial}) for k, v in plan.raised.items() if v - {plan.serial}
            }
            refresh = sorted(plan.refresh - {plan.old_serial})
            intent = Intent(
                layout.OWED,
                token,
                now,
                old_serial=plan.old_serial,
                old=plan.old,
                raised=raised,
                refresh=refresh,
            )
            if plan.old_serial or raised or refresh:
                owed[i] = intent
            old_paragraphs = plan.old.paragraphs if plan.old is not None else 0
            commits[i] = scripts.Commit(
                plan.id,
                old=plan.old_serial,
                new=plan.serial,
                record=plan.packed,
                flags=frozenset(plan.flags),
                documents=int(record is not None) - int(plan.old is not None),
                paragraphs=(record.paragraphs if record is not None else 0) - old_paragraphs,
                owed=layout.pack_intent(intent) if i in owed else b"",
                digest=plan.digest,
            )
        by_group = self._by_group(plans)
        calls = [
            scripts.commit(self.keys, group, [commits[i] for i in order])
            for group, order in by_group.items()
        ]
        overtaken = []
        for order, replies in zip(by_group.values(), scripts.run(self.client, calls), strict=True):
            for i, reply in zip(order, replies, strict=True):
                if reply != "ok":
                    overtaken.append(i)
                    owed.pop(i, None)
        overtaken.sort()
        back = [
            (
                plans[i].serial,
                Intent(layout.WRITING, token, 0.0, record=plans[i].record, stray=plans[i].stray),
            )
            for i in overtaken
            if plans[i].serial
        ]
        for i in overtaken:
            del plans[i]
        kept = [(plans[i].serial or plans[i].old_serial, intent) for i, intent in owed.items()]
        self._finish(kept + back)
        return overtaken

    # -- what is owed -------------------------------------------------------------------------

    def _recover(
        self,
        found: list[tuple[int, bytes]],
        token: str,
        *,
        stale_only: bool,
        replaced: Iterable[int] = (),
    ) -> None:
        """Take back or finish the intents of this writer (``token``) and those older than
        the lease, whoever left them, and finish what the versions ``replaced`` owe."""
        cutoff = time.time() - layout.INTENT_LEASE
        finishing = set(replaced)
        mine = []
        for serial, packed in found:
            intent = layout.unpack_intent(packed)
            if (
                intent.at < cutoff
                or (not stale_only and intent.token == token)
                or (intent.kind == layout.OWED and serial in finishing)
            ):
                mine.append((serial, intent))
        self._finish(mine)

    def recover(self) -> int:
        """Finish or take back every intent older than the lease, in every group (what
        writers that died left where nobody wrote since); returns how many there were."""
        try:
            found = scripts.run(
                self.client, [scripts.intents(self.keys, g) for g in range(self.keys.groups.count)]
            )
            intents = [(s, i) for group in found for s, i in group.items()]
            before = len(intents)
            self._recover(intents, "", stale_only=True)
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return before

    def _finish(self, intents: list[tuple[int, Intent]]) -> None:
        """Take back versions never committed (their entries out); do what committed ones
        owe (the old version's entries out, flags raised, flags refreshed); drop the intents.
        Each step may run again: a crash here leaves the intent, and the next run redoes it."""
        if not intents:
            return
        batch = self._batch()
        refresh: set[int] = set()
        affected: list[int] = []
        raised: list[tuple[int, str]] = []
        for serial, intent in intents:
            if intent.kind == layout.WRITING:
                if intent.record is not None:
                    entries = self.entries(intent.record)
                    affected += batch.lookups(BANDS, entries.bands, scripts.MEMBERS)
                    affected += batch.lookups(CONTENT, entries.content, scripts.MEMBERS)
                    self._take_out(batch, intent.record, serial)
                affected += batch.lookups(BANDS, intent.stray, scripts.MEMBERS)
                batch.updates(BANDS, intent.stray, scripts.REMOVE, serial)
                continue
            if intent.old is not None:
                self._take_out(batch, intent.old, intent.old_serial)
            raised += [(s, flag) for flag, serials in intent.raised.items() for s in serials]
            refresh.update(intent.refresh)
        answers = batch.send(self.client)
        refresh.update(s for t in affected for s in answers[t].serials)
        by_group: dict[int, list[tuple[int, str, bool]]] = {}
        for s, flag in raised:
            by_group.setdefault(self.keys.groups.of(s), []).append((s, flag, True))
        scripts.run(
            self.client, [scripts.set_flags(self.keys, g, bits) for g, bits in by_group.items()]
        )
        self.refresh_flags(refresh)
        done: dict[int, list[int]] = {}
        for serial, _ in intents:
            done.setdefault(self.keys.groups.of(serial), []).append(serial)
        pipe = self.client.pipeline(transaction=False)
        for group, serials in done.items():
            # The intent first: flags raised on a version with no record are kept only while
            # it has one, so nothing is kept for it past the second.
            pipe.hdel(self.keys.intents(group), *serials)
            pipe.hdel(self.keys.raised(group), *serials)
        pipe.execute()

    def _take_out(self, batch: Batch, record: Record, serial: int) -> None:
        """Queue the removal of a version from every entry its record names."""
        entries = self.entries(record)
        batch.updates(BANDS, entries.bands, scripts.REMOVE, serial)
        batch.updates(CONTENT, entries.content, scripts.REMOVE, serial)
        batch.updates(PARAGRAPHS, entries.paragraphs, scripts.REMOVE_PARAGRAPH, serial)
        batch.updates(PIECES, entries.pieces, scripts.REMOVE, serial)

    def refresh_flags(self, serials: set[int]) -> None:
        """Bring the corpus-dependent flags of these document versions in line with reports."""
        if not serials:
            return
        records = self.records(sorted(serials))
        reports = self.reports_of(records)
        by_group: dict[int, list[tuple[int, str, bool]]] = {}
        for (serial, _), report in zip(records, reports, strict=True):
            flags = set(report["flags"])
            for name in ("exact_duplicate", "near_duplicate", "boilerplate"):
                by_group.setdefault(self.keys.groups.of(serial), []).append(
                    (serial, name, name in flags)
                )
        scripts.run(
            self.client, [scripts.set_flags(self.keys, g, bits) for g, bits in by_group.items()]
        )

    # -- removing ---------------------------------------------------------------------------

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Take documents out of the index (record, entries, flags, kept text).

        Returns how many were there. The flags of documents that matched them are brought up
        to date.
        """
        deleted = 0
        try:
            todo = list(dict.fromkeys(doc_ids))
            for _ in range(_CONFLICT_RETRIES):
                if not todo:
                    break
                plans = {i: _Plan(doc_id, None) for i, doc_id in enumerate(todo)}
                self._read(plans, uuid.uuid4().hex)
                found = {i: p for i, p in plans.items() if p.old is not None}
                removed, again = self._remove(found)
                deleted += removed
                todo = [todo[i] for i in again]
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return deleted

    def purge(self, older_than: float) -> int:
        """Delete the documents indexed more than ``older_than`` seconds ago.

        Only the versions the walk read are deleted: a document indexed again since then
        keeps its new version.
        """
        cutoff = self.clock() - older_than
        total = 0
        try:
            for batch in self.walk_records(newest_first=False):
                plans = {
                    n: _Plan(record.doc_id, None, old_serial=serial, old=record)
                    for n, (serial, record) in enumerate(batch)
                    if record.indexed_at < cutoff
                }
                total += self._remove(plans)[0]
                if any(record.indexed_at >= cutoff + CLOCK_SKEW for _, record in batch):
                    break
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return total

    def _remove(self, plans: dict[int, _Plan]) -> tuple[int, list[int]]:
        """Delete these versions (steps 2, 4 and 5 without a new version); returns how many
        were deleted and the plans whose version was no longer current."""
        if not plans:
            return 0, []
        token = uuid.uuid4().hex
        batch = self._batch()
        asked = {i: self._affected_lookups(batch, p.old) for i, p in plans.items()}
        answers = batch.send(self.client)
        for i, plan in plans.items():
            plan.refresh = {s for t in asked[i] for s in answers[t].serials}
        again = self._commit(plans, token)
        texts.forget(self.client, self.keys, [p.doc_id for p in plans.values()])
        return len(plans), again

    def drop(self) -> int:
        """Delete every key of the namespace, settings included; returns how many there were.

        For a throwaway namespace (an evaluation run's), which nothing else writes to then.
        """
        try:
            dropped = unlink_all(self.client, self.client.scan_iter(self.keys.pattern, count=1000))
        except redis.RedisError as exc:
            raise store_error(exc) from None
        self._lsh = None
        self._keys = None
        self._meta_checked = False
        return dropped

    def _batch(self) -> Batch:
        return Batch(
            self.keys,
            boilerplate_at=self.settings.boilerplate_min_documents,
            few=self.settings.boilerplate_min_documents,
        )
