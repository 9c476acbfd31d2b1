"""A throwaway Redis server per measurement, on a unix socket in a temporary folder.

Benchmarks never touch a server someone else uses: each run starts its own, without
persistence (``--save "" --appendonly no``) so disk writes do not blur the timings, and stops
it at the end, whatever happened.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from dedup.servers.embedded import LAYOUT_CONFIG


def default_binary() -> str:
    """A production-like ``redis-server`` on PATH, else the one dedup embeds."""
    found = shutil.which("redis-server")
    if found:
        return found
    from dedup.servers.embedded import find_server_binary

    return find_server_binary()


def server_version(binary: str) -> str:
    """``redis-server --version`` in one line."""
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip()


@contextmanager
def redis_server(binary: str, extra: list[str] | None = None) -> Iterator[str]:
    """Start a server on a unix socket, yield its URL, stop it and remove its folder."""
    folder = Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    sock = folder / "redis.sock"
    args = [
        binary,
        "--port", "0",
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--dir", str(folder),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--logfile", str(folder / "redis.log"),
        *LAYOUT_CONFIG,  # as the embedded server dedup starts by default
        *(extra or []),
    ]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: see {folder}/redis.log")
            try:
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer within 15 s") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
