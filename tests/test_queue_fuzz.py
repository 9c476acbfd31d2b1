"""Hostile batches through the whole queue: the edge, a real worker process and the reports.

Generated batches mix good documents with hostile ones (ids and URLs with lone surrogates
and NUL, huge fields, wrong types, markup soup, no text at all). Half go through
`dedup submit --jsonl`, as a scraper's file would; half straight onto the queue, as a
producer that skips the edge's checks would. Every good document must be indexed, every
bad one named with a one-line reason, no job retried for bad input, no traceback shown.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as run_with
from hypothesis import strategies as st
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from dedup.client import Client
from dedup.errors import InputError
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import from_payload, label
from dedup.queue.failed import REJECTED
from dedup.queue.queues import JOB_FUNCTION
from dedup.settings import Settings
from tests.helpers import article, as_html, command, start_worker, worker_env

EXAMPLES = 60
MAX_BYTES = 100_000
GENERATED: list[int] = []
GOOD: list[int] = []

ANY_CHAR = st.one_of(
    st.characters(), st.characters(categories=["Cs"]), st.characters(categories=["Cc", "Cf"])
)  # lone surrogates, controls and format marks included
SOUP = st.lists(
    st.sampled_from(
        ["<p>", "</p>", "<div", ">", "<script>", "</script>", "<!--", "&#0;", "\x00", "\ud800",
         "word", "river", "<b><i>", "</table>", "\u202e", "\x1b[2J", "<![CDATA[", " "]
    ),
    max_size=200,
).map("".join)  # fmt: skip
BAD_ID = st.one_of(
    st.text(ANY_CHAR, min_size=1, max_size=20).filter(
        lambda s: any(c.isspace() or ord(c) < 32 or 0xD800 <= ord(c) < 0xE000 for c in s)
    ),
    st.just(""),
    st.text("ab", min_size=257, max_size=400),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
BAD_URL = st.one_of(
    st.builds(lambda n: "https://example.com/" + "u" * n, st.integers(8_200, 70_000)),
    st.text(ANY_CHAR, max_size=40).map(lambda s: "https://example.com/\x00" + s),
    st.just("https://example.com/\ud800"),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=2),
)
BAD_BODY = st.one_of(
    SOUP,
    st.just(""),
    st.text(" \n\t", max_size=50),
    st.builds(lambda n: "\x00" * n + "<p>text</p>", st.integers(20, 2_000)),
    st.just("<p>lone \udc80 surrogate in a paragraph of words</p>"),
    st.builds(lambda n: "<p>" + "x" * n + "</p>", st.integers(MAX_BYTES, MAX_BYTES + 1000)),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
    st.just("<p>. , ; : !</p>"),
)


@st.composite
def hostile(draw: st.DrawFn, name: str) -> Any:
    """A document wrong in one or more ways (or a value that is not a document at all)."""
    kind = draw(st.sampled_from(["id", "url", "body", "format", "fetched_at", "keys", "type"]))
    payload: dict[str, Any] = {"id": name, "html": as_html(article(draw(st.integers(0, 99)), 3))}
    if kind == "id":
        payload["id"] = draw(BAD_ID)
    elif kind == "url":
        payload["url"] = draw(BAD_URL)
    elif kind == "body":
        payload[draw(st.sampled_from(["html", "text"]))] = draw(BAD_BODY)
        if "text" in payload and "html" in payload:
            del payload["html"]
    elif kind == "format":
        payload["format"] = draw(st.one_of(st.text(max_size=8), st.integers()))
    elif kind == "fetched_at":
        payload["fetched_at"] = draw(st.one_of(st.text(ANY_CHAR, max_size=80), st.integers()))
    elif kind == "keys":
        payload["text"] = "both html and text"
    else:
        return draw(st.one_of(st.text(max_size=20), st.integers(), st.lists(st.none(), max_size=2)))
    return payload


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    """Good documents and hostile ones, shuffled; ids unique to this batch."""
    tag = len(GENERATED)
    good = [
        {
            "id": f"g{tag}-{n}",
            "url": f"https://example.com/{tag}/{n}",
            "html": as_html(article(tag * 100 + n, 5)),
        }
        for n in range(draw(st.integers(20, 40)))
    ]
    bad = [draw(hostile(f"b{tag}-{n}")) for n in range(draw(st.integers(5, 20)))]
    return draw(st.permutations(good + bad))


def is_good(payload: Any, config: Settings) -> bool:
    """What the worker must do with a payload: index it (True) or reject it."""
    try:
        analyse(from_payload(payload, config.max_document_bytes), config)
    except InputError:
        return False
    return True


def wait_finished(connection: redis.Redis, job_ids: list[str], timeout: float = 300.0) -> None:
    """Poll until every job has finished or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = Job.fetch_many(job_ids, connection=connection)
        if all(j is not None and j.get_status().value in ("finished", "failed") for j in jobs):
            return
        time.sleep(0.05)
    raise AssertionError("jobs not done in time")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # a failing batch is large
