"""The index on a real Redis Cluster, the queue on a standalone Redis, real worker processes.

Workers killed mid-batch, two workers racing on near duplicates whose writes land on
different masters, a master killed (its replica takes over) and slots moved while workers
write: each run ends with the index a worker would build from scratch. Marked ``cluster``:
``make test-cluster`` runs them, and CI runs that too.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from dedup.client import Client
from dedup.index.keys import Keys
from dedup.index.store import Store
from dedup.pipeline.document import Document
from dedup.settings import Settings
from tests.cluster import LocalCluster
from tests.consistency import assert_consistent, assert_flags_match_reports
from tests.helpers import (
    article,
    as_html,
    assert_pairs_listed,
    burst,
    corpus,
    edit_words,
    invoke,
    start_worker,
    submit_near_pairs,
    wait_for,
)
from tests.test_faults import recover_abandoned

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


@pytest.fixture
def split(
    redis_url: str, redis_client: redis.Redis, redis_cluster: LocalCluster, tmp_path: Path
) -> Settings:
    """The queue on the test server, the index on the shared cluster (both emptied)."""
    redis_cluster.flush()
    return _split(redis_url, redis_cluster, tmp_path)


def _split(redis_url: str, cluster: LocalCluster, tmp_path: Path, **more: object) -> Settings:
    """Settings with the queue on the test server and the index on ``cluster``."""
    return Settings(
        redis_url=redis_url,
        index_url=cluster.url,
        data_dir=tmp_path / "data",
        retry_backoff=0.0,
    ).replace(**more)


def _indexed(store: Store) -> int:
    return store.stats()["documents"]


def test_two_workers_racing_on_near_duplicates_across_masters(
    split: Settings, redis_cluster: LocalCluster
) -> None:
    """Pairs of near-identical documents, written at the same moment by two workers (their
    id entries and records in groups on different masters), list each other."""
    pairs = submit_near_pairs(split)
    burst(split, "--processes", "2")
    store = Store(redis_cluster.client(), split)
    homes = {redis_cluster.node_for_slot(_slot(store.keys, d)).port for p in pairs for d in p}
    assert len(homes) == 3, "the documents live on every master"
    assert_pairs_listed(store, pairs)


def _slot(keys: Keys, doc_id: str) -> int:
    """The hash slot of a document's group."""
    from redis.crc import key_slot

    return int(key_slot(keys.counters(keys.shards.of_id(doc_id)).encode()))


@pytest.mark.parametrize("run", range(3))
def test_worker_killed_mid_bulk_job_loses_nothing(
    split: Settings, redis_client: redis.Redis, redis_cluster: LocalCluster, run: int
) -> None:
    """SIGKILL at a random moment; RQ's abandoned-job handling retries on the queue's server;
    every document is indexed once on the cluster, nothing half-written."""
    settings = split.replace(batch_size=60)
    documents = corpus(300, seed=40 + run)
    Client(settings).submit_many(documents)
    index = redis_cluster.client()
    store = Store(index, settings)
    worker = start_worker(settings)
    target = random.Random(run).randint(1, len(documents) - 1)
    wait_for(lambda: _indexed(store) >= target, timeout=120)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    recover_abandoned(settings, redis_client)
    burst(settings)
    assert_consistent(index, settings, documents)


def _bulk_run_through(
    settings: Settings,
    cluster: LocalCluster,
    documents: list[Document],
    event: Callable[[], None],
    tmp_path: Path,
) -> float:
    """Two workers index ``documents`` while ``event`` happens to the cluster once a third is
    indexed; returns the seconds from the event's end to the last document indexed."""
    Client(settings).submit_many(documents)
    store = Store(cluster.client(), settings)
    log = tmp_path / "workers.log"
    with log.open("wb") as out:
        workers = [start_worker(settings, log=out) for _ in range(2)]
        try:
            wait_for(lambda: _indexed(store) >= len(documents) // 3, timeout=180)
            event()
            done = time.monotonic()
            try:
                wait_for(lambda: _indexed(_fresh(cluster, settings)) >= len(documents), 240)
            except AssertionError:
                tail = log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"not every document was indexed; workers: {tail}") from None
            return time.monotonic() - done
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=60)


