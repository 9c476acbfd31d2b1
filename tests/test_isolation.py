"""One bad document never costs the others: checked at every edge, isolated in the worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from rq.job import Job
from rq.registry import FailedJobRegistry

from dedup.client import Client
from dedup.errors import InputError
from dedup.index import records
from dedup.index.store import Store
from dedup.pipeline.document import Document, decode, from_payload
from dedup.queue.queues import JOB_FUNCTION, make_queue
from dedup.settings import Settings
from tests.helpers import article, as_html, command

HOSTILE_ID = "surr\ud800x"
LONG_URL = "https://example.com/" + "a" * 70_000


def good(n: int) -> dict[str, Any]:
    """A document every check accepts."""
    return {"id": f"good-{n}", "html": as_html(article(500 + n, 6))}


def enqueue_raw(client: Client, payloads: list[Any]) -> Job:
    """Put payloads on the queue as another producer might, without the edge's checks."""
    return client.queue.enqueue(
        JOB_FUNCTION, payloads, retry=None, failure_ttl=3600, result_ttl=600
    )


def failed_rows(settings: Settings) -> list[dict[str, Any]]:
    """`dedup failed --json`, parsed."""
    result = command(settings, "failed", "--json")
    assert 0 == result.returncode, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize(
    "hostile",
    [
        {"id": HOSTILE_ID, "html": as_html(article(1, 4))},
        {"id": "long-url", "url": LONG_URL, "html": as_html(article(2, 4))},
        {"id": "nul\x00id", "text": "some words here for a paragraph of text"},
        {"id": "wrong-body", "html": ["not", "a", "string"]},
        {"id": "no-text", "html": "<p>. , ;</p>"},
        "not an object",
    ],
    ids=["surrogate-id", "70k-url", "nul-id", "list-body", "no-text", "not-an-object"],
)
def test_one_hostile_document_does_not_sink_its_batch(
    settings: Settings, redis_client: redis.Redis, hostile: Any
) -> None:
    """Six good documents and a hostile one in one job: the six are indexed, the job is not
    retried, and the hostile one is listed in `dedup failed` with its reason."""
    client = Client(settings.replace(retries=3))
    payloads = [good(n) for n in range(3)] + [hostile] + [good(n) for n in range(3, 6)]
    job = enqueue_raw(client, payloads)
    worker = command(settings, "worker", "--burst")
    assert 0 == worker.returncode, worker.stderr
    store = Store(redis_client, settings)
    assert all(store.exists(f"good-{n}") for n in range(6))
    job.refresh()
    assert "finished" == job.get_status().value
    [rejected] = job.return_value()["rejected"]
    rows = failed_rows(settings)
    assert 1 == len(rows)
    assert [rejected] == rows[0]["rejected"]
    assert rejected["reason"] and "\n" not in rejected["reason"]
    assert "Traceback" not in rejected["reason"]
    assert 1 == len(FailedJobRegistry(queue=client.queue))


def test_edge_checks_name_the_bad_line_and_queue_the_rest(settings: Settings) -> None:
    """`dedup submit --jsonl`: each bad line gets one line naming it and why; the rest go on."""
    lines = [json.dumps(good(n)) for n in range(3)]
    lines.insert(1, json.dumps({"id": HOSTILE_ID, "html": "<p>text</p>"}))
    lines.insert(3, json.dumps({"id": "long", "url": LONG_URL, "html": "<p>text</p>"}))
    lines.append(json.dumps({"id": "ctl", "url": "https://example.com/\x1b[2J", "text": "t"}))
    result = command(settings, "submit", "--jsonl", "-", stdin="\n".join(lines) + "\n")
    assert 2 == result.returncode
    errors = result.stderr.strip().splitlines()
    assert 3 == len(errors), result.stderr
    assert "line 2" in errors[0] and "invalid document id 'surr\\ud800x'" in errors[0]
    assert "line 4" in errors[1] and "over the limit of 8,192" in errors[1]
    assert "line 6" in errors[2] and "control characters" in errors[2]
    assert all(len(line) < 300 for line in errors)
    assert "queued 3 document(s)" in result.stdout
    assert "Traceback" not in result.stderr


def test_every_maker_of_documents_checks_the_fields(settings: Settings) -> None:
    """The client, a Document made by hand and a JSON line all refuse the same fields."""
    client = Client(settings)
    with pytest.raises(InputError, match="over the limit of 8,192"):
        client.submit("<p>text</p>", url=LONG_URL)
    with pytest.raises(InputError, match="invalid document id"):
        client.submit("<p>text</p>", doc_id=HOSTILE_ID)
    with pytest.raises(InputError, match="invalid URL"):
        Document("a", "<p>x</p>", url="https://example.com/\ud800")
    with pytest.raises(InputError, match="document id must be a string"):
        from_payload({"id": True, "text": "words"}, 1000)
    with pytest.raises(InputError, match="lone surrogates"):
        from_payload({"id": "x", "text": "words \udfff"}, 1000)
    with pytest.raises(InputError, match='"format" must be one of'):
        from_payload({"id": "x", "text": "words", "format": "pdf"}, 1000)
    assert "7" == from_payload({"id": 7, "text": "words"}, 1000).doc_id
    assert 0 == client.queue.count


