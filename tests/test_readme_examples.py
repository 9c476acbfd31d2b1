"""The README's integration examples: copied there verbatim, and they work as written.

The Scrapy spider runs in ``tests/test_scrapy_pipeline.py`` (a real crawl of a local site).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document, id_for_url
from dedup.settings import Settings
from tests.conftest import EXAMPLES, SEED
from tests.helpers import html_page, write_warc

INTEGRATIONS = EXAMPLES / "integrations"
README = EXAMPLES.parent / "README.md"


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("scrapy_spider.py", "python"),
        ("warc.sh", "sh"),
        ("client.py", "python"),
        ("reports.sh", "sh"),
    ],
)
def test_readme_shows_the_example_verbatim(name: str, language: str) -> None:
    """What the README shows is the file the tests run."""
    example = (INTEGRATIONS / name).read_text(encoding="utf-8")
    assert f"```{language}\n{example}```" in README.read_text(encoding="utf-8")


def _env(settings: Settings) -> dict[str, str]:
    """A user's shell: dedup on PATH, pointed at the test Redis."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DEDUP_REDIS_URL": str(settings.redis_url),
        "DEDUP_NAMESPACE": settings.namespace,
    }


def _run(settings: Settings, command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_client_example(settings: Settings, tmp_path: Path) -> None:
    """The client example queues a doubled page and gets its report from a running worker."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "dedup", "worker"],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        result = _run(settings, [sys.executable, str(INTEGRATIONS / "client.py")], tmp_path)
    finally:
        worker.terminate()
        _, worker_errors = worker.communicate(timeout=60)
    assert 0 == result.returncode, result.stderr + worker_errors
    first, flags, spans = result.stdout.splitlines()
    assert first.startswith("queued job ") and first.endswith(" status queued")
    assert f"for ('{id_for_url('https://example.com/news/bridge')}',) status" in first
    assert "['doubled_body', 'internal_repeat']" == flags
    assert "paragraphs [0, 3] appear again as [4, 7]" == spans


@pytest.mark.slow
def test_warc_example(settings: Settings, tmp_path: Path) -> None:
    """The WARC example queues an archive, works it off and exports what was flagged."""
    doubled = "https://example.com/doubled"
    write_warc(
        tmp_path / "crawl.warc.gz",
        [
            (doubled, "text/html", html_page(40, doubled=True)),
            ("https://example.com/plain", "text/html", html_page(41)),
        ],
    )
    result = _run(settings, ["bash", "-e", str(INTEGRATIONS / "warc.sh")], tmp_path)
    assert 0 == result.returncode, result.stderr
    assert "queued 2 document(s) in 1 job(s)" in result.stdout
    [row] = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert (id_for_url(doubled), doubled) == (row["doc_id"], row["url"])
    assert ("2024-05-01T12:00:00Z", ["doubled_body", "internal_repeat"]) == (
        row["fetched_at"],
        row["flags"],
    )


@pytest.mark.slow
def test_reports_example(settings: Settings, redis_client: redis.Redis, tmp_path: Path) -> None:
    """The reports example lists the doubled page and exports the flagged ones to files."""
    store = Store(redis_client, settings)
    for doc_id, path in (
        ("seed", SEED),
        ("copy", EXAMPLES / "seed-copy-one-paragraph-dropped.html"),
    ):
        store.index([analyse(Document(doc_id, path.read_text(encoding="utf-8")), settings)])
    result = _run(settings, ["bash", "-e", str(INTEGRATIONS / "reports.sh")], tmp_path)
    assert 0 == result.returncode, result.stderr
    assert ["seed"] == [json.loads(line)["doc_id"] for line in result.stdout.splitlines()]
    flagged = (tmp_path / "flagged.jsonl").read_text().splitlines()
    assert {"seed", "copy"} == {json.loads(line)["doc_id"] for line in flagged}
    near = list(csv.DictReader(io.StringIO((tmp_path / "near.csv").read_text())))
    assert {("seed", "copy"), ("copy", "seed")} == {
        (row["doc_id"], row["near_duplicates"].split("@")[0]) for row in near
    }
