"""Writing the index: documents in, duplicates flagged on both sides; deletes and purges.

The layout is :mod:`dedup.index.layout` (a packed record per document version, small bucketed
hashes of index entries, flag bitmaps, all in shards with hash tags), the key names
:mod:`dedup.index.keys`, the scripts :mod:`dedup.index.entries` and
:mod:`dedup.index.versions`. One document's write spans many hash slots, and nothing is atomic
across slots (on one server the same steps run, as a cluster of one shard), so a batch is
written in steps, each a round trip for the whole batch:

1. read each document's current version (``peek.lua``: nothing more to do when its id
   entry's digest shows the version is indexed already), the intents this writer must
   finish or take back first, and how many documents hold each new paragraph: what was
   boilerplate before the batch, which the new record's signature leaves out. Then announce
   each new version in its shard (``begin.lua``): an intent holding the new record, under a
   new serial, and the serial added to the entries of that shard (all of them, when the
   index has one shard);
2. add the new version's other entries, which answers who held them before (LSH band sharers,
   exact copies, paragraphs turning boilerplate);
3. read those candidates' records (or their intents: a near duplicate written at the same
   moment by another worker is found before its commit) and score them;
4. commit in the document's shard (``commit.lua``): the id entry, the record, its flags and
   the counters change together, and the intent becomes what is owed;
5. do what is owed: take the old version's entries out, raise flags on the other documents,
   refresh the flags the change may have moved; then drop the intent.

Readers ignore serials without a record, so steps 1-3 are invisible until the commit. A writer
killed at any step leaves an intent; the job's retry (same token) or, after a lease, any
writer takes back a version that was not committed or finishes what a committed one owed.
Every step is idempotent: entries are sets of serials, flags are set to values, and a commit
checks the current version, so a redirected cluster pipeline or a replayed batch changes
nothing.

Where each part lives: steps 1-3 in :class:`dedup.index.writes.Writes`, what is owed and what
dead writers left in :class:`dedup.index.owed.Owed`, reports and lists in
:class:`dedup.index.reads.Reads`, each a base of :class:`Store`; the plan a document's write
follows in :mod:`dedup.index.plan`, the settings an index records in :mod:`dedup.index.meta`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

import redis
from redis.cluster import RedisCluster

from dedup.errors import StoreError
from dedup.index import layout, meta, records, scripts, texts, versions
from dedup.index.access import CLOCK_SKEW, store_error
from dedup.index.keys import Keys
from dedup.index.plan import CONFLICT_RETRIES, Indexed, Pass, Plan
from dedup.index.records import Intent
from dedup.index.writes import Writes
from dedup.pipeline.analysis import Analysis
from dedup.servers.connection import IndexClient, unlink_all
from dedup.settings import Settings

__all__ = ["FAILING_OVER", "FAILOVER_PATIENCE", "Indexed", "Store"]

FAILING_OVER = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError,
    redis.ReadOnlyError,
)
"""What a cluster answers while a master fails over or slots move."""
COMMITS_PER_CALL = 50
"""Documents one call of ``commit.lua`` takes at most, so that no call holds the server long."""
RAISED_IN_COMMIT = 16
"""Flags a new version raises on other versions that its commit sets itself at most (its
copies in its own shard): a commit call of :data:`COMMITS_PER_CALL` documents then sets at
most 800; more are owed, and set in calls of their own."""
FAILOVER_PATIENCE = 60.0
"""Seconds a write on a cluster waits for every slot to be served again before its job
fails (and RQ retries it): a failover takes the cluster's node timeout and a little more."""


