"""``POST /v1/documents`` ahead of FastAPI (:mod:`dedup.web.ingest`) answers as FastAPI's own
route does: every request below is sent to both, in process, against a real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from dedup.servers import connection
from dedup.settings import Settings
from dedup.web import api
from dedup.web.app import Limits, create_app
from dedup.web.auth import Tokens, new_token, parse_entries
from dedup.web.ingest import Ingest
from tests.servers import AppendOnlyRedis

LIMITS = Limits(max_body_bytes=20_000, max_batch=5)


@dataclass(frozen=True)
class Apps:
    """FastAPI alone, the same application behind the handler, and the tokens both accept."""

    fastapi: Any
    ingest: Ingest
    token: str
    read_only: str


def _apps(settings: Settings) -> Apps:
    token, entry = new_token()
    read_only, ro_entry = new_token(read_only=True)
    app = create_app(settings, LIMITS, Tokens(parse_entries(f"{entry},{ro_entry}")))
    return Apps(app, Ingest(app, app.state.web), token, read_only)


@pytest.fixture
def apps(settings: Settings) -> Iterator[Apps]:
    """Both ways in, on the test Redis."""
    made = _apps(settings)
    yield made
    made.ingest.web.gatherer.close()


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 1000):
        yield body[start : start + 1000]


def _ask(app: Any, token: str | None, body: bytes | None, **options: Any) -> httpx.Response:
    """POST /v1/documents to ``app``; ``body`` streamed without a length when None is given
    as ``content`` in ``options``."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    headers.update(options.pop("headers", {}))

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dedup") as client:
            content = body if body is not None else _chunks(options.pop("streamed"))
            return await client.post("/v1/documents", content=content, headers=headers)

    return asyncio.run(ask())


def _same(apps: Apps, token: str | None, body: bytes | None, **options: Any) -> httpx.Response:
    """The answer of both; asserts they are the same (status, JSON, headers that matter)."""
    before = _ask(apps.fastapi, token, body, **dict(options))
    now = _ask(apps.ingest, token, body, **dict(options))
    expected, actual = before.json(), now.json()
    if now.status_code == 202:  # each queued its own job
        expected["jobs"] = [len(job) for job in expected["jobs"]]
        actual["jobs"] = [len(job) for job in actual["jobs"]]
    assert (before.status_code, expected) == (now.status_code, actual)
    for name in ("content-type", "content-length", "www-authenticate"):
        assert before.headers.get(name) == now.headers.get(name)
    return now


