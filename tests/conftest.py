"""Shared fixtures: a real Redis for every test that needs one, flushed per test.

``DEDUP_TEST_REDIS_URL`` names a Redis to use; without it the suite starts its own server
(the same embedded server the project uses) in a temporary folder and stops it at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from dedup.pipeline import kernel
from dedup.servers.connection import IndexClient
from dedup.servers.embedded import ensure_server, stop_server
from dedup.settings import Settings
from tests.cluster import LocalCluster
from tests.helpers import skip_unless_ci

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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real Redis Cluster (3 masters, no replicas) shared by the session; stopped at the end.

    Tests must not kill its nodes or move its slots: ``make_cluster`` gives a cluster of one's own.
    """
    folder = tmp_path_factory.mktemp("cluster")
    with LocalCluster(folder) as cluster:
        yield cluster
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cluster_client(redis_cluster: LocalCluster) -> Iterator[RedisCluster]:
    """A cluster client on the shared cluster, every master flushed first."""
    redis_cluster.flush()
    client = redis_cluster.client()
    yield client
    client.close()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """``make_cluster(masters=3, replicas=1, password=None)``: a started cluster of this test's
    own, to crash or reshard; every one made is stopped when the test ends."""
    clusters: list[LocalCluster] = []

    def make(masters: int = 3, replicas: int = 0, *, password: str | None = None) -> LocalCluster:
        cluster = LocalCluster(
            tmp_path / f"cluster-{len(clusters)}", masters, replicas, password=password
        )
        clusters.append(cluster)
        cluster.start()
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()


@pytest.fixture(params=["server", pytest.param("cluster", marks=pytest.mark.cluster)])
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


@pytest.fixture
def compiled_kernel() -> None:
    """The compiled kernel, which a machine without a C compiler does not build."""
    if kernel.compiled is None:
        skip_unless_ci("dedup.pipeline._minhash was not built (no C compiler)")


@pytest.fixture(params=["compiled", "numpy"])
def each_kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the compiled kernel, then with the xxhash and numpy paths."""
    if request.param == "numpy":
        monkeypatch.setattr(kernel, "compiled", None)
    elif kernel.compiled is None:
        skip_unless_ci(
            "dedup.pipeline._minhash was not built (no C compiler): numpy computes signatures"
        )
    return str(request.param)
