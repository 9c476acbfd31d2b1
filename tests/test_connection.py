"""The queue and the index on servers of their own; the index on a Redis Cluster.

Cluster URLs are parsed without a server; the split run uses two throwaway redis-servers,
and one test starts a tiny cluster of three masters (no replicas) for itself.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from dedup.errors import ConfigError, StoreError
from dedup.servers.connection import (
    connect_cluster,
    display_url,
    index_client,
    is_cluster_url,
    parse_cluster_url,
    queue_client,
    redact,
)
from dedup.servers.embedded import find_server_binary
from dedup.settings import Settings
from tests.helpers import article, as_html, burst, command, start_worker, wait_for
from tests.servers import AppendOnlyRedis, redis_server

CLUSTER = "redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001"


def _nodes(url: str) -> list[tuple[str, int]]:
    return [(node.host, node.port) for node in parse_cluster_url(url)[0]]


def test_cluster_url_seed_nodes_and_credentials() -> None:
    """Several seed nodes, the default port, a password alone or with a user, IPv6."""
    nodes, options = parse_cluster_url(CLUSTER)
    assert [("10.0.0.1", 7000), ("10.0.0.2", 7001)] == [(n.host, n.port) for n in nodes]
    assert "s3cret" == options["password"] and options.get("username") is None
    _, options = parse_cluster_url("redis+cluster://app:p%40ss@h1,h2:7002/0")
    assert ("app", "p@ss") == (options["username"], options["password"])
    assert [("h1", 6379), ("h2", 7002)] == _nodes("redis+cluster://app:p%40ss@h1,h2:7002/0")
    assert [("::1", 7000), ("127.0.0.1", 7001)] == _nodes(
        "redis+cluster://[::1]:7000,127.0.0.1:7001"
    )
    assert "ssl" not in options


def test_tls_cluster_url_takes_rediss_options() -> None:
    """rediss+cluster:// turns TLS on and takes the options rediss:// URLs take."""
    url = (
        "rediss+cluster://:pw@h1:7000,h2:7000?ssl_ca_certs=/etc/ca.crt&ssl_cert_reqs=required"
        "&ssl_certfile=/etc/client.crt&ssl_keyfile=/etc/client.key&socket_timeout=3"
    )
    _, options = parse_cluster_url(url)
    assert options["ssl"] is True
    assert "/etc/ca.crt" == options["ssl_ca_certs"]
    assert "required" == options["ssl_cert_reqs"]
    assert ("/etc/client.crt", "/etc/client.key") == (
        options["ssl_certfile"],
        options["ssl_keyfile"],
    )
    assert 3.0 == options["socket_timeout"]
    assert is_cluster_url(url) and is_cluster_url(CLUSTER)
    assert not is_cluster_url("rediss://h:6380/0") and not is_cluster_url("unix:///tmp/r.sock")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://:s3cret@", "no host"),
        ("redis+cluster://:s3cret@h1:7000,h2:port", "bad port in seed node 'h2:port'"),
        ("redis+cluster://:s3cret@h1:99999", "bad port in seed node 'h1:99999'"),
        ("redis+cluster://:s3cret@h1:7000,,h2:7000", "an empty seed node"),
        ("redis+cluster://:s3cret@h1:7000/2", "a cluster has database 0 only"),
        (
            "redis+cluster://:s3cret@h1:7000?health_check_interval=5",
            "a cluster client does not take health_check_interval",
        ),
    ],
)
def test_bad_cluster_urls_give_one_line(url: str, reason: str) -> None:
    """Each bad URL gives one line saying what is wrong, without the password."""
    with pytest.raises(StoreError) as caught:
        connect_cluster(url)
    message = str(caught.value)
    assert message == f"invalid Redis URL {redact(url)}: {reason}"
    assert "s3cret" not in message and "***" in message
    assert 1 == len(message.splitlines())


def test_redact_cluster_urls() -> None:
    """Every host stays, the password goes (in the user part and in ssl_password)."""
    assert "redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7001" == redact(CLUSTER)
    assert "rediss+cluster://app:***@[::1]:7000,h2/0?ssl_password=***&ssl_cert_reqs=none" == (
        redact("rediss+cluster://app:pw@[::1]:7000,h2/0?ssl_password=key-pw&ssl_cert_reqs=none")
    )
    assert "redis+cluster://h1:7000,h2:7000" == redact("redis+cluster://h1:7000,h2:7000")
    assert "redis://user:***@127.0.0.1:1/0" == redact("redis://user:secret@127.0.0.1:1/0")


