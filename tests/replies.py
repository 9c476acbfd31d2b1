"""A TCP proxy between clients and Redis that loses replies: it lets a command reach Redis,
and where its rule says so, cuts the client's connection instead of passing the reply on.

That is what a network blip, a proxy or a failover does to a client: the server ran the
command, the client never heard, and its retry policy sends the command again. The proxy
reads the protocol both ways (RESP2: requests are arrays of bulk strings), so the rule sees
each command whose reply is about to be lost.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from redis.cluster import RedisCluster

from dedup.index import scripts
from dedup.servers.connection import connect_cluster
from tests.cluster import LocalCluster

Rule = Callable[[list[bytes]], bool]
"""Given a command (its words), whether to lose its reply."""


class Incomplete(Exception):
    """The buffer ends inside a message."""


def _line(buffer: bytes | bytearray, at: int) -> tuple[bytes, int]:
    end = buffer.find(b"\r\n", at)
    if end < 0:
        raise Incomplete
    return bytes(buffer[at:end]), end + 2


def reply_end(buffer: bytes | bytearray, at: int = 0) -> int:
    """Where the reply that starts at ``at`` ends (RESP2 and the RESP3 types redis-py reads)."""
    line, after = _line(buffer, at)
    kind = line[:1]
    if kind in (b"+", b"-", b":", b",", b"#", b"_", b"("):
        return after
    if kind in (b"$", b"=", b"!"):
        size = int(line[1:])
        if size < 0:
            return after
        if len(buffer) < after + size + 2:
            raise Incomplete
        return after + size + 2
    if kind in (b"*", b"~", b">", b"%", b"|"):
        count = int(line[1:])
        if kind in (b"%", b"|"):
            count *= 2
        for _ in range(max(count, 0)):
            after = reply_end(buffer, after)
        return after
    raise ValueError(f"not a reply: {line[:20]!r}")


def command_words(buffer: bytes | bytearray, at: int = 0) -> tuple[list[bytes], int]:
    """The words of the request that starts at ``at``, and where it ends."""
    line, after = _line(buffer, at)
    if line[:1] != b"*":
        return line.split(), after  # an inline command
    words = []
    for _ in range(int(line[1:])):
        header, after = _line(buffer, after)
        size = int(header[1:])
        if len(buffer) < after + size + 2:
            raise Incomplete
        words.append(bytes(buffer[after : after + size]))
        after += size + 2
    return words, after


def script_name(words: list[bytes]) -> str | None:
    """The package's script an EVALSHA runs (None for any other command)."""
    if len(words) < 2 or words[0].upper() != b"EVALSHA":
        return None
    return _scripts_by_sha().get(words[1].decode())


def _scripts_by_sha() -> dict[str, str]:
    names = (
        "begin.lua",
        "commit.lua",
        "done.lua",
        "entries.lua",
        "flags.lua",
        "peek.lua",
        "split.lua",
        "update.lua",
    )
    return {scripts.source(name).sha: name for name in names}


WRITING = frozenset({"begin.lua", "commit.lua", "done.lua", "flags.lua", "split.lua", "update.lua"})
"""The package's scripts that write."""


def writing_call(words: list[bytes]) -> bool:
    """Whether a command is a call of a script that writes."""
    return script_name(words) in WRITING


class Counted:
    """A rule over the commands ``chosen`` picks, counted in the order they are answered
    (one rule may serve the proxies of every node of a cluster: it counts under a lock)."""

    def __init__(self, chosen: Rule = writing_call) -> None:
        self.chosen, self.seen = chosen, 0
        self.lost: list[list[bytes]] = []
        self._lock = threading.Lock()

    def __call__(self, words: list[bytes]) -> bool:
        if not self.chosen(words):
            return False
        with self._lock:
            self.seen += 1
            if self.lose(self.seen):
                self.lost.append(words)
                return True
            return False

    def lose(self, seen: int) -> bool:
        """Whether to lose the reply of the ``seen``-th chosen command."""
        return False


