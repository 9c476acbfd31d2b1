"""The RQ queue documents travel on: JSON payloads only, retries declared at enqueue.

RQ's default pickle serializer would let anyone who can write to Redis run code on the
workers; every queue and worker here uses RQ's JSON serializer instead.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import redis
from rq import Queue, Retry
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.utils import decode_redis_hash

from dedup.servers.connection import unlink_all
from dedup.settings import Settings

JOB_FUNCTION = "workers.jobs.analyse_documents"
"""Dotted path of the job function: the client never imports the worker code."""


PAYLOAD_COMPRESSION = 1
"""zlib level of a job's payload. RQ's (6) took three times the CPU for 12% fewer bytes
(0.26 against 0.09 ms a corpus document), spent by the submitter on bytes Redis holds only
until a worker has done the job; for a scraper posting page by page, by ``dedup serve`` on
the cores the workers share."""


class PayloadJob(Job):
    """An RQ job that writes its payload back as the bytes it was read with, and compresses a
    new payload faster than RQ (:data:`PAYLOAD_COMPRESSION`).

    RQ compresses a job's payload again each time it saves the job, and a worker saves every
    job it finishes: for a bulk job of 200 documents that was 13% of a worker's time, spent
    making bytes Redis already holds. When the payload is unchanged since it was read, the
    stored bytes are written back instead.
    """

    _packed: bytes | None = None
    _unpacked: bytes | None = None

    def restore(self, raw_data: dict[Any, Any]) -> None:
        super().restore(raw_data)
        packed = decode_redis_hash(raw_data).get("data")
        self._packed = packed if isinstance(packed, bytes) else None
        data = getattr(self, "_data", None)
        self._unpacked = data if isinstance(data, bytes) else None

    def to_dict(self, include_meta: bool = True, include_result: bool = True) -> dict[str, Any]:
        unpacked, stored = self._unpacked, self._packed
        current = getattr(self, "_data", None)
        if stored is not None and unpacked is not None and id(current) == id(unpacked):
            payload, packed = unpacked, stored  # unchanged since read: its stored bytes go back
        else:
            payload = self.data  # RQ's serialisation of the call
            packed = zlib.compress(payload, PAYLOAD_COMPRESSION)
        self._data = b""  # RQ compresses nothing
        try:
            mapping = super().to_dict(include_meta=include_meta, include_result=include_result)
        finally:
            self._data = payload
        mapping["data"] = packed
        return mapping


def make_queue(settings: Settings, connection: redis.Redis) -> Queue:
    """The dedup queue on this connection, with the JSON serializer."""
    return Queue(
        settings.queue, connection=connection, serializer=JSONSerializer, job_class=PayloadJob
    )


def retry_policy(settings: Settings) -> Retry | None:
    """Bounded retries with growing pauses, or None when retries are off."""
    if settings.retries == 0:
        return None
    intervals = [round(settings.retry_backoff * 6**k) for k in range(settings.retries)]
    return Retry(max=settings.retries, interval=intervals)


def drop_queue(queue: Queue, job_ids: Iterable[str]) -> None:
    """Delete these jobs, the queue with its registries, and the keys of stopped workers that
    served only this queue.

    For a throwaway queue (an evaluation run's): RQ removes jobs one by one, but nothing
    removes a queue and all it left behind.
    """
    client = queue.connection
    for job_id in job_ids:
        try:
            Job.fetch(job_id, connection=client).delete()
        except Exception:  # already gone (result_ttl=0), or unreadable: its keys go here
            results = Result.get_key(job_id)  # type: ignore[no-untyped-call]  # RQ leaves it unannotated
            client.unlink(Job.key_for(job_id), results)
    unlink_all(client, client.scan_iter(match=f"rq:*{queue.name}*", count=1000))
    client.srem("rq:queues", queue.key)
    # Workers that stopped keep their key for a minute; these served only our queue.
    workers = client.scan_iter(match="rq:worker:*", count=1000)
    unlink_all(client, (k for k in workers if client.hget(k, "queues") == queue.name.encode()))
