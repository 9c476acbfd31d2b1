"""The embedded Redis and the demo path that runs on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from dedup.servers.embedded import ensure_server, running_url, stop_server

ROOT = Path(__file__).resolve().parent.parent


def test_embedded_server_starts_once_and_keeps_data(tmp_path: Path) -> None:
    """Two callers share one server; its data survives a stop and start."""
    url = ensure_server(tmp_path)
    try:
        assert url == ensure_server(tmp_path)
        redis.Redis.from_url(url).set("kept", "yes")
    finally:
        assert stop_server(tmp_path)
    assert running_url(tmp_path) is None
    url = ensure_server(tmp_path)
    try:
        assert b"yes" == redis.Redis.from_url(url).get("kept")
    finally:
        stop_server(tmp_path)


def test_long_data_folder_uses_loopback_tcp(tmp_path: Path) -> None:
    """A folder too deep for a unix socket path still gets a server."""
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 5)
    url = ensure_server(deep)
    try:
        assert url.startswith("redis://127.0.0.1:")
    finally:
        stop_server(deep)


@pytest.mark.slow
def test_demo_runs_on_the_embedded_server(tmp_path: Path) -> None:
    """`make demo`'s script, with no DEDUP_REDIS_URL, prints the reports and stops its server."""
    env = {k: v for k, v in os.environ.items() if k != "DEDUP_REDIS_URL"}
    env["DEDUP_DATA_DIR"] = str(tmp_path / "demo")
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "doubled_body" in result.stdout
    assert "seed-copy" in result.stdout
    assert "ferry-site-b" in result.stdout
    assert running_url(tmp_path / "demo") is None
