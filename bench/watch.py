"""What the other clients of a Redis server see while a benchmark phase runs, and a wall-clock
budget that keeps a phase from waiting on a stuck server.

Redis runs one command at a time: a script that walks a large set holds every other client
of that server for as long as it runs, and past ``busy-reply-threshold`` (5 s by default)
they are answered ``BUSY``. :class:`Watch` keeps, per master, a thread that sends ``PING``
every 50 ms on a connection of its own and counts the ``BUSY`` answers and the longest wait
for a ``PONG``, and gathers the server's slow log (every command slower than the threshold
it sets), so that each phase gets its slowest commands, with the script and the first key
they ran on. :class:`Budget` ends a phase that runs past its seconds: a read-only script
still running is stopped with ``SCRIPT KILL``; otherwise (a script that has written cannot
be stopped) the servers are killed, and the phases after it are not run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import redis

PING_EVERY = 0.05
"""Seconds between two PINGs of the watcher."""
SLOWLOG_EVERY = 1.0
"""Seconds between two reads of the slow log (a server killed at the budget keeps the
entries read before)."""
SLOWLOG_LEN = 100_000
"""Entries a server keeps in its slow log during a run."""
SLOW_MS = 10.0
"""A command slower than this stalls the server's other clients noticeably (the issue's
bound while indexing and reading)."""
TOP = 5
"""Slowest commands kept per phase."""
OWN = frozenset({"SLOWLOG", "PING", "CONFIG", "SCRIPT"})
"""The watcher's own commands, left out of what a phase cost (reading a slow log of
thousands of entries can take over 10 ms itself)."""
Connect = Callable[[float | None], redis.Redis]
"""A new client of one master, with this socket timeout (None: wait as long as it takes),
replies as bytes."""


def script_names() -> dict[str, str]:
    """The SHA1 digest of each of the index's scripts (as EVALSHA names them) and its file
    name, for the dedup importable here; empty when its scripts are laid out otherwise."""
    try:
        from dedup.index import scripts

        folder = files("dedup.index").joinpath("lua")
        names = [p.name for p in folder.iterdir() if p.name.endswith(".lua")]
        return {scripts.source(n).sha: n for n in names if n != "common.lua"}
    except (ImportError, AttributeError, OSError):
        return {}


@dataclass
class _Node:
    """One master as the watcher sees it."""

    name: str
    connect: Connect
    pid: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    pings: int = 0
    busy: int = 0
    longest: float = 0.0
    waiting: float | None = None
    """When the PING not answered yet (or answered BUSY since) was first sent."""
    dead: bool = False
    """Killed by :meth:`Watch.kill`."""
    slow: dict[int, dict[str, Any]] = field(default_factory=dict)
    sched: tuple[int, int] = (0, 0)
    """Its main thread's nanoseconds on a core and waiting for one, at :meth:`Watch.begin`."""


def _schedstat(pid: int) -> tuple[int, int]:
    """Nanoseconds a process's main thread (where Redis runs commands) has run on a core and
    waited in a run queue for one (Linux ``/proc/PID/schedstat``); zeros where unread."""
    try:
        on_core, waiting = Path(f"/proc/{pid}/schedstat").read_text().split()[:2]
        return int(on_core), int(waiting)
    except (OSError, ValueError):
        return 0, 0


