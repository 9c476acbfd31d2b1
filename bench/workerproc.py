"""Worker processes for end-to-end runs: ``python -m dedup worker`` as a user starts it.

Workers are started before the clock starts and waited for until RQ lists them all, so a
run times submission and processing, not interpreter start-up; they are stopped (their own
process group only) after the last report is stored.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from rq import Queue, Worker

from bench.measure import REPO, wait_until

CODE = {"dir": REPO}
"""Where worker and command subprocesses import dedup from (see :func:`freeze_code`)."""


def freeze_code(folder: Path) -> Path:
    """Copy the code a run measures, so that edits to the working tree during a long run
    cannot change what its worker and command subprocesses run (or break them half-way)."""
    ignore = shutil.ignore_patterns("__pycache__", "results", "*.pyc")
    for name in ("dedup", "workers", "bench", "config"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, folder / name, ignore=ignore, dirs_exist_ok=True)
    CODE["dir"] = folder
    return folder


def worker_env(url: str, namespace: str, queue: str) -> dict[str, str]:
    """The environment a dedup command needs to use this Redis, namespace and queue."""
    env = dict(os.environ)
    env.update({"DEDUP_REDIS_URL": url, "DEDUP_NAMESPACE": namespace, "DEDUP_QUEUE": queue})
    env["PYTHONPATH"] = str(CODE["dir"])
    return env


def dedup_command() -> list[str]:
    """``dedup`` as a user runs it, from the code of this run."""
    return [sys.executable, "-m", "dedup"]


@contextmanager
def running_workers(
    connection: redis.Redis, url: str, namespace: str, queue: str, processes: int
) -> Iterator[None]:
    """``dedup worker --processes N`` on the queue, ready when the block starts."""
    command = [*dedup_command(), "worker", "--processes", str(processes)]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        command,
        cwd=CODE["dir"],
        env=worker_env(url, namespace, queue),
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,  # its own group: stopping it stops its children, nothing else
    )
    try:
        rq_queue = Queue(queue, connection=connection)

        def ready() -> bool:
            if process.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(
                    f"dedup worker exited with code {process.returncode}: {' | '.join(tail)}"
                )
            return Worker.count(connection=connection, queue=rq_queue) >= processes

        wait_until(ready, timeout=60, interval=0.05)
        yield
    finally:
        stop(process)
        log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(process: subprocess.Popen[bytes], patience: float = 30.0) -> None:
    """Stop a process started in a group of its own, with its children: RQ's warm shutdown,
    then SIGKILL after ``patience`` seconds."""
    pgid = process.pid
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)  # RQ's warm shutdown: idle workers leave at once
    deadline = time.monotonic() + patience
    while _group_alive(pgid) and time.monotonic() < deadline:
        process.poll()
        time.sleep(0.05)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()