def test_stray_nul_bytes_do_not_make_a_page_binary() -> None:
    """A page with a few NUL bytes after an image tag is text; a real binary file is not."""
    paragraphs = "".join(f"<p>{p}</p>" for p in article(9, 12))
    page = f"<html><body><article>{paragraphs}<img src=a.png>{chr(0) * 22}{paragraphs}</article>"
    assert "\x00" * 22 in decode(page.encode(), 10_000_000)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x02\x00" * 500
    with pytest.raises(InputError, match="looks like a binary file"):
        decode(png, 10_000_000)


def test_a_body_of_control_characters_is_binary_and_a_few_are_text() -> None:
    """Control characters are counted in a text body as in a file's bytes (tabs, line breaks
    and escape are text); characters beyond ASCII are never counted; a body too large is
    refused as such before its lone surrogates are."""
    text = "words " * 200
    assert from_payload({"id": "x", "text": text + "\x01\x02\x1b\t\f"}, 10**6)
    with pytest.raises(InputError, match="looks like a binary file"):
        from_payload({"id": "x", "text": text + "\x01\x07" * 40}, 10**6)
    assert from_payload({"id": "x", "text": "é中\U0001f600 " * 500}, 10**6)
    with pytest.raises(InputError, match="over the limit of 1,000 bytes"):
        from_payload({"id": "x", "text": "\udfff" * 400}, 1000)


def test_a_write_error_rejects_only_its_document(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while writing one document (here, packing its record) spares the batch."""
    from workers import jobs

    jobs.prepare(settings)
    pack = records.pack

    def failing_pack(record: records.Record) -> bytes:
        if record.doc_id == "good-2":
            raise ValueError("simulated packing failure")
        return pack(record)

    monkeypatch.setattr(records, "pack", failing_pack)
    with pytest.raises(InputError, match="good-2: internal error ValueError"):
        jobs.analyse_documents([good(2)])  # alone: the job fails, without retries
    result = jobs.analyse_documents([good(n) for n in range(5)])
    assert ["good-0", "good-1", "good-3", "good-4"] == result["documents"]
    assert [
        {"id": "good-2", "reason": "internal error ValueError: simulated packing failure"}
    ] == result["rejected"]


def test_rejected_documents_are_sent_again_after_a_fix(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """`dedup requeue` sends just the rejected documents; once the cause is fixed they index."""
    small = settings.replace(max_document_bytes=10_000)
    client = Client(settings)
    big = {"id": "big", "html": as_html(article(3, 60))}
    job = enqueue_raw(client, [good(0), big, good(1)])
    config = tmp_path / "small.toml"
    config.write_text("max_document_bytes = 10000\n")
    env = {"DEDUP_NAMESPACE": small.namespace, "DEDUP_CONFIG": str(config)}
    assert 0 == command(settings, "worker", "--burst", env=env).returncode
    [row] = failed_rows(settings)
    assert "big" == row["rejected"][0]["id"]
    assert "over the limit" in row["rejected"][0]["reason"]
    assert ["big"] == row["documents"]  # the filed job holds the rejected document only
    assert row["job_id"] != job.id
    store = Store(redis_client, settings)
    assert not store.exists("big")
    human = command(
        settings,
        "failed",
        env={"DEDUP_NAMESPACE": settings.namespace, "COLUMNS": "200"},
    )
    assert "big" in human.stdout and "over the limit" in human.stdout
    assert "requeued 1 job(s)" in command(settings, "requeue", row["job_id"]).stdout
    assert 0 == command(settings, "worker", "--burst").returncode  # the default limit: the fix
    assert store.exists("big")
    assert [] == failed_rows(settings)
    assert 2 == len(make_queue(settings, redis_client).finished_job_registry)  # both jobs


def test_scrapy_pipeline_passes_a_bad_page_and_queues_the_rest(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """An item with a 70,000-character URL is counted and logged; its batch still goes out."""
    from dedup.integrations.scrapy import DedupPipeline

    client = Client(settings)
    pipeline = DedupPipeline(client, batch_size=10)
    items = [{"url": f"https://example.com/{n}", "html": as_html(article(n, 4))} for n in range(3)]
    items.insert(1, {"url": LONG_URL, "html": as_html(article(7, 4))})
    for item in items:
        assert item is pipeline.process_item(item)
    pipeline.close_spider()
    assert 3 == sum(len(job.args[0]) for job in client.queue.get_jobs())
    [warning] = [r.getMessage() for r in caplog.records if "not queued" in r.getMessage()]
    assert "over the limit of 8,192" in warning and len(warning) < 300


def test_a_job_of_bad_documents_fails_with_one_log_line(settings: Settings) -> None:
    """When every document of a job is rejected, the worker's log says so in one line."""
    client = Client(settings)
    job = enqueue_raw(client, [{"id": "empty", "html": "<p>. , ;</p>"}, 7])
    worker = command(settings, "worker", "--burst")
    assert 0 == worker.returncode
    log = worker.stdout + worker.stderr
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if job.id in line]
    assert 1 == len(lines), log
    line = lines[0]
    assert "2 of 2 document(s) rejected: empty: document empty has no text; #1: " in line
    job.refresh()
    assert job.is_failed and 0 == job.retries_left
