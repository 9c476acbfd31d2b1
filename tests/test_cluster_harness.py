"""The test cluster is a real Redis Cluster: slots enforced, failover, resharding under writes."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ClusterCrossSlotError, MovedError
from redis.retry import Retry

from tests.cluster import SLOTS, LocalCluster

pytestmark = pytest.mark.cluster


def tag_for_slot(slots: set[int]) -> dict[int, str]:
    """A hash tag per slot: keys ``{tag}...`` all land in that slot."""
    tags: dict[int, str] = {}
    i = 0
    while len(tags) < len(slots):
        tag = f"t{i}"
        slot = key_slot(tag.encode())
        if slot in slots and slot not in tags:
            tags[slot] = tag
        i += 1
    return tags


class Writer(threading.Thread):
    """Writes ``SET key value`` through a cluster client until stopped, retrying each write
    until the cluster takes it (a client sees the outage, and keeps going)."""

    def __init__(self, client: RedisCluster, keys: Callable[[int], str]) -> None:
        super().__init__(daemon=True)
        self.client, self.keys = client, keys
        self.acked: dict[str, tuple[str, float]] = {}  # key -> (value, monotonic time)
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.count = 0

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            key, value = self.keys(i), f"v{i}"
            while not self.stopping.is_set():
                try:
                    self.client.set(key, value)
                except (redis.RedisError, OSError) as exc:
                    self.errors.append(type(exc).__name__)
                    time.sleep(0.05)
                    continue
                self.acked[key] = (value, time.monotonic())
                self.count += 1
                break
            i += 1

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count:
            assert self.is_alive(), "writer died"
            assert time.monotonic() < deadline, f"writer wrote {self.count} of {count}"
            time.sleep(0.02)

    def halt(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        assert not self.is_alive()


@pytest.fixture
def writer_factory() -> Iterator[Callable[[RedisCluster, Callable[[int], str]], Writer]]:
    writers: list[Writer] = []

    def make(client: RedisCluster, keys: Callable[[int], str]) -> Writer:
        writer = Writer(client, keys)
        writers.append(writer)
        writer.start()
        return writer

    yield make
    for writer in writers:
        writer.stopping.set()
        writer.join(timeout=30)


def test_keys_in_many_slots_land_on_every_master(
    redis_cluster: LocalCluster, cluster_client: RedisCluster
) -> None:
    for i in range(600):
        cluster_client.set(f"doc:{i}", i)
    assert [str(i).encode() for i in range(600)] == [
        cluster_client.get(f"doc:{i}") for i in range(600)
    ]
    stats = redis_cluster.stats()
    assert 3 == len(stats)
    assert all(s.dbsize > 0 for s in stats.values()), stats
    assert 600 == sum(s.dbsize for s in stats.values())
    assert SLOTS == sum(s.slots for s in stats.values())
    assert all(s.commands.get("set", 0) > 0 for s in stats.values())
    assert redis_cluster.url.startswith("redis+cluster://127.0.0.1:")
    assert len(redis_cluster.url.split(",")) == 3


def test_cluster_client_starts_on_emptied_masters(
    redis_cluster: LocalCluster, cluster_client: RedisCluster
) -> None:
    assert 0 == sum(s.dbsize for s in redis_cluster.stats().values())


def test_a_script_runs_on_one_slot_and_the_server_refuses_two(
    redis_cluster: LocalCluster, cluster_client: RedisCluster
) -> None:
    script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('SET', KEYS[2], ARGV[1])"
    assert b"OK" == cluster_client.eval(script, 2, "{doc:1}:a", "{doc:1}:b", "x")
    assert b"x" == cluster_client.get("{doc:1}:b")

    # Two keys in two slots of the same master, sent to that master directly: no client-side
    # check in the way, so the refusal is the server's.
    master = redis_cluster.node_for_slot(key_slot(b"a"))
    other = next(
        f"k{i}"
        for i in range(10_000)
        if key_slot(f"k{i}".encode()) != key_slot(b"a") and master.owns(key_slot(f"k{i}".encode()))
    )
    node = redis_cluster.node(master.port)
    try:
        # The server's CROSSSLOT reply, which redis-py turns into ClusterCrossSlotError.
        with pytest.raises(ClusterCrossSlotError, match="don't hash to the same slot"):
            node.eval(script, 2, "a", other, "x")
        assert 0 == node.exists("a") + node.exists(other)
        wrong = next(m for m in redis_cluster.masters() if m.id != master.id)
        with (
            pytest.raises(MovedError, match=f"^{key_slot(b'a')} 127.0.0.1:{master.port}$"),
            contextlib.closing(redis_cluster.node(wrong.port)) as elsewhere,
        ):
            elsewhere.set("a", "x")  # another master redirects to the owner
    finally:
        node.close()


@pytest.mark.parametrize(("masters", "replicas"), [(1, 0), (2, 1)])
def test_one_or_two_masters_share_the_slots_evenly(
    tmp_path: Path, masters: int, replicas: int
) -> None:
    """Fewer masters than ``redis-cli --cluster create`` takes: slots assigned by hand, and
    extra server arguments reach every node."""
    with LocalCluster(
        tmp_path, masters, replicas, server_args=["--hash-max-ziplist-entries", "333"]
    ) as cluster:
        counts = [m.slot_count for m in cluster.masters()]
        assert SLOTS == sum(counts) and max(counts) - min(counts) <= 1
        assert masters * replicas == len(cluster.replicas())
        client = cluster.client()
        for i in range(50):
            client.set(f"k{i}", i)
        assert b"7" == client.get("k7")
        for port in cluster.pids:
            with contextlib.closing(cluster.node(port)) as node:
                assert ["333"] == list(node.config_get("hash-max-ziplist-entries").values())


@pytest.mark.slow
def test_a_replica_takes_over_a_killed_master_while_a_client_writes(
    make_cluster: Callable[..., LocalCluster],
    writer_factory: Callable[[RedisCluster, Callable[[int], str]], Writer],
) -> None:
    started = time.monotonic()
    cluster = make_cluster(masters=3, replicas=1)
    print(f"\n3 masters + 3 replicas ready in {time.monotonic() - started:.2f}s")
    assert 3 == len(cluster.masters()) and 3 == len(cluster.replicas())
    victim = cluster.node_for_slot(0)
    replica_ports = {n.port for n in cluster.replicas() if n.master_id == victim.id}
    writer = writer_factory(cluster.client(), lambda i: f"doc:{i}")
    writer.wait_for(300)

    killed_at = time.monotonic()
    new_port = cluster.fail_over(victim.port)
    recovery = time.monotonic() - killed_at
    writer.wait_for(writer.count + 300)
    writer.halt()

    assert new_port in replica_ports
    assert victim.slots == cluster.by_port(new_port).slots
    assert victim.port not in [n.port for n in cluster.masters()]
    assert writer.errors, "the client never saw the master go"
    victim_keys = {k: t for k, (_, t) in writer.acked.items() if victim.owns(key_slot(k.encode()))}
    written_after = [t for t in victim_keys.values() if t > killed_at + recovery]
    assert written_after, "no write reached the promoted replica's slots"
    gap = max(b - a for a, b in itertools.pairwise(sorted(victim_keys.values())))

    reader = cluster.client()
    missing = [k for k, (v, _) in writer.acked.items() if reader.get(k) != v.encode()]
    lost_after_kill = [k for k in missing if writer.acked[k][1] > killed_at]
    print(
        f"failover: replica {new_port} took over {victim.port} in {recovery:.2f}s; longest gap "
        f"between writes to its slots {gap:.2f}s; {len(writer.acked)} writes, "
        f"{len(writer.errors)} client errors ({sorted(set(writer.errors))}), "
        f"{len(missing)} acknowledged writes lost (asynchronous replication)"
    )
    assert recovery < 30
    assert [] == lost_after_kill
    assert len(missing) <= 3  # at most what was in flight when the master died

    # The old master comes back as a replica of the node that replaced it.
    cluster.restart(victim.port)
    back = cluster.by_port(victim.port)
    assert "replica" == back.role
    assert cluster.by_port(new_port).id == back.master_id


@pytest.mark.slow
def test_slots_move_between_masters_while_a_client_writes_into_them(
    make_cluster: Callable[..., LocalCluster],
    writer_factory: Callable[[RedisCluster, Callable[[int], str]], Writer],
) -> None:
    cluster = make_cluster(masters=3)
    source = cluster.node_for_slot(0)
    target = next(m for m in cluster.masters() if m.id != source.id)
    planned = sorted(source.slot_set())[:40]
    tags = list(tag_for_slot(set(planned)).values())
    client = cluster.client()
    before = {f"{{{tag}}}:old:{j}": f"old{j}" for tag in tags for j in range(100)}
    pipe = client.pipeline()
    for key, value in before.items():
        pipe.set(key, value)
    pipe.execute()
    cluster.reset_stats()

    # New keys and overwrites of old ones, all in the slots about to move.
    def keys(i: int) -> str:
        tag = tags[(i * 7) % len(tags)]
        return f"{{{tag}}}:old:{i % 100}" if i % 2 else f"{{{tag}}}:new:{i}"

    writer = writer_factory(cluster.client(), keys)
    writer.wait_for(100)
    started = time.monotonic()
    moved = cluster.migrate_slots(len(planned), source.port, target.port, batch=10)
    took = time.monotonic() - started
    during = writer.count
    writer.wait_for(during + 200)
    writer.halt()

    assert planned == moved
    assert set(planned) <= cluster.by_port(target.port).slot_set()
    assert not set(planned) & cluster.by_port(source.port).slot_set()
    expected = before | {k: v for k, (v, _) in writer.acked.items()}
    reader = cluster.client()
    wrong = [k for k, v in expected.items() if reader.get(k) != v.encode()]
    asked = cluster.stats()[target.port].commands.get("asking", 0)
    print(
        f"\nmigrated {len(moved)} slots ({len(before)} keys) in {took:.2f}s; "
        f"{writer.count} writes during and after, {asked} ASK redirects followed, "
        f"{len(writer.errors)} client errors, {len(wrong)} keys wrong"
    )
    assert [] == wrong
    assert asked > 0, "no write hit a slot in the middle of its move"
    left = cluster.by_port(source.port)
    assert not [k for k in expected if left.owns(key_slot(k.encode()))]


def test_a_password_cluster_needs_the_password(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(masters=3, password="pa:ss word")
    assert cluster.url.startswith("redis+cluster://:pa%3Ass%20word@127.0.0.1:")
    client = cluster.client()
    client.set("k", "v")
    assert b"v" == client.get("k")
    with (
        pytest.raises(redis.AuthenticationError),
        contextlib.closing(
            cluster.node(cluster.ports[0], password="wrong", retry=Retry(NoBackoff(), 0))
        ) as stranger,
    ):
        stranger.ping()


def _redis_servers_on(ports: list[int]) -> list[int]:
    """Pids of any redis-server on this machine listening on one of ``ports`` (a server
    retitles itself ``redis-server 127.0.0.1:PORT [cluster]``)."""
    found = []
    pattern = re.compile(r"redis-server \S*:(" + "|".join(map(str, ports)) + r")\b")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if pattern.search(" ".join(argv)):
            found.append(int(entry.name))
    return found


def test_stop_leaves_no_server_running(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, masters=3, replicas=1)
    with cluster:
        pids = cluster.pids
        ports = list(cluster.ports)
        assert 6 == len(pids)
        assert sorted(pids.values()) == sorted(_redis_servers_on(ports))
        cluster.kill(ports[-1])
        cluster.restart(ports[-1])
        pids = cluster.pids
    assert {} == cluster.pids
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert [] == _redis_servers_on(ports)
    for port in ports:
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    assert all((tmp_path / f"node-{p}" / "redis.log").stat().st_size > 0 for p in ports)
