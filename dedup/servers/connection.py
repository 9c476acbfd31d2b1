"""Connecting to Redis: the configured servers or the embedded one, with errors for people.

The queue and the index may live on different servers (``DEDUP_QUEUE_URL``,
``DEDUP_INDEX_URL``, each defaulting to ``DEDUP_REDIS_URL``). The queue is always one
standalone Redis, since RQ does not run on a cluster; the index may be a Redis Cluster,
named by ``redis+cluster://`` (``rediss+cluster://`` with TLS) and one or more seed nodes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.cluster
from redis._parsers.commands import CommandPolicies, RequestPolicy, ResponsePolicy
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.policies import BasePolicyResolver, PolicyResolver, StaticPolicyResolver
from redis.connection import SSLConnection, parse_url
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from dedup.errors import ConfigError, StoreError
from dedup.settings import Settings

IndexClient: TypeAlias = redis.Redis | RedisCluster
"""A client of the index: one Redis server or a Redis Cluster."""

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""URL schemes naming a Redis Cluster, and the scheme of each one's nodes."""

_SECRET_OPTIONS = {"password", "ssl_password"}
"""Query options of a URL that are secrets too."""


class _ScriptsByKeys(BasePolicyResolver):
    """EVALSHA is routed by its KEYS: without a policy, redis-py's cluster pipeline asks a
    node for the keys of every script call (COMMAND GETKEYS), a round trip per call."""

    def __init__(self, fallback: PolicyResolver | None = None) -> None:
        keyed = CommandPolicies(
            request_policy=RequestPolicy.DEFAULT_KEYED,
            response_policy=ResponsePolicy.DEFAULT_KEYED,
        )
        super().__init__({"core": {"evalsha": keyed, "eval": keyed}}, fallback)

    def with_fallback(self, fallback: PolicyResolver) -> PolicyResolver:
        return _ScriptsByKeys(fallback)


def cluster_policies() -> PolicyResolver:
    """How a cluster client routes commands: redis-py's policies, and scripts by their keys."""
    return StaticPolicyResolver(fallback=_ScriptsByKeys())


def redact(url: str) -> str:
    """The URL with any password replaced, fit for messages and logs (cluster URLs with
    several hosts too)."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "<invalid URL>"
    userinfo, at, hosts = parts.netloc.rpartition("@")
    changed = {}
    if at and ":" in userinfo:
        changed["netloc"] = f"{userinfo.partition(':')[0]}:***@{hosts}"
    if any(name in _SECRET_OPTIONS for name, _ in query):
        hidden = [(n, "***" if n in _SECRET_OPTIONS else v) for n, v in query]
        changed["query"] = urlencode(hidden, safe="/*")
    return urlunsplit(parts._replace(**changed)) if changed else url


def is_cluster_url(url: str) -> bool:
    """Whether the URL names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=2.0, base=0.05), 6)


