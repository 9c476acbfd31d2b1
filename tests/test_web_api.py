"""The HTTP API against a real ``dedup serve`` process, a real worker and a real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import SEED
from tests.helpers import article, burst, command
from tests.web_server import Server, running_server

NAMESPACE = "webapi"


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[Server]:
    """One server for the module, with small limits to test them."""
    with running_server(
        redis_url, NAMESPACE, "--max-batch", "5", "--max-body-bytes", "200000"
    ) as running:
        yield running


@pytest.fixture
def api(server: Server, redis_url: str) -> Server:
    """The server, on an emptied namespace."""
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{NAMESPACE}:*"):
        client.delete(key)
    for key in client.scan_iter(match="rq:*"):
        client.delete(key)
    client.close()
    return server


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text


def test_healthz_needs_no_token_and_everything_else_does(api: Server) -> None:
    """401 with a JSON error and a Bearer challenge, for no token and for a wrong one."""
    with api.client("") as anonymous:
        assert {"status": "ok"} == anonymous.get("/healthz").json()
    for token in ("", "dedup_wrong", api.token + "x"):
        with api.client(token) as client:
            for method, path in [
                ("GET", "/v1/documents"),
                ("GET", "/v1/documents/seed"),
                ("GET", "/v1/stats"),
                ("GET", "/v1/openapi.json"),
                ("GET", "/metrics"),
                ("POST", "/v1/documents"),
                ("DELETE", "/v1/documents/seed"),
            ]:
                response = client.request(method, path, json={"id": "a", "text": "x y z"})
                assert 401 == response.status_code, (method, path)
                assert "error" in response.json()
                assert "Bearer" == response.headers["www-authenticate"]


def test_read_only_token_reads_but_cannot_write(api: Server) -> None:
    """A ``:ro`` token gets 403 on submissions and deletions, 200 on reads."""
    with api.client(api.read_only_token) as client:
        assert 403 == client.post("/v1/documents", json={"text": "a b c"}).status_code
        assert 403 == client.delete("/v1/documents/seed").status_code
        assert 200 == client.get("/v1/stats").status_code


def test_submit_report_list_delete(api: Server) -> None:
    """A document goes in through the API and its report comes out as the CLI's JSON."""
    seed = SEED.read_text(encoding="utf-8")
    with api.client() as client:
        response = client.post("/v1/documents", json={"id": "seed", "html": seed})
        assert 202 == response.status_code
        assert ["seed"] == response.json()["documents"]
        assert 1 == len(response.json()["jobs"])
        others = [{"id": f"article-{n}", "text": "\n\n".join(article(n, 6))} for n in range(3)]
        response = client.post("/v1/documents", json={"documents": others})
        assert 202 == response.status_code
        assert [d["id"] for d in others] == response.json()["documents"]
        burst(api.settings)

        report = client.get("/v1/documents/seed").json()
        assert {"doubled_body", "internal_repeat"} <= set(report["flags"])
        assert [0, 12] == report["internal_repeats"][0]["first"]
        assert [13, 25] == report["internal_repeats"][0]["repeat"]
        cli = command(api.settings, "report", "seed", "--json")
        assert json.loads(cli.stdout) == report

        flagged = client.get("/v1/documents", params={"flag": "doubled_body"}).json()
        assert ["seed"] == [row["doc_id"] for row in flagged["documents"]]
        seen, cursor = [], None
        while True:
            page = client.get("/v1/documents", params={"limit": 1, "cursor": cursor}).json()
            seen += [row["doc_id"] for row in page["documents"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # newest first: the articles (one job, indexed in the same instant) before the seed
        assert 4 == len(seen) and "seed" == seen[-1]
        assert {"article-0", "article-1", "article-2"} == set(seen[:3])
        recent = client.get("/v1/documents", params={"since": "1h"}).json()["documents"]
        assert 4 == len(recent)
        stats = client.get("/v1/stats").json()
        assert 4 == stats["documents"] and 0 == stats["queued"]

        assert {"deleted": ["seed"]} == client.delete("/v1/documents/seed").json()
        assert 404 == client.get("/v1/documents/seed").status_code
        assert 404 == client.delete("/v1/documents/seed").status_code


def test_wait_for_a_report_then_404(api: Server) -> None:
    """``?wait=`` waits for the document, then answers 404 with the queue's state."""
    with api.client() as client:
        started = time.monotonic()
        response = client.get("/v1/documents/never", params={"wait": 1})
        assert 404 == response.status_code
        assert time.monotonic() - started >= 1.0
        assert "worker" in response.json()["error"]
        assert 422 == client.get("/v1/documents/x", params={"wait": 1000}).status_code


def test_bad_requests_get_json_errors(api: Server) -> None:
    """Bad input, oversize bodies and batches: 413/422 with JSON, nothing queued."""
    with api.client() as client:
        cases = [
            (422, client.post("/v1/documents", content=b"{not json")),
            (422, client.post("/v1/documents", json=[1, 2])),
            (422, client.post("/v1/documents", json={"documents": []})),
            (413, client.post("/v1/documents", json={"documents": [{"text": "a"}] * 6})),
            (413, client.post("/v1/documents", json={"text": "word " * 50_000})),
            (422, client.get("/v1/documents", params={"flag": "nope"})),
            (422, client.get("/v1/documents", params={"cursor": "abc"})),
            (422, client.get("/v1/documents", params={"since": "yesterday-ish"})),
            (404, client.get("/v1/nothing-here")),
        ]
        for status, response in cases:
            assert status == response.status_code, response.text
            assert isinstance(response.json()["error"], str)
            _no_traceback(response.text)
        bad = client.post(
            "/v1/documents",
            json={
                "documents": [{"id": "good", "text": "fine words"}, {"id": "bad id", "text": "x"}]
            },
        )
        assert 422 == bad.status_code
        assert [1] == [row["index"] for row in bad.json()["rejected"]]
        assert 0 == client.get("/v1/stats").json()["queued"]


def test_openapi_schema_and_metrics(api: Server) -> None:
    """The schema lists the paths; /metrics counts what the workers did, in Prometheus text."""
    with api.client() as client:
        paths = client.get("/v1/openapi.json").json()["paths"]
        assert {"/v1/documents", "/v1/documents/{doc_id}", "/v1/stats", "/healthz"} <= set(paths)
        seed = SEED.read_text(encoding="utf-8")
        client.post("/v1/documents", json={"documents": [{"id": "seed", "html": seed}]})
        burst(api.settings)
        text = client.get("/metrics").text
    lines = set(text.splitlines())
    assert "dedup_documents_indexed_total 1.0" in lines
    assert "dedup_documents_rejected_total 0.0" in lines
    assert 'dedup_flags_raised_total{flag="doubled_body"} 1.0' in lines
    assert "dedup_analysis_seconds_count 1.0" in lines
    assert 'dedup_write_seconds_bucket{le="+Inf"} 1.0' in lines
    assert "dedup_queue_depth 0.0" in lines
    assert "dedup_index_documents 1.0" in lines
    assert any(line.startswith("dedup_workers ") for line in lines)


def test_hostile_text_is_escaped_on_pages(api: Server) -> None:
    """A page holding markup shows it as text: the HTML carries it escaped, never live."""
    hostile = "<script>alert(1)</script> and <img src=x onerror=alert(2)> " * 3
    with api.client() as client:
        client.post(
            "/v1/documents",
            json={
                "id": "hostile<b>",
                "url": "javascript:alert(3)",
                "text": hostile + "\n\nmore words here",
            },
        )
        burst(api.settings)
        page = client.get("/ui/documents/hostile%3Cb%3E")
    assert 200 == page.status_code
    assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'href="javascript:' not in page.text
    assert "script-src" not in page.headers["content-security-policy"]


def test_serve_refuses_without_tokens_and_token_new_prints_an_entry(tmp_path: Path) -> None:
    """No token configured: no server. ``dedup token new``: a token and the line accepting it."""
    refused = command("redis://127.0.0.1:1", "serve", env={"DEDUP_API_TOKENS": ""})
    assert 2 == refused.returncode and "dedup token new" in refused.stderr
    made = command("redis://127.0.0.1:1", "token", "new", "--read-only")
    token, line = made.stdout.splitlines()
    from dedup.web.auth import digest

    assert f"export DEDUP_API_TOKENS=sha256:{digest(token)}:ro" == line


def test_groups_as_the_command_gives_them(api: Server) -> None:
    """/v1/groups answers what `dedup groups --json` prints, with the threshold floor's warning."""
    body = article(77, 8)
    copy = [*body[:-1], body[-1] + " Updated."]
    with api.client() as client:
        documents = [
            {"id": "story", "text": "\n\n".join(body), "fetched_at": "2024-05-01T10:00:00Z"},
            {"id": "copy", "text": "\n\n".join(copy), "fetched_at": "2024-05-01T11:00:00Z"},
            {"id": "other", "text": "\n\n".join(article(78, 8))},
        ]
        assert 202 == client.post("/v1/documents", json={"documents": documents}).status_code
        burst(api.settings)
        answer = client.get("/v1/groups").json()
        cli = command(api.settings, "groups", "--json")
        assert [json.loads(line) for line in cli.stdout.splitlines()] == answer["groups"]
        [group] = answer["groups"]
        assert "story" == group["canonical"]
        assert {"story", "copy"} == {m["doc_id"] for m in group["members"]}
        assert answer["warning"] is None
        low = client.get("/v1/groups", params={"threshold": 0.3}).json()
        assert "below" in low["warning"]
        assert 422 == client.get("/v1/groups", params={"min_size": 1}).status_code
    with api.client(token="") as anonymous:
        assert 401 == anonymous.get("/v1/groups").status_code
