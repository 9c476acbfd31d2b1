"""The RQ queue documents travel on: JSON payloads only, retries declared at enqueue.

RQ's default pickle serializer would let anyone who can write to Redis run code on the
workers; every queue and worker here uses RQ's JSON serializer instead.
"""

from __future__ import annotations

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from dedup.settings import Settings

JOB_FUNCTION = "workers.jobs.analyse_documents"
"""Dotted path of the job function: the client never imports the worker code."""


def make_queue(settings: Settings, connection: redis.Redis) -> Queue:
    """The dedup queue on this connection, with the JSON serializer."""
    return Queue(settings.queue, connection=connection, serializer=JSONSerializer)


def retry_policy(settings: Settings) -> Retry | None:
    """Bounded retries with growing pauses, or None when retries are off."""
    if settings.retries == 0:
        return None
    intervals = [round(settings.retry_backoff * 6**k) for k in range(settings.retries)]
    return Retry(max=settings.retries, interval=intervals)