class Store(Writes):
    """The index in one Redis or a Redis Cluster, under one namespace, for one set of
    signature settings."""

    def __init__(
        self, client: IndexClient, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, settings, clock)
        self._meta_checked = False

    # -- settings ---------------------------------------------------------------------------

    def check_settings(self) -> None:
        """Record our signature settings in an empty store, or refuse to mix with others
        (:func:`dedup.index.meta.check`)."""
        shards = meta.check(self.client, self.meta_key, self.settings, self.new_index_shards())
        # the index's, checked above
        self._lsh = self.settings.lsh_bands, self.settings.lsh_rows
        self._keys = Keys(self.settings.namespace, layout.Shards(shards))
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
        pending = list(range(len(analyses)))
        for _ in range(CONFLICT_RETRIES):
            if not pending:
                break
            plans = {i: Plan(analyses[i].document.doc_id, analyses[i]) for i in pending}
            pending = self._write(plans, token, results)
        if pending:
            raise StoreError(f"document {analyses[min(pending)].document.doc_id} kept changing")
        return [results[i] for i in range(len(analyses))]

    def _write(self, plans: dict[int, Plan], token: str, results: dict[int, Indexed]) -> list[int]:
        """The steps of the module's docstring for these documents; returns those to write
        again (another writer of the same id met on the way)."""
        run = Pass(token, results)
        self._begin(plans, run)
        self._add(plans)
        self._score(plans)
        run.again += self._commit(plans, token)
        for i, plan in plans.items():
            near = sorted(((d, s) for _, d, s in plan.near), key=lambda x: (-x[1], x[0]))
            results[i] = Indexed(plan.doc_id, True, sorted(d for _, d in plan.exact), near)
        return run.again

    def _commit(self, plans: dict[int, Plan], token: str) -> list[int]:
        """Steps 4 and 5; returns the documents another writer overtook (their new version
        taken back, to write again)."""
        owed: dict[int, Intent] = {}
        commits: dict[int, versions.Commit] = {}
        now = time.time()
        for i, plan in plans.items():
            record = plan.record
            raised = {
                k: sorted(v - {plan.serial}) for k, v in plan.raised.items() if v - {plan.serial}
            }
            raising = self._raised_in_commit(plan, raised)
            refresh = sorted(plan.refresh - {plan.old_serial})
            intent = Intent(
                records.OWED,
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
            commits[i] = versions.Commit(
                plan.id,
                old=plan.old_serial,
                new=plan.serial,
                record=plan.packed,
                flags=frozenset(plan.flags),
                documents=int(record is not None) - int(plan.old is not None),
                paragraphs=(record.paragraphs if record is not None else 0) - old_paragraphs,
                owed=records.pack_intent(intent) if i in owed else b"",
                digest=plan.digest,
                raising=raising,
            )
        committing = [
            (shard, order[at : at + COMMITS_PER_CALL])
            for shard, order in self._by_shard(plans).items()
            for at in range(0, len(order), COMMITS_PER_CALL)
        ]
        calls = [
            versions.commit(self.keys, self.depths, shard, [commits[i] for i in order])
            for shard, order in committing
        ]
        overtaken = []
        replies_by_call = scripts.run(self.client, calls)
        for (_, order), replies in zip(committing, replies_by_call, strict=True):
            for i, reply in zip(order, replies, strict=True):
                if reply != "ok":
                    overtaken.append(i)
                    owed.pop(i, None)
        overtaken.sort()
        back = [
            (
                plans[i].serial,
                Intent(records.WRITING, token, 0.0, record=plans[i].record),
            )
            for i in overtaken
            if plans[i].serial
        ]
        for i in overtaken:
            del plans[i]
        kept = [(plans[i].serial or plans[i].old_serial, intent) for i, intent in owed.items()]
        self._finish(kept + back)
        return overtaken

    def _raised_in_commit(self, plan: Plan, raised: dict[str, list[int]]) -> list[tuple[int, str]]:
        """The flags a new version raises that its commit sets itself: all of them when they
        are few and on versions of its own shard (every version, on one server), none
        otherwise (what is owed raises them). ``raised`` keeps the others."""
        shard = self.keys.shards.of(plan.serial) if plan.serial else -1
        raising = [(s, flag) for flag, serials in raised.items() for s in serials]
        if len(raising) > RAISED_IN_COMMIT or any(
            self.keys.shards.of(s) != shard for s, _ in raising
        ):
            return []
        raised.clear()
        return raising

    def _read(self, plans: dict[int, Plan], token: str) -> None:
        """Current versions, their records, and the intents of the documents' shards
        (finishing those this writer, or a dead one, left): what a delete starts from."""
        batch = self._batch()
        current = {
            i: batch.call(versions.current(self.keys, self.depths, p.id)) for i, p in plans.items()
        }
        shards = set(self._by_shard(plans))
        found = {g: batch.call(versions.intents(self.keys, g)) for g in shards}
        answers = batch.send(self.client)
        for i, plan in plans.items():
            plan.old_serial = answers[current[i]]
        # What the versions about to be replaced still owe is done first, whoever wrote it:
        # their commit drops it.
        self._recover(
            [(s, packed) for g in shards for s, packed in answers[found[g]].items()],
            token,
            stale_only=False,
            replaced={p.old_serial for p in plans.values()},
        )
        olds = [p for p in plans.values() if p.old_serial]
        raws = scripts.run(self.client, [versions.record(self.keys, p.old_serial) for p in olds])
        for plan, raw in zip(olds, raws, strict=True):
            plan.old = records.unpack(raw) if raw else None
            if plan.old is None:  # an id entry ahead of its record cannot be: read as none
                plan.old_serial = 0

    # -- removing ---------------------------------------------------------------------------

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Take documents out of the index (record, entries, flags, kept text).

        Returns how many were there. The flags of documents that matched them are brought up
        to date.
        """
        deleted = 0
        try:
            todo = list(dict.fromkeys(doc_ids))
            for _ in range(CONFLICT_RETRIES):
                if not todo:
                    break
                plans = {i: Plan(doc_id, None) for i, doc_id in enumerate(todo)}
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
        floors: dict[int, int] = {}
        """Per shard, the position of the first record the walk kept, or past the last one
        it deleted: no record is left below it."""
        kept: set[int] = set()
        shards = self.keys.shards
        try:
            for batch in self.walk_records(newest_first=False):
                plans = {
                    n: Plan(record.doc_id, None, old_serial=serial, old=record)
                    for n, (serial, record) in enumerate(batch)
                    if record.indexed_at < cutoff
                }
                total += self._remove(plans)[0]
                for serial, record in batch:
                    shard = shards.of(serial)
                    if shard not in kept:
                        gone = record.indexed_at < cutoff
                        floors[shard] = shards.position(serial) + gone
                        if not gone:
                            kept.add(shard)
                if any(record.indexed_at >= cutoff + CLOCK_SKEW for _, record in batch):
                    break
            self._raise_floors(floors)
        except redis.RedisError as exc:
            raise store_error(exc) from None
        return total

    def _raise_floors(self, floors: dict[int, int]) -> None:
        """Keep where each shard's oldest records start now, so that the next purge and
        every walk upwards start there instead of at the shard's first position. A version
        still being written (its intent kept, no record yet) holds its shard's floor at its
        position."""
        if not floors:
            return
        shards = list(floors)
        pipe = self.client.pipeline(transaction=False)
        for shard in shards:
            pipe.hget(self.keys.counters(shard), "floor")
            pipe.hkeys(self.keys.intents(shard))
        found = pipe.execute()
        pipe = self.client.pipeline(transaction=False)
        for shard, was, writing in zip(shards, found[::2], found[1::2], strict=True):
            floor = min([floors[shard], *(self.keys.shards.position(int(s)) for s in writing)])
            if floor > int(was or 1):  # positions below stay empty: raising it is safe
                pipe.hset(self.keys.counters(shard), "floor", floor)
        pipe.execute()

    def _remove(self, plans: dict[int, Plan]) -> tuple[int, list[int]]:
        """Delete these versions (steps 2, 4 and 5 without a new version); returns how many
        were deleted and the plans whose version was no longer current."""
        if not plans:
            return 0, []
        token = uuid.uuid4().hex
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