class Watch:
    """PINGs and slow logs of every master, per phase: ``begin()``, the phase, ``end()``."""

    def __init__(
        self,
        masters: dict[str, tuple[Connect, int]],
        slower_than_us: int = 1000,
    ) -> None:
        """``masters``: a name for each, how to connect to it and its process id;
        ``slower_than_us``: the slow log's threshold."""
        self.nodes = [_Node(name, connect, pid) for name, (connect, pid) in masters.items()]
        self.scripts = script_names()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for node in self.nodes:
            with contextlib.closing(node.connect(10)) as client:
                client.config_set("slowlog-log-slower-than", slower_than_us)
                client.config_set("slowlog-max-len", SLOWLOG_LEN)
                client.slowlog_reset()

    @contextmanager
    def running(self) -> Iterator[Watch]:
        """The watcher threads, from the block's start to its end."""
        for node in self.nodes:
            thread = threading.Thread(target=self._watch, args=(node,), daemon=True)
            thread.start()
            self._threads.append(thread)
        try:
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=5)

    def _watch(self, node: _Node) -> None:
        client = node.connect(None)
        polled = 0.0
        try:
            while not self._stop.is_set() and not node.dead:
                sent = time.monotonic()
                try:
                    client.ping()
                    answered = True
                except redis.ResponseError as exc:
                    if not str(exc).startswith("BUSY"):
                        raise
                    answered = False
                now = time.monotonic()
                with node.lock:
                    node.pings += 1
                    if answered:
                        node.longest = max(node.longest, now - (node.waiting or sent))
                        node.waiting = None
                    else:
                        node.busy += 1
                        node.waiting = node.waiting or sent
                if answered and now - polled >= SLOWLOG_EVERY:
                    # BUSY when a long script began since the PONG: read it next time
                    with contextlib.suppress(redis.ResponseError):
                        self._read_slowlog(node, client, 1000)
                    polled = time.monotonic()
                self._stop.wait(PING_EVERY)
        except (redis.ConnectionError, OSError):
            pass  # killed at a budget, or stopped at the end of the run
        finally:
            client.close()

    def _read_slowlog(self, node: _Node, client: redis.Redis, count: int) -> None:
        entries = client.slowlog_get(count)
        with node.lock:
            for entry in entries:
                if entry.get("client_address") in (b"?:0", "?:0"):
                    continue  # run by a script, whose own entry holds its time
                found = self._entry(node, entry)
                if found["command"] not in OWN:
                    node.slow[int(entry["id"])] = found

    def _entry(self, node: _Node, entry: dict[str, Any]) -> dict[str, Any]:
        words = bytes(entry["command"]).split(b" ")
        name = words[0].decode(errors="replace").upper()
        found: dict[str, Any] = {
            "ms": round(int(entry["duration"]) / 1000, 3),
            "command": name,
            "node": node.name,
        }
        if name in ("EVALSHA", "EVAL") and len(words) > 3:
            sha = words[1].decode(errors="replace")
            found["script"] = self.scripts.get(sha, sha[:12]) if name == "EVALSHA" else "EVAL"
            keys = int(words[2]) if words[2].isdigit() else 0
            found["keys"] = [w.decode(errors="replace") for w in words[3 : 3 + min(keys, 3)]]
        elif len(words) > 1:
            found["key"] = words[1].decode(errors="replace")[:80]
        return found

    def begin(self) -> None:
        """Count from now: slow logs emptied, waits and BUSY answers forgotten."""
        for node in self.nodes:
            if node.dead:
                continue
            with (
                contextlib.suppress(redis.ResponseError),  # BUSY: a script still runs
                contextlib.closing(node.connect(10)) as client,
            ):
                client.slowlog_reset()
            with node.lock:
                node.slow.clear()
                node.pings = node.busy = 0
                node.longest = 0.0
                node.sched = _schedstat(node.pid)

    def end(self) -> dict[str, Any]:
        """What the phase cost every master's other clients, since :meth:`begin`."""
        entries: list[dict[str, Any]] = []
        busy = pings = on_core = waiting = 0
        longest = 0.0
        now = time.monotonic()
        for node in self.nodes:
            ran, waited_ns = _schedstat(node.pid)
            if ran:
                on_core += ran - node.sched[0]
                waiting += waited_ns - node.sched[1]
            if not node.dead:
                with (
                    contextlib.suppress(redis.RedisError, OSError),
                    contextlib.closing(node.connect(10)) as client,
                ):
                    self._read_slowlog(node, client, SLOWLOG_LEN)
            with node.lock:
                entries += node.slow.values()
                busy += node.busy
                pings += node.pings
                waited = now - node.waiting if node.waiting is not None else 0.0
                longest = max(longest, node.longest, waited)
        entries.sort(key=lambda e: -e["ms"])
        scripts: dict[str, dict[str, float]] = {}
        for entry in entries:
            name = entry.get("script", entry["command"])
            row = scripts.setdefault(name, {"logged": 0, "over_10ms": 0, "max_ms": 0.0})
            row["logged"] += 1
            row["over_10ms"] += entry["ms"] > SLOW_MS
            row["max_ms"] = max(row["max_ms"], entry["ms"])
        return {
            "slowest_ms": entries[0]["ms"] if entries else 0.0,
            "over_10ms": sum(e["ms"] > SLOW_MS for e in entries),
            "logged": len(entries),
            "slowest": entries[:TOP],
            "by_command": scripts,
            "busy": busy,
            "longest_stall_ms": round(longest * 1000, 1),
            "pings": pings,
            "on_core_ms": round(on_core / 1e6, 1),
            "waiting_for_core_ms": round(waiting / 1e6, 1),
            "server_killed": not self.alive,
        }

    def unstick(self) -> str:
        """Stop what holds the servers: ``SCRIPT KILL`` where a read-only script runs, and
        when that is not enough, the servers themselves (SIGKILL). Says which it did."""
        killed_script = False
        for node in self.nodes:
            try:
                with contextlib.closing(node.connect(2)) as client:
                    client.script_kill()
                    killed_script = True
            except redis.ResponseError as exc:
                if not str(exc).startswith("NOTBUSY"):
                    return self.kill()
            except (redis.RedisError, OSError):
                return self.kill()
        if killed_script:
            return "script killed"
        return self.kill()  # no script holds them: round trips go on, too many to wait for

    def kill(self) -> str:
        """SIGKILL every master (processes this run started)."""
        for node in self.nodes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGKILL)
            node.dead = True
        return "servers killed"

    @property
    def alive(self) -> bool:
        """No master was killed."""
        return not any(node.dead for node in self.nodes)


class Budget:
    """A phase's seconds: past them, ``stop()`` is called once (from a timer thread)."""

    def __init__(self, seconds: float, stop: Callable[[], str]) -> None:
        self.seconds = seconds
        self._stop = stop
        self._started = time.monotonic()
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True
        self._lock = threading.Lock()
        self.action: str | None = None
        """What was done at the budget (None while within it)."""

    def __enter__(self) -> Budget:
        self._started = time.monotonic()
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()

    def expire(self) -> None:
        """Do what the budget's end does, now (once, whoever comes first: the timer or a
        phase that knows it cannot finish)."""
        with self._lock:
            if self.action is None:
                self.action = self._stop()

    @property
    def expired(self) -> bool:
        return self.action is not None

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def left(self) -> float:
        return self.seconds - self.elapsed()


def timed(
    items: Sequence[str], operation: Callable[[str], object], budget: Budget
) -> tuple[list[float], str | None]:
    """Seconds of ``operation`` on each item, while the budget allows: none is started once
    the slowest so far would not fit in what is left. Returns the seconds and why the
    samples stopped short (None when every item was done)."""
    seconds: list[float] = []
    for item in items:
        if budget.left() < max(seconds, default=0.0):
            return seconds, f"stopped at the budget after {len(seconds)} of {len(items)}"
        start = time.perf_counter()
        try:
            operation(item)
        except Exception:
            if not budget.expired:
                raise
            taken = time.perf_counter() - start
            return seconds, f"one ran past the budget ({taken:.0f} s, {budget.action})"
        seconds.append(time.perf_counter() - start)
    return seconds, None