def _doc(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def test_refusals_are_the_routes(apps: Apps) -> None:
    """Bad JSON, wrong shapes, bad documents, too large, bad tokens: the same status and body."""
    good = _doc(id="a", text="some words")
    cases: list[tuple[int, str | None, bytes | None, dict[str, Any]]] = [
        (422, apps.token, b"{not json", {}),
        (422, apps.token, b"\xff\xfe", {}),
        (422, apps.token, b"[1, 2]", {}),
        (422, apps.token, b'"text"', {}),
        (422, apps.token, _doc(documents=[]), {}),
        (422, apps.token, _doc(documents={"id": "a"}), {}),
        (422, apps.token, _doc(id="a"), {}),
        (422, apps.token, _doc(id="a", html="<p>x</p>", text="x"), {}),
        (422, apps.token, _doc(id="bad id", text="x"), {}),
        (422, apps.token, _doc(id="a", text=7), {}),
        (422, apps.token, _doc(text="x", url=5), {}),
        (422, apps.token, _doc(documents=[{"id": "ok", "text": "x"}, {"id": "a b"}]), {}),
        (413, apps.token, _doc(documents=[{"text": "a"}] * 6), {}),
        (413, apps.token, _doc(text="word " * 5_000), {}),
        (413, apps.token, None, {"streamed": _doc(text="word " * 5_000)}),
        (413, apps.token, good, {"headers": {"Content-Length": "30000"}}),
        (413, "dedup_wrong", good, {"headers": {"Content-Length": "30000"}}),
        (401, None, good, {}),
        (401, "", good, {}),
        (401, "dedup_wrong", good, {}),
        (401, "dedup_wrong", None, {"streamed": _doc(text="word " * 5_000)}),
        (401, apps.token + "x", good, {}),
        (403, apps.read_only, good, {}),
    ]
    for status, token, body, options in cases:
        answer = _same(apps, token, body, **options)
        assert status == answer.status_code, (body, answer.text)
        assert isinstance(answer.json()["error"], str)
    assert "Bearer" == _ask(apps.ingest, None, good).headers["www-authenticate"]


def test_submissions_are_queued_as_by_the_route(
    apps: Apps, settings: Settings, redis_client: Any
) -> None:
    """202 with the ids and the job that carries them, one document or a batch."""
    one = _same(apps, apps.token, _doc(id="one", text="a page of words"))
    assert "one" == one.json()["documents"][0]
    job = Job.fetch(one.json()["jobs"][0], connection=redis_client, serializer=JSONSerializer)
    assert ["one"] == [payload["id"] for payload in job.args[0]]
    batch = _same(apps, apps.token, _doc(documents=[{"id": "x", "text": "w"}, {"text": "v"}]))
    assert 2 == len(batch.json()["documents"])


def test_an_unreachable_redis_answers_503(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch Redis refused answers its request 503, one document or many, as the route does."""
    monkeypatch.setattr(connection, "_retry", lambda: Retry(NoBackoff(), 0))  # refused at once
    server = AppendOnlyRedis(tmp_path)
    server.start()
    try:
        down = _apps(settings.replace(redis_url=server.url))
        server.kill()
        for body in (_doc(id="a", text="words"), _doc(documents=[{"text": "a"}, {"text": "b"}])):
            answer = _same(down, down.token, body)
            assert 503 == answer.status_code
        down.ingest.web.gatherer.close()
    finally:
        server.stop()


def _client(made: Apps) -> httpx.AsyncClient:
    """A client of the app in this process, with its token."""
    transport = httpx.ASGITransport(app=made.ingest)
    headers = {"Authorization": f"Bearer {made.token}"}
    return httpx.AsyncClient(transport=transport, base_url="http://dedup", headers=headers)


def test_other_requests_reach_fastapi(apps: Apps) -> None:
    """Every other method and path is FastAPI's: a GET of the list, a POST elsewhere."""

    async def ask() -> tuple[int, int]:
        async with _client(apps) as client:
            listed = await client.get("/v1/documents")
            elsewhere = await client.post("/v1/documents/a")
            return listed.status_code, elsewhere.status_code

    assert (200, 405) == asyncio.run(ask())


def test_a_batch_waits_for_the_clients_just_answered(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone client posting again is not held; after a batch of two is answered, the next
    one waits for two new submissions, or the window when they do not come."""
    monkeypatch.setattr(api, "RETURN_WINDOW", 1.0)
    made = _apps(settings.replace(submit_delay=60.0))
    state = made.ingest.web

    async def scenario() -> dict[str, Any]:
        async with _client(made) as client:

            async def post(doc_id: str, release: asyncio.Event | None = None) -> str:
                body = _doc(id=doc_id, text=f"the words of {doc_id}")

                async def arriving() -> AsyncIterator[bytes]:
                    yield body[:10]
                    if release is not None:
                        await release.wait()
                    yield body[10:]

                answer = await client.post("/v1/documents", content=arriving())
                assert 202 == answer.status_code, answer.text
                job: str = answer.json()["jobs"][0]
                return job

            async def until(condition: Any) -> None:
                while not condition():
                    await asyncio.sleep(0.001)

            found: dict[str, Any] = {}
            started = time.monotonic()
            found["alone"] = {await post("a"), await post("b")}
            found["alone_seconds"] = time.monotonic() - started
            release = asyncio.Event()
            slow = asyncio.create_task(post("s", release))
            await until(lambda: state.submitting == 1)
            other = asyncio.create_task(post("t"))
            await until(lambda: state.gatherer.waiting == 1)
            release.set()
            found["together"] = {await slow, await other}
            found["returning"] = state.returning
            first = asyncio.create_task(post("u"))
            await until(lambda: state.gatherer.waiting == 1)
            second = asyncio.create_task(post("v"))
            found["returned"] = {await first, await second}
            started = time.monotonic()
            await post("w")
            found["window_seconds"] = time.monotonic() - started
            return found

    try:
        found = asyncio.run(scenario())
    finally:
        state.gatherer.close()
    assert 2 == len(found["alone"]) and found["alone_seconds"] < 0.9
    assert 1 == len(found["together"])
    assert 2 == found["returning"]  # answered with the batch of two
    assert 1 == len(found["returned"])
    assert 0.9 < found["window_seconds"] < 10