def test_unreachable_cluster_is_one_line() -> None:
    """No node answers: one line naming the URL without its password."""
    url = "redis+cluster://:s3cret@127.0.0.1:1,127.0.0.1:2"
    with pytest.raises(StoreError, match=r"^cannot reach Redis at redis\+cluster://:\*\*\*@") as e:
        connect_cluster(url)
    assert "s3cret" not in str(e.value) and 1 == len(str(e.value).splitlines())


def test_queue_is_refused_on_a_cluster(tmp_path: Path) -> None:
    """RQ needs one server: a cluster URL for the queue is refused before any connection."""
    with pytest.raises(ConfigError) as caught:
        queue_client(Settings(queue_url=CLUSTER, data_dir=tmp_path))
    message = str(caught.value)
    assert message == (
        "the queue needs a standalone Redis, not the cluster "
        "redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7001 "
        "(RQ does not run on a Redis Cluster): set DEDUP_QUEUE_URL"
    )
    with pytest.raises(ConfigError, match="the queue needs a standalone Redis"):
        queue_client(Settings(redis_url=CLUSTER, data_dir=tmp_path))  # the default of both
    result = command(CLUSTER, "submit", "-", stdin="<p>one two three four five six</p>")
    assert 2 == result.returncode
    assert [f"error: {message}"] == result.stderr.strip().splitlines()


def test_display_url_names_both_when_they_differ(tmp_path: Path) -> None:
    """One location when the queue and the index share it, both when they do not."""
    assert f"embedded Redis in {tmp_path}" == display_url(Settings(data_dir=tmp_path))
    shared = Settings(redis_url="redis://:pw@q:6379/0", data_dir=tmp_path)
    assert "redis://:***@q:6379/0" == display_url(shared)
    split = shared.replace(index_url=CLUSTER)
    assert (
        "queue redis://:***@q:6379/0, index redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7001"
        == display_url(split)
    )
    assert f"queue embedded Redis in {tmp_path}, index redis://i:1/0" == display_url(
        Settings(index_url="redis://i:1/0", data_dir=tmp_path)
    )


@pytest.mark.slow
def test_queue_and_index_on_two_servers(tmp_path: Path) -> None:
    """submit, worker, report and stats with the queue on one server and the index on
    another: RQ's keys land on the first only, the namespace's on the second only."""
    with (
        redis_server(tmp_path, "--requirepass", "queue-pw") as queue_port,
        redis_server(tmp_path, "--requirepass", "index-pw") as index_port,
    ):
        queue_url = f"redis://:queue-pw@127.0.0.1:{queue_port}/0"
        index_url = f"redis://:index-pw@127.0.0.1:{index_port}/0"
        settings = Settings(
            queue_url=queue_url, index_url=index_url, data_dir=tmp_path / "data", namespace="split"
        )
        body = as_html(article(7))
        submitted = command(settings, "submit", "-", "--id", "twice", stdin=body + body)
        assert 0 == submitted.returncode, submitted.stderr
        burst(settings)
        report = command(settings, "report", "twice", "--json")
        assert 0 == report.returncode, report.stderr
        assert "doubled_body" in json.loads(report.stdout)["flags"]
        stats = command(settings, "stats", "--json")
        assert 0 == stats.returncode, stats.stderr
        data = json.loads(stats.stdout)
        assert (1, 0, 0) == (data["documents"], data["queued"], data["failed"])
        assert f"redis://:***@127.0.0.1:{queue_port}/0" == data["queue_redis"]
        assert f"redis://:***@127.0.0.1:{index_port}/0" == data["index_redis"]
        assert f"queue {data['queue_redis']}, index {data['index_redis']}" == data["redis"]
        assert "pw" not in stats.stdout

        queue_keys = [k.decode() for k in redis.Redis.from_url(queue_url).keys("*")]
        index_keys = [k.decode() for k in redis.Redis.from_url(index_url).keys("*")]
        assert any(k.startswith("rq:") for k in queue_keys)
        assert not any(k.startswith("split:") for k in queue_keys), queue_keys
        assert any(k.startswith("split:") for k in index_keys)
        assert not any(k.startswith("rq:") for k in index_keys), index_keys