def connect(url: str) -> redis.Redis:
    """A client that retries with backoff on dropped connections, checked with a PING."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=5,
            socket_timeout=60,
            health_check_interval=30,
            retry=_retry(),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        client.ping()
    except ValueError as exc:
        raise StoreError(f"invalid Redis URL {redact(url)}: {exc}") from None
    except (redis.RedisError, OSError) as exc:
        raise connect_error(url, exc) from None
    return client


def connect_error(url: str, exc: BaseException) -> StoreError:
    """One line saying why connecting to ``url`` failed (its password redacted)."""
    if isinstance(exc, redis.AuthenticationError):
        return StoreError(f"Redis at {redact(url)} refused the credentials")
    if isinstance(exc, redis.ResponseError):
        return StoreError(f"Redis at {redact(url)} answered: {exc}")
    reason = str(exc).split("\n")[0] or type(exc).__name__
    return StoreError(f"cannot reach Redis at {redact(url)}: {reason}")


def unlink_all(client: IndexClient, keys: Iterable[bytes | str], batch: int = 1000) -> int:
    """Unlink these keys, ``batch`` per command (a scan's keys, however many; a cluster
    client splits each command by slot); returns how many there were."""
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


def parse_cluster_url(url: str) -> tuple[list[ClusterNode], dict[str, Any]]:
    """The seed nodes and the connection options of a cluster URL.

    ``redis+cluster://[[user]:password@]host[:port][,host[:port]...][/0][?option=value...]``
    (``rediss+cluster://`` with TLS); IPv6 hosts in brackets, port 6379 when left out. The
    options are those redis-py takes in ``redis://`` and ``rediss://`` URLs (``ssl_ca_certs``,
    ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``, timeouts ...), as far as a cluster
    client takes them. Raises ``ValueError`` saying what is wrong.
    """
    scheme, _, rest = url.partition("://")
    node_scheme = CLUSTER_SCHEMES.get(scheme.lower())
    if node_scheme is None:
        raise ValueError(f"a cluster URL starts with {' or '.join(CLUSTER_SCHEMES)}://")
    parts = urlsplit(f"//{rest}")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    nodes: list[ClusterNode] = []
    for seed in hosts.split(","):
        if not seed.strip():
            raise ValueError("no host" if not hosts.strip() else "an empty seed node")
        node = urlsplit(f"//{seed.strip()}")
        try:
            port = node.port or 6379
        except ValueError:
            raise ValueError(f"bad port in seed node {seed.strip()!r}") from None
        if not node.hostname:
            raise ValueError(f"no host in seed node {seed.strip()!r}")
        nodes.append(ClusterNode(node.hostname, port))  # type: ignore[no-untyped-call]
    # the options as redis-py reads them from the URL of one node (its query parsers,
    # percent-decoding of the credentials)
    first = urlunsplit((node_scheme, f"{userinfo}{at}127.0.0.1", parts.path, parts.query, ""))
    options: dict[str, Any] = parse_url(first)  # type: ignore[no-untyped-call]
    options.pop("host", None)
    options.pop("port", None)
    if options.pop("db", 0) != 0:
        raise ValueError("a cluster has database 0 only")
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    unsupported = sorted(
        name
        for name in options
        if name not in redis.cluster.REDIS_ALLOWED_KEYS or name in ("retry", "host", "port")
    )
    if unsupported:
        raise ValueError(f"a cluster client does not take {', '.join(unsupported)}")
    return nodes, options


def connect_cluster(
    url: str, address_remap: Callable[[tuple[str, int]], tuple[str, int]] | None = None
) -> RedisCluster:
    """A Redis Cluster client from a cluster URL: the timeouts and retries of
    :func:`connect`, checked with a PING. ``address_remap`` maps the address a node gives
    for itself to the one to connect to (a cluster behind NAT or proxies)."""
    try:
        nodes, options = parse_cluster_url(url)
    except ValueError as exc:
        raise StoreError(f"invalid Redis URL {redact(url)}: {exc}") from None
    try:
        client = RedisCluster(
            startup_nodes=nodes,
            retry=_retry(),
            policy_resolver=cluster_policies(),
            address_remap=address_remap,
            **{"socket_connect_timeout": 5, "socket_timeout": 60, **options},
        )
        client.ping()
    except RedisClusterException as exc:
        cause = exc.__cause__
        if "cluster mode is not enabled" in str(cause or exc).lower():
            raise StoreError(
                f"Redis at {redact(url)} is not a cluster (cluster mode is not enabled there); "
                "one server takes redis:// or rediss://"
            ) from None
        raise connect_error(url, cause or exc) from None
    except (redis.RedisError, OSError) as exc:
        raise connect_error(url, exc) from None
    return client


def queue_client(settings: Settings) -> redis.Redis:
    """The Redis of the queue (``queue_url``, else ``redis_url``, else the embedded one).

    A cluster is refused: RQ keeps a job's keys apart and moves them with multi-key
    commands and scripts, which a cluster refuses across slots (rq#1048, #1942, #2021).
    """
    from dedup.servers.embedded import ensure_server

    url = settings.effective_queue_url
    if url is not None and is_cluster_url(url):
        raise ConfigError(
            f"the queue needs a standalone Redis, not the cluster {redact(url)} "
            "(RQ does not run on a Redis Cluster): set DEDUP_QUEUE_URL"
        )
    return connect(url or ensure_server(settings.data_dir))


def index_client(settings: Settings) -> IndexClient:
    """The Redis of the index (``index_url``, else ``redis_url``, else the embedded one):
    one server or a Redis Cluster."""
    from dedup.servers.embedded import ensure_server

    url = settings.effective_index_url
    if url is not None and is_cluster_url(url):
        return connect_cluster(url)
    return connect(url or ensure_server(settings.data_dir))


def shared_location(settings: Settings) -> bool:
    """Whether the queue and the index live on the same server."""
    return settings.effective_queue_url == settings.effective_index_url


def clients(settings: Settings) -> tuple[redis.Redis, IndexClient]:
    """The queue's client and the index's, one client when they share a server."""
    queue = queue_client(settings)
    return queue, queue if shared_location(settings) else index_client(settings)


OUTAGE_BACKOFF = ExponentialBackoff(cap=10.0, base=0.25)
"""Pauses between attempts while Redis is away: 0.5 s, 1 s, 2 s ... then every 10 s."""


def wait_for_redis(
    settings: Settings, client: IndexClient, role: Literal["queue", "index"] = "queue"
) -> None:
    """Block until ``client`` (the queue's or the index's, as ``role`` says) gets a PING
    through, however long Redis is away.

    When that server is the embedded one, nobody else would start it again: each attempt
    starts it if it is not running (under its lock, so concurrent workers start one
    server). Its append-only file brings the data back.
    """
    from dedup.servers.embedded import ensure_server

    url = settings.effective_queue_url if role == "queue" else settings.effective_index_url
    failures = 0
    while True:
        if url is None:
            with contextlib.suppress(StoreError):  # not startable yet (a full disk): try later
                ensure_server(settings.data_dir)
        try:
            client.ping()
            return
        except (redis.RedisError, RedisClusterException, OSError):
            failures += 1
        time.sleep(OUTAGE_BACKOFF.compute(failures))


def location(settings: Settings, role: Literal["queue", "index"]) -> str:
    """Where the queue or the index lives, for people (password redacted)."""
    url = settings.effective_queue_url if role == "queue" else settings.effective_index_url
    return redact(url) if url else f"embedded Redis in {settings.data_dir}"


def display_url(settings: Settings) -> str:
    """Where the queue and the index live, for people (password redacted): one location
    when they share it, else ``queue <location>, index <location>``."""
    if shared_location(settings):
        return location(settings, "index")
    return f"queue {location(settings, 'queue')}, index {location(settings, 'index')}"