class EveryNth(Counted):
    """Loses the reply of the ``n``-th command ``chosen`` picks (from 1), once."""

    def __init__(self, n: int, chosen: Rule = writing_call) -> None:
        super().__init__(chosen)
        self.n = n

    def lose(self, seen: int) -> bool:
        return seen == self.n


class AtRandom(Counted):
    """Loses the replies of a share of the commands ``chosen`` picks."""

    def __init__(self, share: float, seed: int, chosen: Rule = writing_call) -> None:
        super().__init__(chosen)
        self.share, self.rng = share, random.Random(seed)

    def lose(self, seen: int) -> bool:
        return self.rng.random() < self.share


class ReplyCutter:
    """The proxy, serving on a free loopback port in a thread of its own until closed.

    ``upstream`` is the URL of the Redis behind it (``redis://host:port`` or
    ``unix:///path``); :attr:`url` is what clients connect to instead. ``rule`` may be
    replaced at any time; by default no reply is lost.
    """

    def __init__(self, upstream: str, rule: Rule | None = None) -> None:
        self.upstream = urlsplit(upstream)
        self.rule: Rule = rule or (lambda words: False)
        self.cuts = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._server: asyncio.Server | None = None
        self._thread.start()
        self._ready.wait(10)
        assert self._server is not None, "the proxy did not start"
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """Where clients connect (the upstream's database and options kept)."""
        query = f"?{self.upstream.query}" if self.upstream.query else ""
        path = self.upstream.path if self.upstream.scheme != "unix" else ""
        return f"redis://127.0.0.1:{self.port}{path}{query}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream.scheme == "unix":
            return await asyncio.open_unix_connection(self.upstream.path)
        return await asyncio.open_connection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port or 6379
        )

    def _lose(self, words: list[bytes]) -> bool:
        lose = self.rule(words)
        self.cuts += lose
        return lose

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.close()
            return
        pending: deque[list[bytes]] = deque()

        async def requests() -> None:
            buffer = bytearray()
            while data := await reader.read(65536):
                buffer += data
                at = 0
                while True:
                    try:
                        words, end = command_words(buffer, at)
                    except Incomplete:
                        break
                    pending.append(words)
                    at = end
                up_writer.write(bytes(buffer[:at]))
                del buffer[:at]
                await up_writer.drain()

        async def replies() -> None:
            buffer = bytearray()
            while data := await up_reader.read(65536):
                buffer += data
                at = 0
                while True:
                    try:
                        end = reply_end(buffer, at)
                    except Incomplete:
                        break
                    words = pending.popleft() if pending else []
                    if self._lose(words):
                        writer.write(bytes(buffer[:at]))
                        return  # the connection is cut with this reply unsent
                    at = end
                writer.write(bytes(buffer[:at]))
                del buffer[:at]
                await writer.drain()

        tasks = [asyncio.ensure_future(requests()), asyncio.ensure_future(replies())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (ConnectionError, OSError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            for w in (writer, up_writer):
                w.close()

    def close(self) -> None:
        """Stop serving and close every connection."""

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> ReplyCutter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def cutting_cluster(cluster: LocalCluster, rule: Rule) -> Iterator[Callable[[], RedisCluster]]:
    """A proxy in front of every node of ``cluster``, all losing replies by one ``rule``;
    yields what makes a cluster client that goes through them (the project's own client,
    its nodes' addresses mapped to their proxies)."""
    cutters = [ReplyCutter(f"redis://127.0.0.1:{port}", rule) for port in cluster.ports]
    proxy = {
        ("127.0.0.1", port): ("127.0.0.1", c.port)
        for port, c in zip(cluster.ports, cutters, strict=True)
    }
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{c.port}" for c in cutters)

    def client() -> RedisCluster:
        return connect_cluster(url, address_remap=lambda address: proxy.get(address, address))

    try:
        yield client
    finally:
        for cutter in cutters:
            cutter.close()