def test_hostile_batches_through_submit_worker_and_reports(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Thousands of generated documents: good ones indexed, bad ones named, nothing retried."""
    config = settings.replace(max_document_bytes=MAX_BYTES, retries=3, retry_backoff=0.0)
    env = worker_env(settings, DEDUP_MAX_DOCUMENT_BYTES=str(MAX_BYTES))
    log_path = tmp_path / "worker.log"
    log_file = log_path.open("wb")  # the worker's whole log, RQ's lines included
    worker = start_worker(settings, log=log_file, env=env)
    client = Client(config)
    store = Store(redis_client, config)

    @run_with(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # a real worker makes shrinking too slow
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=batches(), through_edge=st.booleans())
    def one_batch(batch: list[Any], through_edge: bool) -> None:
        good = [p for p in batch if is_good(p, config)]
        GENERATED.append(len(batch))
        GOOD.append(len(good))
        if through_edge:
            lines = "".join(json.dumps(p) + "\n" for p in batch)
            result = command(settings,
                "submit", "--jsonl", "-", "--json", "--batch-size", "25",
                stdin=lines, env={"DEDUP_MAX_DOCUMENT_BYTES": str(MAX_BYTES)},
            )  # fmt: skip
            assert "Traceback" not in result.stderr
            assert result.returncode in (0, 2), result.stderr
            submitted = json.loads(result.stdout)
            job_ids = [str(j) for j in submitted["jobs"]]
            edge_rejected = submitted["rejected"]
            assert all(r and "\n" not in r for r in edge_rejected)
            passed = [p for p in batch if _passes_edge(p)]
            assert len(batch) - len(passed) == len(edge_rejected)
        else:
            passed = batch
            job_ids = [
                client.queue.enqueue(JOB_FUNCTION, batch[k : k + 25], failure_ttl=600).id
                for k in range(0, len(batch), 25)
            ]
        wait_finished(redis_client, job_ids)
        named: Counter[str] = Counter()
        for job in Job.fetch_many(
            job_ids, connection=redis_client, serializer=client.queue.serializer
        ):
            assert job is not None
            rejected = (
                job.meta.get(REJECTED, []) if job.is_failed else job.return_value()["rejected"]
            )
            for row in rejected:
                assert (
                    row["reason"] and "\n" not in row["reason"] and "Traceback" not in row["reason"]
                )
                named[row["id"]] += 1
        expected = Counter(label(p, n % 25) for n, p in enumerate(passed) if not is_good(p, config))
        assert expected == named
        for payload in good:
            assert store.exists(payload["id"]), payload["id"]

    try:
        one_batch()
        assert 0 == len(ScheduledJobRegistry(queue=client.queue))  # nothing retried
        failed = FailedJobRegistry(queue=client.queue)
        serializer = client.queue.serializer
        for job in Job.fetch_many(failed.get_job_ids(), redis_client, serializer=serializer):
            assert job is not None and job.meta.get(REJECTED)  # failed for bad input only
        listing = command(settings, "failed", "--json", "--limit", "1000",
            env={"DEDUP_NAMESPACE": settings.namespace},
        )  # fmt: skip
        assert 0 == listing.returncode and "Traceback" not in listing.stderr
        assert len(failed) == len(listing.stdout.splitlines())
        assert sum(GENERATED) >= 2_000
        print(f"{sum(GENERATED)} documents in {len(GENERATED)} batches, {sum(GOOD)} good")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        log_file.close()
    log = log_path.read_bytes()
    at = log.find(b"Traceback")
    assert at < 0, log[at : at + 3000].decode(errors="replace")  # no internal error met any


def _passes_edge(payload: Any) -> bool:
    """Whether `dedup submit --jsonl` queues a line (its checks, without the analysis)."""
    try:
        from_payload(payload, MAX_BYTES)
    except InputError:
        return False
    return True
