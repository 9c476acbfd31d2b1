"""Security: JSON-only jobs, credentials and TLS through the URL, safe terminal output."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import redis
from rq import Queue
from rq.registry import FailedJobRegistry

from dedup.client import Client
from dedup.index.store import Store
from dedup.queue.queues import JOB_FUNCTION, make_queue
from dedup.settings import Settings
from tests.helpers import article, as_html, command, skip_unless_ci
from tests.servers import make_certificates, redis_server


class Exploit:
    """Unpickling this would run a shell command that leaves a file behind."""

    marker = ""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickled_job_is_rejected_unrun(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A pickled payload on the queue fails without being unpickled; the worker carries on."""
    Exploit.marker = str(tmp_path / "pwned")
    pickling_queue = Queue(settings.queue, connection=redis_client)  # RQ's default: pickle
    job = pickling_queue.enqueue(JOB_FUNCTION, [Exploit()])
    Client(settings).submit(as_html(article(1)), doc_id="after")
    result = command(str(settings.redis_url), "worker", "--burst")
    assert 0 == result.returncode, result.stderr
    assert not (tmp_path / "pwned").exists()
    assert [job.id] == FailedJobRegistry(queue=make_queue(settings, redis_client)).get_job_ids()
    assert Store(redis_client, settings).exists("after")


def test_password_in_url_is_used_and_never_printed(tmp_path: Path) -> None:
    """A Redis with requirepass works through the URL; output shows *** instead."""
    with redis_server(tmp_path, "--requirepass", "s3cret-pw") as port:
        url = f"redis://:s3cret-pw@127.0.0.1:{port}/0"
        assert 0 == command(url, "check", "-", "--id", "a", stdin=as_html(article(2))).returncode
        stats = command(url, "stats")
        assert 0 == stats.returncode, stats.stderr
        assert "s3cret-pw" not in stats.stdout + stats.stderr
        assert f"redis://:***@127.0.0.1:{port}/0" in stats.stdout
        wrong = command(f"redis://:wrong-pw@127.0.0.1:{port}/0", "stats")
        assert 3 == wrong.returncode
        assert "wrong-pw" not in wrong.stderr and "***" in wrong.stderr
        assert 1 == len(wrong.stderr.strip().splitlines())


def test_tls_through_rediss_url(tmp_path: Path) -> None:
    """rediss:// with a CA in the URL reaches a TLS-only Redis."""
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("openssl") is None:
        skip_unless_ci("needs Debian's redis-server (built with TLS) and openssl")
    ca, cert, key = make_certificates(tmp_path)
    tls = ["--tls-port", "0", "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    tls += ["--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]
    from dedup.servers.embedded import free_port

    tls_port = free_port()
    tls[1] = str(tls_port)
    try:
        context = redis_server(tmp_path, *tls, "--requirepass", "pw", binary=binary)
        context.__enter__()
    except RuntimeError:
        skip_unless_ci("this redis-server has no TLS support")
    try:
        url = f"rediss://:pw@127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
        result = command(url, "check", "-", "--id", "tls", "--json", stdin=as_html(article(3)))
        assert 0 == result.returncode, result.stderr
        assert "tls" == json.loads(result.stdout)["doc_id"]
        plain = command(f"redis://:pw@127.0.0.1:{tls_port}/0", "stats")
        assert 3 == plain.returncode
    finally:
        context.__exit__(None, None, None)


def test_terminal_control_sequences_are_not_replayed(settings: Settings) -> None:
    """Escape sequences in scraped text, ids or URLs never reach the terminal raw."""
    evil = "\x1b]0;owned\x07\x1b[2J\x1b[31m"
    body = article(4)
    body[0] = evil + body[0]
    refused = json.dumps({"id": "evil-url", "url": f"https://example.com/{evil}", "text": "x"})
    result = command(str(settings.redis_url), "submit", "--jsonl", "-", stdin=refused)
    assert 2 == result.returncode  # control characters never get into a URL
    assert "\x1b" not in result.stderr and "invalid URL" in result.stderr
    line = json.dumps({"id": "evil", "url": "https://example.com/e", "html": as_html(body + body)})
    assert 0 == command(str(settings.redis_url), "submit", "--jsonl", "-", stdin=line).returncode
    assert 0 == command(str(settings.redis_url), "worker", "--burst").returncode
    for words in (["report", "evil"], ["list"], ["report", "evil", "--json"]):
        result = command(str(settings.redis_url), *words)
        assert 0 == result.returncode, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
