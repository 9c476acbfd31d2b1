"""``python -m bench.web``: the HTTP API against the CLI and the Python client, same documents.

Submissions per second one document per request and in batches, against ``Client.submit``
/ ``submit_many`` and ``dedup submit --jsonl``; report reads (p50/p99) through the API, the
client and ``dedup report --json``; and 401 answers under the same load as 200 answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.measure import percentile
from bench.redisproc import default_binary, redis_server
from dedup.client import Client
from dedup.settings import Settings


def _docs(count: int, prefix: str) -> list[dict[str, str]]:
    words = [
        "council",
        "budget",
        "river",
        "bridge",
        "school",
        "teacher",
        "market",
        "price",
        "farmer",
        "harvest",
    ]
    return [
        {"id": f"{prefix}-{n}", "text": " ".join(words[(n + i) % 10] for i in range(200)) + f" {n}"}
        for n in range(count)
    ]


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


def _latency(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 0.5) * 1000, 2),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 2),
    }


def run(count: int = 300) -> dict[str, Any]:
    """Every figure of the section, on a Redis server of its own."""
    from tests.web_server import running_server

    results: dict[str, Any] = {"documents": count}
    with redis_server(default_binary()) as url:
        settings = Settings(redis_url=url, namespace="benchweb")
        client = Client(settings)
        with running_server(url, "benchweb") as server, server.client() as api:
            docs = _docs(count, "api1")
            start = time.perf_counter()
            for doc in docs:
                assert 202 == api.post("/v1/documents", json=doc).status_code
            results["api_single_per_s"] = _rate(count, time.perf_counter() - start)
            env = {**os.environ, "DEDUP_REDIS_URL": url, "DEDUP_NAMESPACE": "benchweb"}
            subprocess.run(
                [sys.executable, "-m", "dedup", "worker", "--burst"],
                env=env,
                check=True,
                capture_output=True,
            )
            ids = [f"api1-{n}" for n in range(count)]
            samples = []
            for doc_id in ids:
                start = time.perf_counter()
                assert 200 == api.get(f"/v1/documents/{doc_id}").status_code
                samples.append(time.perf_counter() - start)
            results["api_report"] = _latency(samples)
            samples = []
            for doc_id in ids:
                start = time.perf_counter()
                client.report(doc_id)
                samples.append(time.perf_counter() - start)
            results["client_report"] = _latency(samples)
            samples = []
            for doc_id in ids[:20]:
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "dedup", "report", doc_id, "--json"],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                samples.append(time.perf_counter() - start)
            results["cli_report_process"] = _latency(samples)

            with httpx.Client(base_url=server.url, timeout=30) as anonymous:
                ok, refused = [], []
                for n in range(count):
                    start = time.perf_counter()
                    assert 200 == api.get("/v1/stats").status_code
                    ok.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    bad = {"Authorization": f"Bearer dedup_wrong{n}"}
                    assert 401 == anonymous.get("/v1/stats", headers=bad).status_code
                    refused.append(time.perf_counter() - start)
            results["stats_200"] = _latency(ok)
            results["stats_401"] = _latency(refused)
            docs = _docs(count * 5, "api100")
            start = time.perf_counter()
            for first in range(0, len(docs), 100):
                batch = {"documents": docs[first : first + 100]}
                assert 202 == api.post("/v1/documents", json=batch).status_code
            results["api_batch100_docs_per_s"] = _rate(len(docs), time.perf_counter() - start)

            docs = _docs(count, "client1")
            start = time.perf_counter()
            for doc in docs:
                client.submit(doc["text"], doc_id=doc["id"])
            results["client_single_per_s"] = _rate(count, time.perf_counter() - start)
            docs = _docs(count * 5, "client100")
            start = time.perf_counter()
            client.submit_many(docs, batch_size=100)
            results["client_batch100_docs_per_s"] = _rate(len(docs), time.perf_counter() - start)
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
                for doc in _docs(count * 5, "cli"):
                    handle.write(json.dumps(doc) + "\n")
            env = {**os.environ, "DEDUP_REDIS_URL": url, "DEDUP_NAMESPACE": "benchweb"}
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "dedup",
                    "submit",
                    "--jsonl",
                    handle.name,
                    "--batch-size",
                    "100",
                ],
                env=env,
                check=True,
                capture_output=True,
            )
            results["cli_jsonl_docs_per_s"] = _rate(count * 5, time.perf_counter() - start)
            Path(handle.name).unlink()  # left queued: submission speed only

    return results


def markdown(found: dict[str, Any]) -> list[str]:
    """The figures as lines of the run's summary."""

    def ms(latency: dict[str, float]) -> str:
        return f"p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms"

    return [
        "",
        f"## HTTP API, {found['documents']:,} documents a measurement",
        "",
        f"- single submissions: API {found['api_single_per_s']}/s, "
        f"client {found['client_single_per_s']}/s",
        f"- batches of 100: API {found['api_batch100_docs_per_s']} docs/s, client "
        f"{found['client_batch100_docs_per_s']} docs/s, CLI {found['cli_jsonl_docs_per_s']} docs/s",
        f"- /v1/stats: 200 {ms(found['stats_200'])}; 401 {ms(found['stats_401'])}",
    ]


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 300), indent=2))
