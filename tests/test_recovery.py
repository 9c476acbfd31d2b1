"""Recovery in real time: a crashed worker's job, Redis killed under a running worker.

Nothing here moves a clock: real worker processes (``python -m dedup worker``), real Redis
servers killed with SIGKILL, and the wall time it takes until every document is indexed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from rq import Worker
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.scheduler import RQScheduler

from dedup.client import Client
from dedup.index.store import Store
from dedup.pipeline.document import Document
from dedup.queue.queues import make_queue
from dedup.servers.embedded import ensure_server, stop_server
from dedup.settings import Settings
from tests.consistency import assert_consistent
from tests.helpers import corpus, start_worker, wait_for, worker_env
from tests.servers import AppendOnlyRedis

RECOVERY_LIMIT = 120.0
"""Seconds from a worker's crash until the others have indexed its job's documents."""
OUTAGE = 45.0
"""Seconds Redis stays down: longer than any retry window of redis-py's client."""
LOST = "lost Redis"
BACK = "Redis is back"


def stop(worker: subprocess.Popen[bytes]) -> None:
    """Stop a worker process and the scheduler it forked."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def indexed(client: redis.Redis, settings: Settings) -> int:
    """Documents indexed so far, 0 while Redis is away."""
    try:
        return int(Store(client, settings).stats()["documents"])
    except redis.RedisError:
        return 0


def all_indexed(client: redis.Redis, settings: Settings, documents: list[Document]) -> bool:
    """Every document indexed, and no job on the queue, under way or waiting to be tried
    again: a write counts its documents at its commit and finishes the work it owes after,
    so a job cut off in between is retried with its documents counted already."""
    try:
        queue = make_queue(settings, client)
        return (
            0 == queue.count
            and 0 == StartedJobRegistry(queue=queue).count
            and 0 == ScheduledJobRegistry(queue=queue).count
            and len(documents) == indexed(client, settings)
        )
    except redis.RedisError:
        return False


def done_or_exited(
    worker: subprocess.Popen[bytes],
    client: redis.Redis,
    settings: Settings,
    documents: list[Document],
) -> bool:
    """Every document indexed, or the worker gone (then there is no point waiting)."""
    return worker.poll() is not None or all_indexed(client, settings, documents)


def job_in_progress(
    client: redis.Redis, settings: Settings, store: Store, pid: int
) -> list[str] | None:
    """The documents of the job the worker process ``pid`` is in the middle of, if any."""
    queue = make_queue(settings, client)
    names = {w.name for w in Worker.all(queue=queue) if w.pid == pid}
    for job_id in StartedJobRegistry(queue=queue).get_job_ids(cleanup=False):
        job = queue.fetch_job(job_id)
        if job is None or job.worker_name not in names:
            continue
        doc_ids = [str(payload["id"]) for payload in job.args[0]]
        if not all(store.exists(doc_id) for doc_id in doc_ids):
            return doc_ids
    return None


def log_lines(log: Path, text: str) -> list[str]:
    """Lines of a worker log that contain ``text``."""
    return [line for line in log.read_text(errors="replace").splitlines() if text in line]


@pytest.mark.soak  # a minute or more of real time: with the cluster tests (CI too)
def test_killed_worker_job_indexed_by_the_other_worker_within_two_minutes(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """SIGKILL mid bulk job: the other worker indexes its documents in < 2 min, each once."""
    documents = corpus(2000, seed=11)
    Client(settings).submit_many(documents)
    store = Store(redis_client, settings)
    env = worker_env(settings, DEDUP_RETRY_BACKOFF=str(settings.retry_backoff))  # as users run
    with (
        (tmp_path / "victim.log").open("wb") as log_a,
        (tmp_path / "other.log").open("wb") as log_b,
    ):
        victim = start_worker(settings, log=log_a, env=env)
        # The victim takes the scheduler lock, so the retry of its job waits for that lock
        # to expire before the other worker's scheduler enqueues it: the slow case.
        wait_for(lambda: redis_client.exists(RQScheduler.get_locking_key(settings.queue)), 60)
        other = start_worker(settings, log=log_b, env=env)
        try:
            found: list[list[str]] = []

            def caught_mid_job() -> bool:
                doc_ids = job_in_progress(redis_client, settings, store, victim.pid)
                if doc_ids:
                    found.append(doc_ids)
                return bool(doc_ids)

            wait_for(caught_mid_job, timeout=120)
            os.killpg(victim.pid, signal.SIGKILL)  # the worker and its scheduler, as a crash
            killed_at = time.monotonic()
            victim.wait()
            orphaned = [doc_id for doc_id in found[0] if not store.exists(doc_id)]
            assert orphaned, "the kill came after the job was done"
            wait_for(lambda: all(store.exists(d) for d in orphaned), timeout=RECOVERY_LIMIT + 60)
            recovery = time.monotonic() - killed_at
            print(f"\nrecovered {len(orphaned)} documents of the killed job in {recovery:.1f} s")
            assert recovery < RECOVERY_LIMIT
            wait_for(lambda: all_indexed(redis_client, settings, documents), timeout=120)
            assert other.poll() is None
        finally:
            stop(other)
    assert_consistent(redis_client, settings, documents)


@pytest.mark.soak  # a minute or more of real time: with the cluster tests (CI too)
def test_worker_outlives_a_redis_outage(tmp_path: Path) -> None:
    """Redis (append-only file) killed mid run, back 45 s later: the worker goes on."""
    server = AppendOnlyRedis(tmp_path)
    server.start()
    settings = Settings(redis_url=server.url, data_dir=tmp_path / "data", batch_size=50)
    documents = corpus(1000, seed=12)
    Client(settings).submit_many(documents)
    log = tmp_path / "worker.log"
    client = redis.Redis.from_url(server.url, socket_connect_timeout=1, socket_timeout=5)
    with log.open("wb") as out:
        env = worker_env(settings, DEDUP_RETRY_BACKOFF=str(settings.retry_backoff))
        worker = start_worker(settings, log=out, env=env)
        try:
            wait_for(lambda: indexed(client, settings) >= 100, timeout=120)
            server.kill()
            time.sleep(OUTAGE)
            assert worker.poll() is None, log.read_text()
            server.start()
            wait_for(lambda: done_or_exited(worker, client, settings, documents), timeout=120)
            assert worker.poll() is None, log.read_text()
            assert_consistent(client, settings, documents)
        finally:
            stop(worker)
            server.stop()
    assert 1 == len(log_lines(log, LOST)), log.read_text()
    assert 1 == len(log_lines(log, BACK)), log.read_text()


def test_a_worker_setting_its_state_waits_out_an_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """RQ marks a worker idle before each dequeue, outside its own handling of a lost
    connection: Redis away at that moment, the worker waits for it (one line when it goes,
    one when it is back) and writes its state, instead of leaving its work loop."""
    from workers.main import make_worker

    server = AppendOnlyRedis(tmp_path)
    server.start()
    try:
        settings = Settings(redis_url=server.url, data_dir=tmp_path / "data")
        connection = redis.Redis.from_url(server.url, socket_connect_timeout=1, socket_timeout=5)
        worker = make_worker(settings, connection)
        worker.register_birth()
        server.kill()
        back = threading.Timer(3.0, server.start)
        back.start()
        started = time.monotonic()
        worker.set_state("idle")
        back.join()
        assert time.monotonic() - started >= 3.0
        assert b"idle" == connection.hget(worker.key, "state")
        assert 1 == sum(LOST in r.getMessage() for r in caplog.records)
        assert 1 == sum(BACK in r.getMessage() for r in caplog.records)
    finally:
        server.stop()


@pytest.mark.slow
def test_worker_starts_the_embedded_server_again(tmp_path: Path) -> None:
    """The embedded server killed under a running worker: the worker starts it and goes on."""
    data = tmp_path / "data"
    url = ensure_server(data)
    settings = Settings(redis_url=None, data_dir=data, batch_size=50)
    env = {k: v for k, v in os.environ.items() if k != "DEDUP_REDIS_URL"}
    env["DEDUP_DATA_DIR"] = str(data)
    documents = corpus(1000, seed=13)
    Client(settings).submit_many(documents)
    log = tmp_path / "worker.log"
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
    try:
        with log.open("wb") as out:
            worker = start_worker(settings, log=out, env=env)
            try:
                wait_for(lambda: indexed(client, settings) >= 100, timeout=120)
                os.kill(int((data / "redis.pid").read_text()), signal.SIGKILL)
                wait_for(lambda: done_or_exited(worker, client, settings, documents), 120)
                assert worker.poll() is None, log.read_text()
            finally:
                stop(worker)
        assert_consistent(client, settings, documents)
    finally:
        stop_server(data)
    assert 1 == len(log_lines(log, LOST)), log.read_text()
    assert 1 == len(log_lines(log, BACK)), log.read_text()


@pytest.mark.slow
def test_a_running_job_keeps_beating(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A job running longer than a heartbeat interval keeps its execution alive, unretried."""
    from workers.main import HEARTBEAT_GRACE, HEARTBEAT_INTERVAL

    queue = make_queue(settings, redis_client)
    job = queue.enqueue("time.sleep", HEARTBEAT_INTERVAL + 3, retry=None)
    registry = StartedJobRegistry(queue=queue)
    with (tmp_path / "worker.log").open("wb") as log:
        env = worker_env(settings, DEDUP_RETRY_BACKOFF=str(settings.retry_backoff))
        worker = start_worker(settings, log=log, env=env)
        try:

            def expiry() -> float:  # the score of the job's execution in the started registry
                scores = redis_client.zrange(registry.key, 0, -1, withscores=True)
                return max((score for _, score in scores), default=0.0)

            wait_for(lambda: expiry() > 0, timeout=60)
            first = expiry()
            assert first <= time.time() + HEARTBEAT_INTERVAL + HEARTBEAT_GRACE + 1
            wait_for(lambda: expiry() > first, timeout=HEARTBEAT_INTERVAL + 5)
            registry.cleanup()  # what another worker's maintenance does: nothing to take
            assert "started" == job.get_status()
            wait_for(lambda: "finished" == job.get_status(), timeout=30)
        finally:
            stop(worker)


@pytest.mark.slow
def test_a_worker_stops_while_redis_is_away(tmp_path: Path) -> None:
    """SIGTERM while Redis is down stops the worker and its scheduler, in one log line."""
    server = AppendOnlyRedis(tmp_path)
    server.start()
    settings = Settings(redis_url=server.url, data_dir=tmp_path / "data")
    log_path = tmp_path / "worker.log"
    worker = None
    try:
        with log_path.open("wb") as log:
            worker = start_worker(settings, log=log)
            connection = redis.Redis.from_url(server.url)
            # past its start (RQ installs its signal handlers then), waiting for work
            wait_for(lambda: [w.get_state() for w in Worker.all(connection)] == ["idle"], 30)
            server.kill()
            time.sleep(2)
            started = time.monotonic()
            os.kill(worker.pid, signal.SIGTERM)  # the worker only, as a user's Ctrl+C or kill
            assert 0 == worker.wait(timeout=60)
            took = time.monotonic() - started
    finally:
        if worker is not None:
            stop(worker)  # on a failure, the worker and its scheduler must not outlive the test
        server.stop()
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text and "unexpected" not in text
    assert "stopped; Redis is away" in text
    assert took < 30.0