def _fresh(cluster: LocalCluster, settings: Settings) -> Store:
    """A store on a client that learns the slot map anew (after a failover or a move)."""
    return Store(cluster.client(), settings)


def test_a_master_killed_during_a_bulk_run(
    make_cluster: Callable[..., LocalCluster],
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    """A master with a replica is killed while two workers write: its replica takes over, the
    jobs in flight are retried, and the run ends with every document indexed once."""
    cluster = make_cluster(masters=3, replicas=1)
    settings = _split(redis_url, cluster, tmp_path, batch_size=50)
    documents = corpus(900, seed=77)
    victim = cluster.masters()[0].port
    took: list[float] = []

    def kill_master() -> None:
        started = time.monotonic()
        cluster.fail_over(victim)
        took.append(time.monotonic() - started)

    recovered = _bulk_run_through(settings, cluster, documents, kill_master, tmp_path)
    print(f"\nfailover took {took[0]:.1f} s; the run finished {recovered:.1f} s later")
    index = cluster.client()
    assert_consistent(index, settings, documents)
    assert_flags_match_reports(Store(index, settings))


def test_slots_moved_during_a_bulk_run(
    make_cluster: Callable[..., LocalCluster],
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    """Resharding while two workers write (keys answered with ASK and MOVED on the way): the
    run ends with every document indexed once, and the moved slots on their new master."""
    cluster = make_cluster(masters=3)
    settings = _split(redis_url, cluster, tmp_path, batch_size=50)
    documents = corpus(900, seed=78)
    source, target = (m.port for m in cluster.masters()[:2])
    moving = threading.Event()

    def move() -> None:
        moving.set()
        cluster.migrate_slots(300, source, target)

    _bulk_run_through(settings, cluster, documents, move, tmp_path)
    assert moving.is_set()
    assert cluster.by_port(target).slot_count >= 5461 + 300 - 1
    index = cluster.client()
    assert_consistent(index, settings, documents)
    assert_flags_match_reports(Store(index, settings))


def test_no_master_does_more_than_its_share(redis_cluster: LocalCluster, tmp_path: Path) -> None:
    """Nothing every document writes goes to one key: indexing 2,000 documents, each of the
    3 masters (a third of the slots each) runs within 15% of a third of the scripts and
    holds within 15% of a third of the index's keys, and no key is written by more than a
    few per cent of the documents."""
    redis_cluster.flush()
    settings = Settings(data_dir=tmp_path / "data", namespace="spread")
    store = Store(redis_cluster.client(), settings)
    documents = corpus(2000, seed=91)
    from dedup.pipeline.analysis import analyse

    analyses = [analyse(d, settings) for d in documents]
    redis_cluster.reset_stats()
    for first in range(0, len(analyses), 200):
        store.index(analyses[first : first + 200])
    stats = redis_cluster.stats()
    scripts = [s.commands.get("evalsha", 0) for s in stats.values()]
    keys = [s.dbsize for s in stats.values()]
    for name, counts in (("scripts", scripts), ("keys", keys)):
        mean = sum(counts) / len(counts)
        assert all(abs(n - mean) <= 0.15 * mean for n in counts), (name, counts)
    # Serials, counters, records, intents and flag bits of a document are its group's: the
    # busiest group took a small share of the documents, never all of them.
    per_group = [
        int(store.client.hget(store.keys.counters(g), "documents") or 0)
        for g in range(store.keys.shards.count)
    ]
    assert len(documents) == sum(per_group)
    assert max(per_group) <= 2 * len(documents) // len(per_group), max(per_group)


def test_reports_on_a_cluster_equal_those_on_one_server(
    redis_cluster: LocalCluster, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The same documents indexed on one server and on a 3-master cluster give the same
    reports, field for field (but the time each was indexed), the same lists and stats."""
    redis_cluster.flush()
    settings = Settings(data_dir=tmp_path / "data", boilerplate_min_documents=4)
    rng = random.Random(8)
    banner = "Sign up for our newsletter to get the best stories of the day delivered to you."
    stories = [article(300 + n, 8) for n in range(6)]
    documents = [
        *(
            Document(f"s{n}", as_html([*body, banner]), fetched_at=f"2024-05-0{n + 1}T08:00:00Z")
            for n, body in enumerate(stories)
        ),
        *(
            Document(
                f"copy{n}",
                as_html([edit_words(p, rng, 1) for p in body]),
                fetched_at="2024-06-01T08:00:00Z",
            )
            for n, body in enumerate(stories[:3])
        ),
        Document("twin", as_html([*stories[4], banner]), fetched_at="2024-06-02T08:00:00Z"),
        Document("excerpt", as_html([*article(400, 5), stories[5][2]])),
        *corpus(60, seed=5),
    ]
    from dedup.pipeline.analysis import analyse

    stores = [Store(redis_client, settings), Store(redis_cluster.client(), settings)]
    for store in stores:
        for first in range(0, len(documents), 25):  # batches, as workers write them
            store.index([analyse(d, settings) for d in documents[first : first + 25]])

    def seen(store: Store) -> dict[str, object]:
        reports = {d.doc_id: dict(store.report(d.doc_id)) for d in documents}
        for report in reports.values():
            report.pop("indexed_at", None)
        return reports

    server, cluster = (seen(store) for store in stores)
    differ = {d: (server[d], cluster[d]) for d in server if server[d] != cluster[d]}
    assert not differ, {
        d: [(k, a[k], b.get(k)) for k in a if a[k] != b.get(k)] for d, (a, b) in differ.items()
    }
    assert stores[0].stats() == stores[1].stats()
    for flag in ("near_duplicate", "exact_duplicate", "boilerplate"):
        listed = [{r["doc_id"] for r in s.list_documents(flag, 1000)} for s in stores]
        assert listed[0] == listed[1], flag
        assert listed[0], f"the documents carry {flag}"


def test_every_copy_of_a_hot_page_reports_the_group_dedup_groups_lists(
    split: Settings, redis_cluster: LocalCluster
) -> None:
    """On 3 masters the samples of a page's entries are read in each master's own order: a
    report, which places its document from a sample of its matches, still names the group
    and canonical ``dedup groups`` lists, for copies and near copies alike (600 copies: past
    the intset of a set, read in no order), and none for a document in no group."""
    from dedup.pipeline.analysis import analyse

    rng = random.Random(3)
    page = article(5, 4)
    documents = [Document(f"copy-{n}", as_html(page)) for n in range(600)]
    for n in range(0, 600, 20):
        edited = [edit_words(p, rng, 1) if k == n % 4 else p for k, p in enumerate(page)]
        documents.insert(n + n // 20, Document(f"near-{n}", as_html(edited)))
    documents.append(Document("alone", as_html(article(77, 4))))
    store = Store(redis_cluster.client(), split)
    for first in range(0, len(documents), 100):
        store.index([analyse(d, split) for d in documents[first : first + 100]])
    printed = invoke(split, "--index-url", str(split.index_url), "groups", "--json").output
    listed = [json.loads(line) for line in printed.splitlines()]
    group_of = {m["doc_id"]: (g["group"], g["canonical"]) for g in listed for m in g["members"]}
    assert {f"copy-{n}" for n in range(600)} <= group_of.keys()
    near = [d.doc_id for d in documents if d.doc_id.startswith("near-")]
    picked = [*(f"copy-{n}" for n in rng.sample(range(600), 20)), "copy-0", *near, "alone"]
    for doc_id in picked:
        report = store.report(doc_id)
        found = (report.get("group"), report.get("canonical"))
        assert group_of.get(doc_id, (None, None)) == found, doc_id
