"""Extra real Redis servers for tests: with a password, with TLS, on free loopback ports."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from dedup.servers.embedded import find_server_binary, free_port


def _wait(client: redis.Redis, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            client.ping()
            return
        except redis.AuthenticationError:
            return
        except redis.RedisError:
            if server.poll() is not None:
                raise RuntimeError("test Redis exited") from None
            time.sleep(0.05)
    raise RuntimeError("test Redis did not answer")


@contextmanager
def redis_server(folder: Path, *args: str, binary: str | None = None) -> Iterator[int]:
    """A throwaway redis-server on a free loopback port; yields the port."""
    port = free_port()
    command = [binary or find_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--dir", str(folder), "--save", "", "--appendonly", "no", *args]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(redis.Redis(port=port, socket_connect_timeout=0.2), server)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1: (ca, cert, key)."""
    ca_key, ca = folder / "ca.key", folder / "ca.crt"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.crt"
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    steps = [
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
         "-out", str(ca), "-days", "1", "-subj", "/CN=dedup test CA"],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(ext)],
    ]  # fmt: skip
    for step in steps:
        subprocess.run(step, capture_output=True, check=True)
    return ca, cert, key


class AppendOnlyRedis:
    """A redis-server with an append-only file on a fixed loopback port, to kill and restart.

    Killed with SIGKILL, as a crash; started again on the same port, it loads its data back
    from the file, so clients that knew the port reconnect to the same data.
    """

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = [
            find_server_binary(),
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(folder),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (again) and wait until it answers."""
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait(redis.Redis(port=self.port, socket_connect_timeout=0.2), self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final write."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=20)
            self.process = None

    def stop(self) -> None:
        """Stop the server if it runs."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
