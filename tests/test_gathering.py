"""Single submissions gathered into bulk jobs: by the client and by ``dedup serve``, answered
once queued, never lost when the process stops (real processes, real Redis)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from rq.job import Job

from dedup import Client
from dedup.errors import StoreError
from dedup.queue.handles import GATHERED
from dedup.settings import Settings
from tests.helpers import article, as_html, burst, wait_for, worker_env
from tests.servers import AppendOnlyRedis
from tests.web_server import Server, running_server

SUBMITTER = """
import sys, time
from dedup import Client
client = Client()
for n in range(3):
    print(client.submit("<p>word %d of a page gathered before it stops</p>" % n, doc_id="p%d" % n),
          flush=True)
if sys.argv[1] == "wait":
    time.sleep(120)
"""


def _carried(redis_client: redis.Redis, job_id: str) -> list[str]:
    """Ids of the documents a queued job carries."""
    from rq.serializers import JSONSerializer

    job = Job.fetch(job_id, connection=redis_client, serializer=JSONSerializer)
    return [payload["id"] for payload in job.args[0]]


def _metric(server: Server, name: str) -> float:
    """One figure of the server's metrics."""
    with server.client() as api:
        for line in api.get("/metrics").text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def _gathered(server: Server) -> float:
    """Documents the server holds for their batch."""
    return _metric(server, "dedup_gathered_documents")


def _submitting(server: Server) -> float:
    """Submission requests in progress."""
    return _metric(server, "dedup_submissions_in_progress")


def test_single_submissions_share_jobs(settings: Settings, redis_client: redis.Redis) -> None:
    """Documents submitted one by one leave as jobs of batch_size, the rest on flush."""
    client = Client(settings.replace(submit_delay=30.0, batch_size=3))
    handles = [client.submit(as_html(article(n)), doc_id=f"d{n}") for n in range(7)]
    assert 3 == len({h.id for h in handles})
    assert [h.id for h in handles[:3]] == [handles[0].id] * 3
    assert [h.id for h in handles[3:6]] == [handles[3].id] * 3
    assert GATHERED == handles[6].status()
    client.flush()
    assert {"queued"} == {h.status() for h in handles}
    assert ["d0", "d1", "d2"] == _carried(redis_client, handles[0].id)
    assert ["d6"] == _carried(redis_client, handles[6].id)
    assert 3 == client.queue.count
    burst(settings)
    assert client.store.exists("d6")


def test_no_delay_queues_each_submission_before_returning(settings: Settings) -> None:
    """submit_delay = 0: the job is queued when submit returns, one per document."""
    client = Client(settings.replace(submit_delay=0.0))
    first = client.submit(as_html(article(1)), doc_id="a")
    second = client.submit(as_html(article(2)), doc_id="b")
    assert first.id != second.id
    assert {"queued"} == {first.status(), second.status()}


def test_the_delay_sends_a_waiting_batch(settings: Settings) -> None:
    """A batch that does not fill leaves after the delay, without a flush."""
    client = Client(settings.replace(submit_delay=0.05))
    handle = client.submit(as_html(article(3)), doc_id="alone")
    wait_for(lambda: handle.status() == "queued", timeout=30)


def test_closed_client_refuses_and_unreachable_redis_is_reported(
    settings: Settings, tmp_path: Path
) -> None:
    """After close nothing more is taken; a batch Redis did not get is reported, kept, and
    queued once Redis is back, and submissions are taken again."""
    with Client(settings.replace(submit_delay=30.0)) as client:
        client.submit(as_html(article(4)), doc_id="in-time")
    assert 1 == client.queue.count
    with pytest.raises(StoreError, match="closed"):
        client.submit(as_html(article(5)), doc_id="too-late")
    server = AppendOnlyRedis(tmp_path)
    server.start()
    try:
        down = Client(settings.replace(submit_delay=30.0, redis_url=server.url))
        kept = down.submit(as_html(article(6)), doc_id="kept")
        server.kill()
        with pytest.raises(StoreError, match="could not enqueue"):
            down.flush()
        with pytest.raises(StoreError, match="could not enqueue"):
            down.submit(as_html(article(7)), doc_id="refused")
        assert GATHERED == kept.status()
        server.start()
        wait_for(lambda: kept.status() == "queued", timeout=60)  # sent again on its own
        down.submit(as_html(article(8)), doc_id="after")  # taken again
        down.close()
        assert 2 == down.queue.count
    finally:
        server.stop()


