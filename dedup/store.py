"""All Redis access: the index of signatures, bands, paragraphs and reports.

Layout (names in :mod:`dedup.keys`): one hash per document with its packed signature,
paragraph fingerprints and stored report; one set per LSH band digest, per paragraph
fingerprint and per exact content; a sorted set per flag. Indexing a batch of documents
costs three round trips whatever its size: read what is there, write each document with one
atomic Lua script that also returns its candidates, then raise the near-duplicate flags.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from importlib.resources import files
from typing import Any, cast
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


def _text(value: bytes | None) -> str:
    return value.decode("utf-8") if value is not None else ""


class Store:
    """The index in one Redis, under one namespace, for one set of signature settings."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self.bands, self.rows = signature.lsh_parameters(settings.lsh_threshold, settings.num_perm)
        self._write = client.register_script(files("dedup").joinpath("write.lua").read_text())
        self._meta_checked = False

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
        pending = list(range(len(analyses)))
        for _ in range(_CONFLICT_RETRIES):
            if not pending:
                break
            conflicts = self._index_once(analyses, pending, results)
            pending = conflicts
        if pending:
            raise StoreError(f"document {analyses[pending[0]].document.doc_id} kept changing")
        self._raise_match_flags([results[i] for i in range(len(analyses))])
        return [results[i] for i in range(len(analyses))]

    def _index_once(
        self, analyses: list[Analysis], todo: list[int], results: dict[int, Indexed]
    ) -> list[int]:
        keys = self.keys
        read = self.client.pipeline(transaction=False)
        for i in todo:
            analysis = analyses[i]
            read.hmget(keys.document(analysis.document.doc_id), "content", "sig", "fps", "url")
            for fp in set(analysis.fingerprints):
                read.scard(keys.paragraph(fp))
        replies = iter(read.execute())
        write = self.client.pipeline(transaction=False)
        planned: list[int] = []
        for i in todo:
            analysis = analyses[i]
            content, old_sig, old_fps, old_url = next(replies)
            distinct = list(dict.fromkeys(analysis.fingerprints))
            counts = {fp: int(next(replies)) for fp in distinct}
            url = analysis.document.url or ""
            if _text(content) == analysis.content_hash and _text(old_url) == url:
                results[i] = Indexed(analysis.document.doc_id, changed=False)
                continue
            plan, sig = self._plan(analysis, counts, content, old_sig, old_fps)
            fps = np.array(analysis.fingerprints, dtype="<u8").tobytes()
            self._write(args=[json.dumps(plan), sig, fps], client=write)
            planned.append(i)
        conflicts: list[int] = []
        for i, reply in zip(planned, write.execute(), strict=True):
            doc_id = analyses[i].document.doc_id
            if reply[0] == b"conflict":
                conflicts.append(i)
                continue
            exact = sorted(_text(x) for x in reply[1])
            near = self._score(analyses[i], reply[2], set(exact))
            results[i] = Indexed(doc_id, changed=True, exact=exact, near=near)
        return conflicts

    def _plan(
        self,
        analysis: Analysis,
        counts: dict[int, int],
        content: bytes | None,
        old_sig: bytes | None,
        old_fps: bytes | None,
    ) -> tuple[dict[str, Any], bytes]:
        keys, doc_id = self.keys, analysis.document.doc_id
        threshold = self.settings.boilerplate_min_documents
        boilerplate = frozenset(
            i
            for i, fp in enumerate(analysis.fingerprints)
            if counts[fp] + 1 >= threshold  # counting this document
        )
        sig = analysis.document_signature(boilerplate)
        bands = (
            [
                keys.band(b, d)
                for b, d in enumerate(signature.band_hashes(sig, self.bands, self.rows))
            ]
            if sig is not None
            else []
        )
        old_bands: list[str] = []
        if old_sig:
            old_bands = [
                keys.band(b, d)
                for b, d in enumerate(
                    signature.band_hashes(signature.unpack(old_sig), self.bands, self.rows)
                )
            ]
        old_paras = (
            [keys.paragraph(int(fp)) for fp in set(np.frombuffer(old_fps, dtype="<u8").tolist())]
            if old_fps
            else []
        )
        flags = []
        if analysis.repeats.doubled_body:
            flags.append("doubled_body")
        if analysis.repeats.runs:
            flags.append("internal_repeat")
        plan: dict[str, Any] = {
            "id": doc_id,
            "doc": keys.document(doc_id),
            "doc_prefix": keys.document_prefix,
            "expect": _text(content),
            "content": analysis.content_hash,
            "content_key": keys.content(analysis.content_hash),
            "old_content": "" if not content else keys.content(_text(content)),
            "url": analysis.document.url or "",
            "bands": bands,
            "old_bands": old_bands,
            "paras": [keys.paragraph(fp) for fp in dict.fromkeys(analysis.fingerprints)],
            "old_paras": old_paras,
            "all_flags": [keys.flag(f) for f in FLAGS],
            "flags": [keys.flag(f) for f in flags],
            "boilerplate_flag": keys.flag("boilerplate"),
            "boilerplate_at": threshold,
            "report": json.dumps(stored_report(analysis), separators=(",", ":")),
            "paragraphs": len(analysis.paragraphs),
            "ts": round(time.time(), 3),
            "documents": keys.documents,
            "counters": keys.counters,
            "max_candidates": _MAX_CANDIDATES,
        }
        return plan, signature.pack(sig) if sig is not None else b""

    def _score(
        self, analysis: Analysis, flat: list[bytes], exact: set[str]
    ) -> list[tuple[str, float]]:
        sig = analysis.document_signature()
        if sig is None:
            return []
        threshold = self.settings.near_duplicate_threshold
        near = []
        for other, packed in zip(flat[::2], flat[1::2], strict=True):
            other_id = _text(other)
            if not packed or other_id in exact or len(packed) != 4 * len(sig):
                continue
            score = signature.similarity(sig, signature.unpack(packed))
            if score >= threshold:
                near.append((other_id, score))
        return sorted(near, key=lambda x: (-x[1], x[0]))

    def _raise_match_flags(self, results: list[Indexed]) -> None:
        now = round(time.time(), 3)
        pipe = self.client.pipeline(transaction=False)
        for result in results:
            for flag, others in (
                ("exact_duplicate", result.exact),
                ("near_duplicate", [doc for doc, _ in result.near]),
            ):
                if others:
                    pipe.zadd(self.keys.flag(flag), dict.fromkeys([result.doc_id, *others], now))
        if pipe:
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

    def list_documents(self, flag: str | None, limit: int) -> list[dict[str, Any]]:
        """Documents carrying ``flag`` (all documents when None), newest first."""
        key = self.keys.flag(flag) if flag else self.keys.documents
        try:
            ids = [_text(x) for x in cast("list[bytes]", self.client.zrevrange(key, 0, limit - 1))]
            pipe = self.client.pipeline(transaction=False)
            for doc_id in ids:
                pipe.hmget(self.keys.document(doc_id), "url", "added", "paragraphs")
                for name in FLAGS:
                    pipe.zscore(self.keys.flag(name), doc_id)
            replies = iter(pipe.execute())
        except redis.RedisError as exc:
            raise _store_error(exc) from None
        rows = []
        for doc_id in ids:
            url, added, paragraphs = next(replies)
            flags = [name for name in FLAGS if next(replies) is not None]
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
