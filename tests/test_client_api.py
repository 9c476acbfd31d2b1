"""The Python client: job handles, waiting for a report, fetch times, idempotent resubmission."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from dedup import Client
from dedup.errors import InputError, NotFoundError, ReportTimeoutError
from dedup.queue.handles import JobHandle
from dedup.settings import Settings
from tests.helpers import article, as_html, command


def test_handles_are_job_ids(settings: Settings) -> None:
    """A handle is the job id string callers always had, with the documents and a status."""
    client = Client(settings)
    job = client.submit(as_html(article(1)), url="https://example.com/a")
    jobs = client.submit_many(
        [{"id": f"d{n}", "html": as_html(article(10 + n))} for n in range(5)], batch_size=2
    )
    assert isinstance(job, str) and isinstance(job, JobHandle)
    assert job.id == str(job) and type(job.id) is str
    client.flush()  # a single submission waits up to submit_delay for others
    assert client.queue.fetch_job(job) is not None
    assert [["d0", "d1"], ["d2", "d3"], ["d4"]] == [list(j.doc_ids) for j in jobs]
    assert json.loads(json.dumps(jobs)) == [j.id for j in jobs]
    assert {"queued"} == {j.status() for j in [job, *jobs]}
    assert 0 == command(settings, "worker", "--burst").returncode
    assert {"finished"} == {j.status() for j in [job, *jobs]}
    assert "expired" == JobHandle("no-such-job", [], client.queue).status()


def test_report_wait_gives_up_with_a_reason(settings: Settings) -> None:
    """Waiting for a document nobody indexes ends in time, saying what the queue looks like."""
    client = Client(settings)
    client.submit(as_html(article(2)), doc_id="never-worked")
    started = time.monotonic()
    with pytest.raises(ReportTimeoutError) as caught:
        client.report("never-worked", wait=0.5)
    assert 0.5 <= time.monotonic() - started < 3
    message = str(caught.value)
    assert "no report for document 'never-worked' after 0.5 s" in message
    assert "1 job(s) queued, 0 failed, 0 worker(s); is a worker running?" in message
    assert isinstance(caught.value, NotFoundError)
    with pytest.raises(NotFoundError):
        client.report("never-worked")


def test_report_wait_returns_once_indexed(settings: Settings) -> None:
    """A report waited for arrives when a worker started later has indexed the document."""
    client = Client(settings)
    body = article(3)
    job = client.submit(as_html(body + body), url="https://example.com/doubled")
    worker = subprocess.Popen(  # starts as the client begins to wait
        [sys.executable, "-m", "dedup", "worker", "--burst"],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        report = client.report(job.doc_ids[0], wait=60)
    finally:
        _, stderr = worker.communicate(timeout=60)
    assert 0 == worker.returncode, stderr
    assert "https://example.com/doubled" == report["url"]
    assert "doubled_body" in report["flags"]


def test_report_command_waits_too(settings: Settings) -> None:
    """`dedup report --wait` gives up with the queue's state, and exits like a missing id."""
    Client(settings).submit(as_html(article(4)), doc_id="queued-only")
    result = command(settings, "report", "queued-only", "--wait", "0.3")
    assert 4 == result.returncode
    assert "no report for document 'queued-only' after 0.3 s" in result.stderr
    assert "is a worker running?" in result.stderr
    assert 0 == command(settings, "worker", "--burst").returncode
    shown = command(settings, "report", "queued-only", "--wait", "5", "--json")
    assert 0 == shown.returncode, shown.stderr
    assert "queued-only" == json.loads(shown.stdout)["doc_id"]


def test_fetched_at_travels_to_the_report(settings: Settings) -> None:
    """The fetch time given at submission is in the stored report, the first one of each
    version; a malformed one is refused."""
    client = Client(settings)
    client.submit(as_html(article(4)), doc_id="dated", fetched_at="2024-05-01T12:00:00Z")
    client.submit_many([{"id": "undated", "html": as_html(article(5))}])
    with pytest.raises(InputError, match="ISO 8601"):
        client.submit(as_html(article(6)), doc_id="bad", fetched_at="yesterday")
    with pytest.raises(InputError, match="ISO 8601"):
        client.submit_many([{"id": "bad", "text": "some words", "fetched_at": 12}])
    assert 0 == command(settings, "worker", "--burst").returncode
    assert "2024-05-01T12:00:00Z" == client.report("dated")["fetched_at"]
    assert client.report("undated")["fetched_at"] is None
    shown = command(settings, "report", "dated").stdout
    assert "fetched 2024-05-01T12:00:00Z" in shown
    assert "indexed 20" in shown
    client.submit(as_html(article(4)), doc_id="dated", fetched_at="2024-06-01T08:00:00Z")
    assert 0 == command(settings, "worker", "--burst").returncode
    # fetched again unchanged: the same version, first fetched then
    assert "2024-05-01T12:00:00Z" == client.report("dated")["fetched_at"]
    client.submit(as_html(article(7)), doc_id="dated", fetched_at="2024-07-01T08:00:00Z")
    assert 0 == command(settings, "worker", "--burst").returncode
    assert "2024-07-01T08:00:00Z" == client.report("dated")["fetched_at"]  # a new version


@pytest.mark.slow
def test_resubmission_is_idempotent(settings: Settings) -> None:
    """The same id and content submitted twice is indexed once; the second job changes nothing."""
    client = Client(settings)
    html = as_html(article(7))
    first = client.submit(html, url="https://example.com/same")
    assert 0 == command(settings, "worker", "--burst").returncode
    before = client.report(first.doc_ids[0])
    second = client.submit(html, url="https://example.com/same")
    assert first.doc_ids == second.doc_ids and first.id != second.id
    assert 0 == command(settings, "worker", "--burst").returncode
    job = client.queue.fetch_job(second.id)
    assert job is not None and {"indexed": 0, "unchanged": 1, "rejected": []} == {
        k: v for k, v in job.return_value().items() if k != "documents"
    }
    assert before == client.report(first.doc_ids[0])


def _env(settings: Settings) -> dict[str, str]:
    """The environment of a dedup subprocess on the test Redis."""
    return {
        **os.environ,
        "DEDUP_REDIS_URL": str(settings.redis_url),
        "DEDUP_NAMESPACE": settings.namespace,
    }