@pytest.mark.parametrize("stop", ["exit", "interrupt"])
def test_a_stopping_process_sends_what_it_gathered(
    settings: Settings, redis_client: redis.Redis, stop: str
) -> None:
    """A script that ends, or is interrupted, with documents still gathered queues them."""
    with subprocess.Popen(
        [sys.executable, "-c", SUBMITTER, "wait" if stop == "interrupt" else "exit"],
        env=worker_env(settings, DEDUP_SUBMIT_DELAY="60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        assert process.stdout is not None
        job_ids = {process.stdout.readline().strip() for _ in range(3)}
        assert 1 == len(job_ids)
        if stop == "interrupt":
            process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert ["p0", "p1", "p2"] == _carried(redis_client, job_ids.pop())


def _post(server: Server, document: dict[str, str]) -> httpx.Response:
    """Post one document on a connection of its own."""
    with server.client() as api:
        return api.post("/v1/documents", json=document)


def _slow_post(server: Server, document: dict[str, str], release: threading.Event) -> Any:
    """A thread posting ``document`` whose body stops half-way until ``release``; the answer
    lands in the returned list."""
    answers: list[httpx.Response] = []
    body = json.dumps(document).encode()

    def arriving() -> Iterator[bytes]:
        yield body[:100]
        release.wait(timeout=120)
        yield body[100:]

    def post() -> None:
        with server.client() as api:
            headers = {"Content-Type": "application/json"}
            answers.append(api.post("/v1/documents", content=arriving(), headers=headers))

    thread = threading.Thread(target=post)
    thread.start()
    wait_for(lambda: _submitting(server) == 1, timeout=30)
    return thread, answers


def test_api_answers_a_single_submission_once_queued(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Each 202 names a job already queued with the document; a request alone leaves at
    once, and requests in progress together share a job."""
    env = {"DEDUP_SUBMIT_DELAY": "60"}
    with running_server(str(settings.redis_url), settings.namespace, env=env) as server:
        with server.client() as api:
            response = api.post("/v1/documents", json={"id": "one", "html": as_html(article(1))})
            assert 202 == response.status_code
            (job_id,) = response.json()["jobs"]
            assert ["one"] == _carried(redis_client, job_id)

        release = threading.Event()
        slow, slow_answers = _slow_post(server, {"id": "s", "html": as_html(article(2))}, release)
        with ThreadPoolExecutor(1) as pool:
            other = pool.submit(_post, server, {"id": "t", "html": as_html(article(3))})
            wait_for(lambda: _gathered(server) == 1, timeout=30)
            release.set()
            slow.join(timeout=60)
            together = other.result(timeout=60)
        assert [202, 202] == [slow_answers[0].status_code, together.status_code]
        assert slow_answers[0].json()["jobs"] == together.json()["jobs"]
        assert ["t", "s"] == _carried(redis_client, together.json()["jobs"][0])

        def post(n: int) -> None:
            with server.client() as api:
                document = {"id": f"c{n}", "html": as_html(article(10 + n))}
                answer = api.post("/v1/documents", json=document)
                assert 202 == answer.status_code
                assert f"c{n}" in _carried(redis_client, answer.json()["jobs"][0])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(post, range(24)))
    burst(settings)
    assert Client(settings).store.exists("c23")


def test_stopping_the_server_sends_the_gathered_documents(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """A request waiting for its batch when the server is told to stop is answered 202 with
    its job queued, and so is one whose body was still arriving; then the server stops."""
    env = {"DEDUP_SUBMIT_DELAY": "60"}
    with running_server(str(settings.redis_url), settings.namespace, env=env) as server:
        release = threading.Event()
        slow, slow_answers = _slow_post(
            server, {"id": "slow", "html": as_html(article(3))}, release
        )
        with ThreadPoolExecutor(1) as pool:
            # the slow request in progress keeps this one waiting for it, until the signal
            held = pool.submit(_post, server, {"id": "held", "html": as_html(article(2))})
            wait_for(lambda: _gathered(server) == 1, timeout=30)
            server.process.send_signal(signal.SIGTERM)
            answer = held.result(timeout=60)
        assert 202 == answer.status_code
        assert ["held"] == _carried(redis_client, answer.json()["jobs"][0])
        release.set()
        slow.join(timeout=60)
        # uvicorn stops cleanly, then ends by the signal it was sent
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    assert [202] == [a.status_code for a in slow_answers]
    assert ["slow"] == _carried(redis_client, slow_answers[0].json()["jobs"][0])
