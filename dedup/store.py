"""All Redis access: the index of signatures, bands, paragraphs and reports.

Layout (names in :mod:`dedup.keys`): one hash per document with its packed signature,
paragraph fingerprints and stored report; one set per LSH band digest, per paragraph
fingerprint and per exact content; a sorted set per flag. Indexing a batch of documents
costs two round trips whatever its size: read what is there, then write each document with
one atomic Lua script that also scores its candidates and raises the flags on both sides.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from importlib.resources import files
from itertools import islice
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from dedup import signature
from dedup.analysis import Analysis
from dedup.errors import NotFoundError, SettingsMismatchError, StoreError
from dedup.keys import FLAGS, Keys
from dedup.report import full_report, stored_report
from dedup.settings import Settings

FORMAT_VERSION = "1"
"""Bumped when the layout or the hashing of stored signatures changes."""
_MAX_CANDIDATES = 200
_CONFLICT_RETRIES = 5


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


def signature_settings(settings: Settings) -> dict[str, str]:
    """What a stored signature depends on: writers with other values must not mix in."""
    bands, rows = signature.lsh_parameters(settings.lsh_threshold, settings.num_perm)
    return {
        "format": FORMAT_VERSION,
        "scheme": signature.SCHEME,
        "hash": "xxh64-words-combined",
        "num_perm": str(settings.num_perm),
        "seed": str(settings.seed),
        "shingle_words": str(settings.shingle_words),
        "paragraph_shingle_words": str(settings.paragraph_shingle_words),
        "min_paragraph_words": str(settings.min_paragraph_words),
        "lsh_bands": str(bands),
        "lsh_rows": str(rows),
    }


def _versions() -> dict[str, str]:
    return {
        "datasketch_version": metadata.version("datasketch"),
        "dedup_version": metadata.version("dedup"),
    }


@dataclass(frozen=True)
class Indexed:
    """What indexing one document found."""

    doc_id: str
    changed: bool
    exact: list[str] = field(default_factory=list)
    near: list[tuple[str, float]] = field(default_factory=list)


class _Old(NamedTuple):
    """What the index holds for a document before it is written again."""

    content: bytes | None
    sig: bytes | None
    fps: bytes | None
    url: bytes | None


def _text(value: bytes | None) -> str:
    return value.decode("utf-8") if value is not None else ""


class Store:
    """The index in one Redis, under one namespace, for one set of signature settings."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self._write = client.register_script(files("dedup").joinpath("write.lua").read_text())
        self._meta_checked = False

    @cached_property
    def _lsh(self) -> tuple[int, int]:
        """LSH bands and rows: those the index was built with, else ours (a new index)."""
        stored = self.client.hget(self.keys.meta, "signature")
        if stored:
            recorded = json.loads(stored)
            return int(recorded["lsh_bands"]), int(recorded["lsh_rows"])
        return signature.lsh_parameters(self.settings.lsh_threshold, self.settings.num_perm)

    @property
    def bands(self) -> int:
        """LSH bands per signature."""
        return self._lsh[0]

    @property
    def rows(self) -> int:
        """Signature values per LSH band."""
        return self._lsh[1]

    # -- settings ---------------------------------------------------------------------------

    def check_settings(self) -> None:
        """Record our signature settings in an empty store, or refuse to mix with others."""
        wanted = signature_settings(self.settings)
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.hsetnx(self.keys.meta, "signature", json.dumps(wanted, sort_keys=True))
            pipe.hget(self.keys.meta, "signature")
            _, stored = pipe.execute()
        except redis.RedisError as exc:
            raise _store_error(exc) from None
        have = json.loads(stored)
        if have != wanted:
            diff = ", ".join(
                f"{k}={have.get(k)} (ours {wanted.get(k)})"
                for k in sorted(set(have) | set(wanted))
                if have.get(k) != wanted.get(k)
            )
            raise SettingsMismatchError(
                f"namespace {self.settings.namespace!r} was built with other signature "
                f"settings: {diff}; use another namespace or the same settings"
            )
        self.client.hset(self.keys.meta, items=[x for pair in _versions().items() for x in pair])
        self.__dict__.pop("_lsh", None)
        self._meta_checked = True

    # -- writing ----------------------------------------------------------------------------

    def index(self, analyses: Sequence[Analysis]) -> list[Indexed]:
        """Index a batch of analysed documents; each ends indexed exactly once."""
        if not self._meta_checked:
            self.check_settings()
        try:
            return self._index(list(analyses))
        except redis.RedisError as exc:
            raise _store_error(exc) from None

    def _index(self, analyses: list[Analysis]) -> list[Indexed]:
        results: dict[int, Indexed] = {}
        affected: set[str] = set()
        pending = list(range(len(analyses)))
        for _ in range(_CONFLICT_RETRIES):
            if not pending:
                break
            pending = self._index_once(analyses, pending, results, affected)
        if pending:
            raise StoreError(f"document {analyses[pending[0]].document.doc_id} kept changing")
        self.refresh_flags(affected - {a.document.doc_id for a in analyses})
        return [results[i] for i in range(len(analyses))]

    def _index_once(
        self,
        analyses: list[Analysis],
        todo: list[int],
        results: dict[int, Indexed],
        affected: set[str],
    ) -> list[int]:
        """One read and one write round trip for the documents ``todo``; returns conflicts."""
        keys = self.keys
        read = self.client.pipeline(transaction=False)
        for i in todo:
            analysis = analyses[i]
            read.hmget(keys.document(analysis.document.doc_id), "content", "sig", "fps", "url")
            for fp in dict.fromkeys(analysis.fingerprints):
                read.scard(keys.paragraph(fp))
        replies = iter(read.execute())
        write = self.client.pipeline(transaction=False)
        planned: list[int] = []
        for i in todo:
            analysis = analyses[i]
            old = _Old(*next(replies))
            counts = {fp: int(next(replies)) for fp in dict.fromkeys(analysis.fingerprints)}
            url = analysis.document.url or ""
            if _text(old.content) == analysis.content_hash and _text(old.url) == url:
                results[i] = Indexed(analysis.document.doc_id, changed=False)
                continue
            plan, sig = self._plan(analysis, counts, old)
            fps = np.array(analysis.fingerprints, dtype="<u8").tobytes()
            self._write(args=[json.dumps(plan), sig, fps], client=write)
            planned.append(i)
        conflicts: list[int] = []
        for i, reply in zip(planned, write.execute(), strict=True):
            if reply[0] == b"conflict":
                conflicts.append(i)
                continue
            flat = [_text(x) for x in reply[2]]
            near = sorted(
                ((doc, float(score)) for doc, score in zip(flat[::2], flat[1::2], strict=True)),
                key=lambda x: (-x[1], x[0]),
            )
            exact = sorted(_text(x) for x in reply[1])
            results[i] = Indexed(analyses[i].document.doc_id, True, exact, near)
            affected.update(_text(x) for x in reply[3])
        return conflicts

    def _removal(self, doc_id: str, old: _Old) -> dict[str, Any]:
        """The part of a write plan that takes an older version of a document out."""
        keys = self.keys
        old_bands: list[str] = []
        if old.sig:
            digests = signature.band_hashes(signature.unpack(old.sig), self.bands, self.rows)
            old_bands = [keys.band(b, d) for b, d in enumerate(digests)]
        old_fps = np.frombuffer(old.fps or b"", dtype="<u8").tolist()
        return {
            "id": doc_id,
            "doc": keys.document(doc_id),
            "doc_prefix": keys.document_prefix,
            "expect": _text(old.content),
            "old_content": keys.content(_text(old.content)) if old.content else "",
            "old_bands": old_bands,
            "old_paras": [keys.paragraph(int(fp)) for fp in dict.fromkeys(old_fps)],
            "all_flags": [keys.flag(f) for f in FLAGS],
            "boilerplate_at": self.settings.boilerplate_min_documents,
            "documents": keys.documents,
            "counters": keys.counters,
            "paragraphs": 0,
            "delete": False,
        }

    def _plan(
        self, analysis: Analysis, counts: dict[int, int], old: _Old
    ) -> tuple[dict[str, Any], bytes]:
        keys = self.keys
        threshold = self.settings.boilerplate_min_documents
        boilerplate = frozenset(
            i
            for i, fp in enumerate(analysis.fingerprints)
            if counts[fp] + 1 >= threshold  # counting this document
        )
        sig = analysis.document_signature(boilerplate)
        bands = []
        if sig is not None:
            digests = signature.band_hashes(sig, self.bands, self.rows)
            bands = [keys.band(b, d) for b, d in enumerate(digests)]
        flags = []
        if analysis.repeats.doubled_body:
            flags.append("doubled_body")
        if analysis.repeats.runs:
            flags.append("internal_repeat")
        plan = self._removal(analysis.document.doc_id, old)
        plan.update(
            {
                "content": analysis.content_hash,
                "content_key": keys.content(analysis.content_hash),
                "url": analysis.document.url or "",
                "bands": bands,
                "paras": [keys.paragraph(fp) for fp in dict.fromkeys(analysis.fingerprints)],
                "flags": [keys.flag(f) for f in flags],
                "boilerplate_flag": keys.flag("boilerplate"),
                "exact_flag": keys.flag("exact_duplicate"),
                "near_flag": keys.flag("near_duplicate"),
                "near_threshold": self.settings.near_duplicate_threshold,
                "report": json.dumps(stored_report(analysis), separators=(",", ":")),
                "paragraphs": len(analysis.paragraphs),
                "ts": round(time.time(), 3),
                "max_candidates": _MAX_CANDIDATES,
            }
        )
        return plan, signature.pack(sig) if sig is not None else b""

    # -- removing ---------------------------------------------------------------------------

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Take documents out of the index (signature, bands, paragraphs, flags, report).

        Returns how many were there. The flags of documents that matched them are brought up
        to date.
        """
        deleted = 0
        affected: set[str] = set()
        try:
            for doc_id in doc_ids:
                for _ in range(_CONFLICT_RETRIES):
                    raw = self.client.hmget(
                        self.keys.document(doc_id), "content", "sig", "fps", "url"
                    )
                    old = _Old(*cast("list[bytes | None]", raw))
                    if old.content is None:
                        break
                    plan = self._removal(doc_id, old)
                    plan["delete"] = True
                    reply = self._write(args=[json.dumps(plan), b"", b""])
                    if reply[0] == b"ok":
                        deleted += 1
                        affected.update(_text(x) for x in reply[3])
                        break
            self.refresh_flags(affected - set(doc_ids))
        except redis.RedisError as exc:
            raise _store_error(exc) from None
        return deleted

    def purge(self, older_than: float, batch: int = 500) -> int:
        """Delete the documents indexed more than ``older_than`` seconds ago."""
        cutoff = time.time() - older_than
        total = 0
        try:
            while True:
                raw = self.client.zrangebyscore(self.keys.documents, "-inf", cutoff, 0, batch)
                ids = [_text(x) for x in cast("list[bytes]", raw)]
                if not ids:
                    return total
                total += self.delete(ids)
        except redis.RedisError as exc:
            raise _store_error(exc) from None

    def refresh_flags(self, doc_ids: set[str]) -> None:
        """Bring the corpus-dependent flags of these documents in line with their reports."""
        for doc_id in sorted(doc_ids):
            try:
                flags = set(self.report(doc_id)["flags"])
            except NotFoundError:
                continue
            pipe = self.client.pipeline(transaction=False)
            for name in ("exact_duplicate", "near_duplicate", "boilerplate"):
                if name in flags:
                    pipe.zadd(self.keys.flag(name), {doc_id: round(time.time(), 3)}, nx=True)
                else:
                    pipe.zrem(self.keys.flag(name), doc_id)
            pipe.execute()

    # -- reading ----------------------------------------------------------------------------

    def report(self, doc_id: str) -> dict[str, Any]:
        """The report of one document with the duplicates known now."""
        try:
            return self._report(doc_id)
        except redis.RedisError as exc:
            raise _store_error(exc) from None

    def _report(self, doc_id: str) -> dict[str, Any]:
        keys = self.keys
        stored, sig_raw, fps_raw, content, added = cast(
            "list[bytes | None]",
            self.client.hmget(keys.document(doc_id), "report", "sig", "fps", "content", "added"),
        )
        if stored is None:
            raise NotFoundError(f"no document with id {doc_id!r} in namespace {keys.namespace!r}")
        fps = np.frombuffer(fps_raw or b"", dtype="<u8").tolist()
        sig = signature.unpack(sig_raw) if sig_raw else None
        pipe = self.client.pipeline(transaction=False)
        pipe.smembers(keys.content(_text(content)))
        band_keys = (
            [
                keys.band(b, d)
                for b, d in enumerate(signature.band_hashes(sig, self.bands, self.rows))
            ]
            if sig is not None
            else []
        )
        if band_keys:
            pipe.sunion(band_keys)
        distinct = list(dict.fromkeys(fps))
        for fp in distinct:
            pipe.scard(keys.paragraph(fp))
        replies = pipe.execute()
        exact = sorted(_text(x) for x in replies[0] if _text(x) != doc_id)
        candidates = (
            sorted(_text(x) for x in replies[1] if _text(x) != doc_id and _text(x) not in exact)
            if band_keys
            else []
        )[:_MAX_CANDIDATES]
        counts = dict(zip(distinct, replies[1 + bool(band_keys) :], strict=True))
        threshold = self.settings.boilerplate_min_documents
        shared_fps = [fp for fp in distinct if 2 <= counts[fp] < threshold]
        pipe = self.client.pipeline(transaction=False)
        for other in candidates:
            pipe.hget(keys.document(other), "sig")
        for fp in shared_fps:
            pipe.smembers(keys.paragraph(fp))
        for other in exact:
            pipe.hget(keys.document(other), "url")
        replies = pipe.execute()
        near: list[tuple[str, float]] = []
        for other, packed in zip(candidates, replies[: len(candidates)], strict=True):
            if sig is not None and packed and len(packed) == len(sig_raw or b""):
                score = signature.similarity(sig, signature.unpack(packed))
                if score >= self.settings.near_duplicate_threshold:
                    near.append((other, score))
        members = replies[len(candidates) : len(candidates) + len(shared_fps)]
        shared = {
            fp: sorted(_text(m) for m in group if _text(m) != doc_id)
            for fp, group in zip(shared_fps, members, strict=True)
        }
        return full_report(
            json.loads(stored),
            fingerprints=fps,
            counts=counts,
            exact=exact,
            near=sorted(near, key=lambda x: (-x[1], x[0])),
            shared=shared,
            boilerplate_min=threshold,
            indexed_at=float(added or 0),
        )

    def exists(self, doc_id: str) -> bool:
        """Whether the index holds this document."""
        return bool(self.client.exists(self.keys.document(doc_id)))

    def list_documents(
        self, flag: str | None, limit: int, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Documents carrying ``flag`` (all documents when None), newest first.

        With ``since`` (seconds since the epoch), only those indexed at or after it.
        """
        return list(islice(self.scan_documents(flag, since=since, page=min(limit, 500)), limit))

    def scan_documents(
        self, flag: str | None = None, *, since: float | None = None, page: int = 500
    ) -> Iterator[dict[str, Any]]:
        """The rows of :meth:`list_documents`, newest first, read ``page`` at a time.

        With ``since`` the walk follows indexing time, so the time window bounds the work
        whatever the size of the index; without it, a flag's own set. Pages continue from the
        last score seen rather than an offset, so documents indexed during the walk do not
        shift it and nothing is listed twice.
        """
        key = self.keys.flag(flag) if flag is not None and since is None else self.keys.documents
        low: float | str = "-inf" if since is None else since
        high: float | str = "+inf"
        seen: set[str] = set()  # members already listed at score ``high``
        try:
            while True:
                want = page + len(seen)
                raw = cast(
                    "list[tuple[bytes, float]]",
                    self.client.zrevrangebyscore(key, high, low, 0, want, withscores=True),
                )
                fresh = [(_text(m), score) for m, score in raw if _text(m) not in seen]
                if not fresh:
                    return
                rows = self._rows([doc_id for doc_id, _ in fresh])
                if fresh[-1][1] != high:
                    seen = set()
                high = fresh[-1][1]
                seen.update(doc_id for doc_id, score in fresh if score == high)
                yield from (row for row in rows if flag is None or flag in row["flags"])
                if len(raw) < want:
                    return
        except redis.RedisError as exc:
            raise _store_error(exc) from None

    def _rows(self, ids: list[str]) -> list[dict[str, Any]]:
        """List rows of these documents (one round trip); ids no longer indexed are left out."""
        pipe = self.client.pipeline(transaction=False)
        for doc_id in ids:
            pipe.hmget(self.keys.document(doc_id), "url", "added", "paragraphs")
            for name in FLAGS:
                pipe.zscore(self.keys.flag(name), doc_id)
        replies = iter(pipe.execute())
        rows = []
        for doc_id in ids:
            url, added, paragraphs = next(replies)
            flags = [name for name in FLAGS if next(replies) is not None]
            if added is None and paragraphs is None:
                continue
            rows.append(
                {
                    "doc_id": doc_id,
                    "url": _text(url) or None,
                    "flags": flags,
                    "paragraphs": int(paragraphs or 0),
                    "indexed_at": float(added or 0),
                }
            )
        return rows

    def content_matches(self, content_hashes: Sequence[str], limit: int = 20) -> list[list[str]]:
        """Ids of indexed documents with exactly each normalised content, ``limit`` at most each.

        One round trip for a whole batch: a scraper asks this for every item it scrapes.
        """
        try:
            pipe = self.client.pipeline(transaction=False)
            for content_hash in content_hashes:
                pipe.srandmember(self.keys.content(content_hash), limit)
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise _store_error(exc) from None
        return [sorted(_text(m) for m in members) for members in replies]

    def stats(self) -> dict[str, Any]:
        """Counts of documents, paragraphs and flags."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.zcard(self.keys.documents)
            pipe.hgetall(self.keys.counters)
            for name in FLAGS:
                pipe.zcard(self.keys.flag(name))
            documents, counters, *flag_counts = pipe.execute()
        except redis.RedisError as exc:
            raise _store_error(exc) from None
        return {
            "documents": int(documents),
            "paragraphs": int(counters.get(b"paragraphs", 0)),
            "distinct_paragraphs": int(counters.get(b"distinct_paragraphs", 0)),
            "flags": dict(zip(FLAGS, (int(n) for n in flag_counts), strict=True)),
        }


def _store_error(exc: redis.RedisError) -> StoreError:
    reason = str(exc).split("\n")[0] or type(exc).__name__
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return StoreError(f"lost the connection to Redis: {reason}")
    return StoreError(f"Redis answered an error: {reason}")


def redis_for(settings: Settings) -> redis.Redis:
    """The configured Redis, or the embedded one of the data folder when none is configured."""
    from dedup.server import ensure_server

    return connect(settings.redis_url or ensure_server(settings.data_dir))


def display_url(settings: Settings) -> str:
    """Where the index lives, for people (password redacted)."""
    if settings.redis_url:
        return redact(settings.redis_url)
    return f"embedded Redis in {settings.data_dir}"
