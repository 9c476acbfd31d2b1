"""Shared fixtures: a real Redis for every test that needs one, flushed per test.

``DEDUP_TEST_REDIS_URL`` names a Redis to use; without it the suite starts its own server
(the same embedded server the project uses) in a temporary folder and stops it at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dedup.servers.connection import IndexClient
from dedup.servers.embedded import ensure_server, stop_server
from dedup.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SEED = EXAMPLES / "000_25903e5ddf5549c1.txt"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis server for the whole session."""
    url = os.environ.get("DEDUP_TEST_REDIS_URL")
    if url:
        yield url
        return
    folder = Path(tempfile.mkdtemp(prefix="dedup-test-"))
    try:
        yield ensure_server(folder)
    finally:
        stop_server(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on an emptied database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def settings(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    """Default settings pointed at the test Redis (its database already emptied)."""
    return Settings(redis_url=redis_url, data_dir=tmp_path / "data")


@pytest.fixture
def seed_text() -> str:
    """The doubled news article the project started from."""
    return SEED.read_text(encoding="utf-8")


@pytest.fixture(params=["server", "cluster"])
def index_client(request: pytest.FixtureRequest, redis_url: str) -> Iterator[IndexClient]:
    """An emptied index location: one server, then a 3-master Redis Cluster."""
    if request.param == "server":
        client: IndexClient = redis.Redis.from_url(redis_url)
        client.flushdb()
    else:
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        client = cluster.client()
    yield client
    client.close()


@pytest.fixture
def index_settings(index_client: IndexClient, tmp_path: Path) -> Settings:
    """Default settings for the index of ``index_client`` (stores are given the client)."""
    return Settings(data_dir=tmp_path / "data")
