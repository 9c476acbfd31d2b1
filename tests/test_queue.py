"""The queue: payloads go back to Redis as they were read, never compressed again; a
throwaway queue is removed with all it left behind."""

from __future__ import annotations

import zlib
from unittest import mock

import redis

from dedup.client import Client
from dedup.queue.queues import PAYLOAD_COMPRESSION, PayloadJob, drop_queue, make_queue
from dedup.settings import Settings
from tests.helpers import article, as_html


def test_a_saved_job_keeps_its_payload_bytes(settings: Settings, redis_client: redis.Redis) -> None:
    """Saving a job read from Redis writes the stored payload back without compressing it."""
    docs = [{"id": f"d{n}", "html": as_html(article(n))} for n in range(20)]
    (handle,) = Client(settings).submit_many(docs, batch_size=20)
    key = f"rq:job:{handle.id}"
    stored = redis_client.hget(key, "data")
    job = make_queue(settings, redis_client).fetch_job(handle.id)
    assert isinstance(job, PayloadJob)
    assert [d["id"] for d in docs] == [d["id"] for d in job.args[0]]
    sizes: list[int] = []
    real = zlib.compress

    def counting(data: bytes, *args: object) -> bytes:
        sizes.append(len(data))
        return real(data, *args)

    with mock.patch("rq.job.zlib.compress", counting):
        job.save()
    assert stored == redis_client.hget(key, "data")
    assert all(size < 1000 for size in sizes), sizes  # the payload (~20 KB) was not compressed
    job.args = ([docs[0]],)  # a changed payload is compressed again, and stored
    job.save()
    again = make_queue(settings, redis_client).fetch_job(handle.id)
    assert again is not None and [docs[0]] == again.args[0]


def test_a_new_payload_is_compressed_at_its_level(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """A queued job's payload is zlib at PAYLOAD_COMPRESSION, which RQ reads as its own."""
    docs = [{"id": f"d{n}", "html": as_html(article(n))} for n in range(20)]
    (handle,) = Client(settings).submit_many(docs, batch_size=20)
    stored = redis_client.hget(f"rq:job:{handle.id}", "data")
    job = make_queue(settings, redis_client).fetch_job(handle.id)
    assert job is not None and stored is not None
    assert zlib.compress(job.data, PAYLOAD_COMPRESSION) == stored
    assert [d["id"] for d in docs] == [d["id"] for d in job.args[0]]


def test_a_dropped_queue_leaves_no_keys(settings: Settings, redis_client: redis.Redis) -> None:
    """Dropping a queue deletes its jobs, registries and entry in RQ's queue list."""
    settings = settings.replace(queue="throwaway")
    handles = Client(settings).submit_many([{"id": "a", "text": "one two three"}] * 3, batch_size=1)
    Client(settings.replace(queue="kept")).submit("four five six")
    queue = make_queue(settings, redis_client)
    drop_queue(queue, [h.id for h in handles])
    assert [] == [k for k in redis_client.scan_iter(match="rq:*") if b"throwaway" in k]
    assert all(not redis_client.exists(f"rq:job:{h.id}") for h in handles)
    assert [b"rq:queue:kept"] == sorted(redis_client.smembers("rq:queues"))
