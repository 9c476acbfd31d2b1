"""A real ``dedup serve`` process for the web tests, on the test Redis, with two tokens."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from dedup.servers.embedded import free_port
from dedup.settings import Settings
from dedup.web.auth import new_token


@dataclass(frozen=True)
class Server:
    """A running server: its address, a read-write and a read-only token, its settings, its
    process."""

    url: str
    token: str
    read_only_token: str
    settings: Settings
    process: subprocess.Popen[bytes]

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client sending ``token`` (the read-write one unless given; "" for none)."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def running_server(
    redis_url: str, namespace: str, *extra: str, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Start ``dedup serve`` (with ``env`` added to its environment) and wait until
    ``/healthz`` answers; stop it afterwards."""
    token, entry = new_token()
    read_only, ro_entry = new_token(read_only=True)
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115  closed in the finally below, after the server
    environment = {
        **os.environ,
        "DEDUP_REDIS_URL": redis_url,
        "DEDUP_NAMESPACE": namespace,
        "DEDUP_API_TOKENS": f"{entry},{ro_entry}",
        "DEDUP_RETRY_BACKOFF": "0",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "dedup", "serve", "--port", str(port), *extra],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"dedup serve did not start: {log.read().decode()[-3000:]}")
            time.sleep(0.1)
        settings = Settings(redis_url=redis_url, namespace=namespace, review_text_days=1)
        yield Server(
            url, token, read_only, settings, process
        )  # its workers keep text for the pages
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