@pytest.mark.slow
@pytest.mark.cluster  # real-time outage: with the cluster tests (make test-cluster, CI)
def test_worker_waits_for_an_index_of_its_own(tmp_path: Path) -> None:
    """The index's server goes away under a running worker: documents are still queued
    (submitting needs the queue only), the worker says once that it lost the index and once
    that it is back, and the job that failed meanwhile is retried and indexed."""
    (tmp_path / "index").mkdir()
    index = AppendOnlyRedis(tmp_path / "index")
    index.start()
    log_path = tmp_path / "worker.log"
    try:
        with redis_server(tmp_path) as queue_port, log_path.open("wb") as log:
            settings = Settings(
                queue_url=f"redis://127.0.0.1:{queue_port}/0",
                index_url=index.url,
                data_dir=tmp_path / "data",
                namespace="apart",
            )
            worker = start_worker(settings, log=log)
            try:
                first = command(settings, "submit", "-", "--id", "a", stdin=as_html(article(1)))
                assert 0 == first.returncode, first.stderr
                wait_for(lambda: 0 == command(settings, "report", "a").returncode)
                index.kill()
                second = command(settings, "submit", "-", "--id", "b", stdin=as_html(article(2)))
                assert 0 == second.returncode, second.stderr
                wait_for(lambda: "lost Redis (index" in log_path.read_text(), timeout=60)
                index.start()
                wait_for(lambda: 0 == command(settings, "report", "b").returncode, timeout=90)
                assert worker.poll() is None
            finally:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
    finally:
        index.stop()
    text = log_path.read_text()
    assert 1 == text.count(f"lost Redis (index {index.url}") and 1 == text.count("Redis is back")


def _cluster_port() -> int:
    """A free loopback port whose cluster bus port (10000 above) is free too."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 40000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


def _start_node(stack: ExitStack, folder: Path) -> int:
    folder.mkdir()
    port = _cluster_port()
    server = subprocess.Popen(
        [
            find_server_binary(),
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
            "--save", "", "--appendonly", "no", "--requirepass", "pw",
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stack.callback(lambda: (server.terminate(), server.wait(timeout=20)))
    client = redis.Redis(port=port, password="pw", socket_connect_timeout=0.2)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            return port
        except redis.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("cluster node did not start") from None
            time.sleep(0.05)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[int]]:
    """Three masters sharing the 16384 slots, no replicas, password ``pw``; their ports."""
    with ExitStack() as stack:
        ports = [_start_node(stack, tmp_path / f"node{n}") for n in range(3)]
        nodes = [redis.Redis(port=p, password="pw") for p in ports]
        for n, node in enumerate(nodes):
            node.execute_command("CLUSTER ADDSLOTS", *range(n * 16384 // 3, (n + 1) * 16384 // 3))
            if n:
                nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", ports[n])
        deadline = time.monotonic() + 30
        while not all(node.cluster("INFO").get("cluster_state") == "ok" for node in nodes):
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.1)
        yield ports


@pytest.mark.slow
def test_index_client_on_a_real_cluster(cluster: list[int], tmp_path: Path) -> None:
    """Two seed nodes of three: the client pings, and keys of different slots (on different
    nodes) are written and read back; wrong credentials are one redacted line."""
    seeds = f"127.0.0.1:{cluster[0]},127.0.0.1:{cluster[1]}"
    settings = Settings(index_url=f"redis+cluster://:pw@{seeds}", data_dir=tmp_path)
    client = index_client(settings)
    assert isinstance(client, RedisCluster)
    assert client.ping()
    keys = ["dedup:a", "dedup:b", "dedup:c", "dedup:d", "dedup:e", "dedup:f"]
    owners = {client.get_node_from_key(key).port for key in keys}
    assert len({client.keyslot(key) for key in keys}) == len(keys) and len(owners) > 1
    for n, key in enumerate(keys):
        assert client.set(key, f"value {n}")
    assert [f"value {n}".encode() for n in range(len(keys))] == [client.get(k) for k in keys]
    client.close()

    with pytest.raises(StoreError) as caught:
        connect_cluster(f"redis+cluster://:wrong-pw@{seeds}")
    assert f"Redis at redis+cluster://:***@{seeds} refused the credentials" == str(caught.value)
    with pytest.raises(StoreError, match="is not a cluster"), redis_server(tmp_path) as port:
        connect_cluster(f"redis+cluster://127.0.0.1:{port}")
