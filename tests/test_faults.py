"""Faults: workers killed mid-job, racing workers, retries, retention.

Recovery in real time (a killed worker's job, Redis outages) is in ``test_recovery.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest
import redis
from rq import SimpleWorker
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from dedup.client import Client
from dedup.errors import StoreError
from dedup.index.store import Store
from dedup.pipeline.document import Document
from dedup.queue.queues import make_queue
from dedup.settings import Settings
from tests.consistency import assert_consistent
from tests.helpers import (
    article,
    as_html,
    assert_pairs_listed,
    burst,
    command,
    corpus,
    start_worker,
    submit_near_pairs,
    wait_for,
)

KILL_RUNS = 10


def recover_abandoned(settings: Settings, connection: redis.Redis) -> None:
    """Run RQ's own handling of jobs a killed worker left behind, as of a few minutes later.

    A job being executed expires from the started registry when its heartbeat TTL (30 s,
    ``workers/main.py``) runs out; a job taken off the queue but not yet started sits in the
    intermediate queue until a worker has seen it there for over a minute. Ten kill points in
    real time would take ten minutes, so this test runs the cleanup with the clock of that
    later moment; ``test_recovery.py`` waits for the real thing, once.
    """
    queue = make_queue(settings, connection)
    StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 3600)
    intermediate = queue.intermediate_queue
    stuck = intermediate.get_job_ids()
    for job_id in stuck:
        connection.set(intermediate.get_first_seen_key(job_id), time.time() - 3600)
    if stuck:
        worker = SimpleWorker([queue], connection=connection, serializer=JSONSerializer)
        intermediate.cleanup(worker, queue)


@pytest.fixture
def fast_retry(settings: Settings) -> Settings:
    """Settings whose failed jobs are retried at once."""
    return settings.replace(retry_backoff=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("run", range(KILL_RUNS))
def test_worker_killed_mid_bulk_job_loses_nothing(
    fast_retry: Settings, redis_client: redis.Redis, run: int
) -> None:
    """SIGKILL at a random moment; RQ's abandoned-job handling retries; each doc indexed once."""
    settings = fast_retry.replace(batch_size=60)
    documents = corpus(300, seed=run)
    client = Client(settings)
    client.submit_many(documents)
    store = Store(redis_client, settings)
    worker = start_worker(settings)
    target = random.Random(run).randint(1, len(documents) - 1)
    wait_for(lambda: store.stats()["documents"] >= target, timeout=120)
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and the scheduler it forked, as a crash
    worker.wait()
    indexed_at_kill = store.stats()["documents"]
    recover_abandoned(settings, redis_client)
    burst(settings)
    assert 0 < indexed_at_kill <= len(documents)
    assert_consistent(redis_client, settings, documents)


@pytest.mark.slow
def test_two_workers_racing_on_near_identical_documents(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Pairs of near-identical documents analysed at the same moment list each other."""
    pairs = submit_near_pairs(settings)
    burst(settings, "--processes", "2")
    assert_pairs_listed(Store(redis_client, settings), pairs)


@pytest.mark.slow
def test_retries_then_failed_then_requeue(settings: Settings, redis_client: redis.Redis) -> None:
    """A job failing on every try ends in `dedup failed` with its reason; requeued, it works."""
    settings = settings.replace(retries=2, retry_backoff=0.0)
    store = Store(redis_client, settings)
    counters = store.keys.counters(store.keys.shards.of_id("victim"))
    redis_client.set(counters, "not a hash")  # every write of the victim's group now fails
    Client(settings).submit(as_html(article(77)), doc_id="victim")
    burst(settings)
    failed = [
        json.loads(line) for line in command(settings, "failed", "--json").stdout.splitlines()
    ]
    assert 1 == len(failed)
    assert ["victim"] == failed[0]["documents"]
    assert "WRONGTYPE" in failed[0]["reason"]
    assert failed[0]["failed_at"]
    job = make_queue(settings, redis_client).fetch_job(failed[0]["job_id"])
    assert job is not None and 0 == job.retries_left
    redis_client.delete(counters)  # readers need the shard's counters too (its depths)
    assert not store.exists("victim")
    assert "requeued 1 job(s)" in command(settings, "requeue", "--all").stdout
    burst(settings)
    assert store.exists("victim")
    assert "" == command(settings, "failed", "--json").stdout
    assert_consistent(redis_client, settings, [Document("victim", as_html(article(77)))])


def test_unreachable_redis_for_the_client() -> None:
    """The Python client raises one clear error when Redis cannot be reached."""
    with pytest.raises(StoreError, match=r"cannot reach Redis at redis://:\*\*\*@127.0.0.1:1/0"):
        Client(Settings(redis_url="redis://:hunter2@127.0.0.1:1/0"))


def test_delete_and_purge_keep_the_rest_correct(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Deleting documents removes every trace of them and fixes their twins' flags."""
    from dedup.pipeline.analysis import analyse

    store = Store(redis_client, settings.replace(boilerplate_min_documents=3))
    documents = corpus(10, seed=3)
    banner = "Sign up for our newsletter to get the best stories of the day delivered to you."
    documents = [Document(d.doc_id, d.body + f"<p>{banner}</p>") for d in documents]
    analyses = [analyse(d, store.settings) for d in documents]
    long_ago = Store(redis_client, store.settings, clock=lambda: time.time() - 40 * 86400)
    long_ago.index(analyses[:2])
    store.index(analyses[2:])
    assert {"doc-3", "doc-4"} <= {r["doc_id"] for r in store.list_documents("near_duplicate", 99)}
    assert 2 == store.delete(["doc-4", "doc-9", "missing"])
    assert "doc-3" not in {r["doc_id"] for r in store.list_documents("near_duplicate", 99)}
    kept = [d for d in documents if d.doc_id not in ("doc-4", "doc-9")]
    assert_consistent(redis_client, store.settings, kept)
    assert not store.exists("doc-4")
    assert 2 == store.purge(30 * 86400)
    assert_consistent(redis_client, store.settings, kept[2:])
