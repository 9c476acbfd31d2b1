"""Connecting to Redis: the configured server or the embedded one, with errors for people."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from dedup.errors import StoreError
from dedup.settings import Settings

IndexClient = redis.Redis | RedisCluster
"""Where the index lives: one server, or a Redis Cluster."""


def redact(url: str) -> str:
    """The URL with any password replaced, fit for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def connect(url: str) -> redis.Redis:
    """A client that retries with backoff on dropped connections, checked with a PING."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=5,
            socket_timeout=60,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), 6),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        client.ping()
    except ValueError as exc:
        raise StoreError(f"invalid Redis URL {redact(url)}: {exc}") from None
    except redis.AuthenticationError:
        raise StoreError(f"Redis at {redact(url)} refused the credentials") from None
    except redis.ResponseError as exc:
        raise StoreError(f"Redis at {redact(url)} answered: {exc}") from None
    except (redis.RedisError, OSError) as exc:
        reason = str(exc).split("\n")[0] or type(exc).__name__
        raise StoreError(f"cannot reach Redis at {redact(url)}: {reason}") from None
    return client


def unlink_all(client: IndexClient, keys: Iterable[bytes | str], batch: int = 1000) -> int:
    """Unlink these keys, ``batch`` per command (a scan's keys, however many); returns how
    many there were."""
    pending: list[bytes | str] = []
    total = 0
    for key in keys:
        pending.append(key)
        if len(pending) >= batch:
            client.unlink(*pending)
            total += len(pending)
            pending = []
    if pending:
        client.unlink(*pending)
        total += len(pending)
    return total


def redis_for(settings: Settings) -> redis.Redis:
    """The configured Redis, or the embedded one of the data folder when none is configured."""
    from dedup.servers.embedded import ensure_server

    return connect(settings.redis_url or ensure_server(settings.data_dir))


OUTAGE_BACKOFF = ExponentialBackoff(cap=10.0, base=0.25)
"""Pauses between attempts while Redis is away: 0.5 s, 1 s, 2 s ... then every 10 s."""


def wait_for_redis(settings: Settings, client: redis.Redis) -> None:
    """Block until ``client`` gets a PING through, however long Redis is away.

    With no ``redis_url`` the server is the embedded one, and nobody else would start it
    again: each attempt starts it if it is not running (under its lock, so concurrent
    workers start one server). Its append-only file brings the data back.
    """
    from dedup.servers.embedded import ensure_server

    failures = 0
    while True:
        if settings.redis_url is None:
            with contextlib.suppress(StoreError):  # not startable yet (a full disk): try later
                ensure_server(settings.data_dir)
        try:
            client.ping()
            return
        except (redis.RedisError, OSError):
            failures += 1
        time.sleep(OUTAGE_BACKOFF.compute(failures))


def display_url(settings: Settings) -> str:
    """Where the index lives, for people (password redacted)."""
    if settings.redis_url:
        return redact(settings.redis_url)
    return f"embedded Redis in {settings.data_dir}"
