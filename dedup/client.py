"""The Python client scrapers use: submit documents, read reports.

>>> client = Client()                       # settings from config/dedup.toml and DEDUP_*
>>> job = client.submit("<p>...</p>", url="https://example.com/a")   # a job id, with .status()
>>> client.flush()                          # gathered single submissions leave now (or in 50 ms)
>>> client.submit_many([{"id": "a", "text": "..."}, {"id": "b", "html": "<p>..</p>"}])
>>> client.report("a", wait=30)             # waits (bounded) for a worker to index it
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import redis
from rq.job import Job
from rq.queue import Queue

from dedup.errors import NotFoundError, ReportTimeoutError, StoreError
from dedup.index.store import Store
from dedup.pipeline.document import (
    Document,
    check_body,
    check_fetched_at,
    check_id,
    from_payload,
    id_for_body,
    id_for_url,
)
from dedup.queue.gather import Gatherer
from dedup.queue.handles import JobHandle
from dedup.queue.queues import JOB_FUNCTION, make_queue, retry_policy
from dedup.report import Report
from dedup.servers.connection import IndexClient, index_client, queue_client, shared_location
from dedup.settings import Settings, load_settings

RESULT_TTL = 600
"""Seconds a finished job (and the documents it carried) stays in Redis; reports stay."""


class Client:
    """Enqueues documents for the workers and reads their reports.

    Single submissions (:meth:`submit`) are gathered into bulk jobs, sent ``submit_delay``
    seconds after the first of them at the latest, at once when ``batch_size`` are waiting,
    and on :meth:`flush`, :meth:`close`, leaving a ``with`` block, when the client is
    garbage-collected and when the interpreter exits.
    """

    def __init__(self, settings: Settings | None = None, *, redis_url: str | None = None) -> None:
        settings = settings or load_settings()
        if redis_url is not None:
            settings = settings.replace(redis_url=redis_url)
        self.settings = settings
        self.queue_redis: redis.Redis = queue_client(settings)
        """The Redis of the queue (jobs, failed jobs, workers), connected at once."""
        self.queue = make_queue(settings, self.queue_redis)

    @functools.cached_property
    def index_redis(self) -> IndexClient:
        """The Redis of the index: the queue's client when they share a server, else connected
        on first use, so that submitting needs only the queue."""
        if shared_location(self.settings):
            return self.queue_redis
        return index_client(self.settings)

    @functools.cached_property
    def store(self) -> Store:
        """The index, for reports."""
        return Store(self.index_redis, self.settings)  # see IndexClient

    def submit(
        self,
        body: str,
        *,
        doc_id: str | None = None,
        url: str | None = None,
        fmt: str = "auto",
        fetched_at: str | None = None,
    ) -> JobHandle:
        """Queue one document; returns the id of the job it travels in (a :class:`JobHandle`).

        The document waits up to ``submit_delay`` seconds for others to share its job (the
        handle's status is ``gathered`` until then); with ``submit_delay = 0`` it is queued
        as a job of its own before this returns. Submitting an id again with unchanged
        content changes nothing.

        Raises:
            InputError: the document is not fit to queue.
            StoreError: Redis could not be reached (for gathered documents: the last batch
                could not be sent, and this document is not taken).
        """
        body = check_body(body, self.settings.max_document_bytes)
        if doc_id is None:
            doc_id = id_for_url(url) if url else id_for_body(body)
        document = Document(check_id(doc_id), body, url, fmt, check_fetched_at(fetched_at))
        if self.settings.submit_delay <= 0:
            return self._enqueue([document.to_payload()])
        gathered = self._gatherer.add(document.to_payload())
        return JobHandle(gathered.job_id, [document.doc_id], self.queue, gathered.sent)

    @functools.cached_property
    def _gatherer(self) -> Gatherer:
        """Holds single submissions until their batch leaves; flushed when the client goes."""
        send = functools.partial(enqueue, self.queue, self.settings)
        gatherer = Gatherer(
            send, self.settings.batch_size, self.settings.submit_delay, keep_failed=True
        )
        weakref.finalize(self, gatherer.close)  # also at interpreter exit
        return gatherer

    def flush(self) -> None:
        """Send the single submissions gathered so far, now.

        Raises:
            StoreError: Redis cannot be reached (they are kept and sent again later).
        """
        if "_gatherer" in self.__dict__:
            self._gatherer.flush()

    def close(self) -> None:
        """Send what is gathered and stop gathering; later single submissions are refused."""
        if "_gatherer" in self.__dict__:
            self._gatherer.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def submit_many(
        self,
        documents: Iterable[Document | Mapping[str, Any]],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[JobHandle]:
        """Enqueue many documents, ``batch_size`` per job; returns the job ids (handles).

        Every document is checked before anything is enqueued from its batch, so a bad one
        raises :class:`~dedup.errors.InputError` without losing the batches already sent.
        """
        size = batch_size or self.settings.batch_size
        job_ids: list[JobHandle] = []
        batch: list[dict[str, Any]] = []
        for item in documents:
            if isinstance(item, Document):  # its fields were checked when it was made
                check_body(item.body, self.settings.max_document_bytes, f"document {item.doc_id}")
                document = item
            else:
                document = from_payload(item, self.settings.max_document_bytes)
            batch.append(document.to_payload())
            if len(batch) >= size:
                job_ids.append(self._enqueue(batch))
                if on_batch:
                    on_batch(len(batch))
                batch = []
        if batch:
            job_ids.append(self._enqueue(batch))
            if on_batch:
                on_batch(len(batch))
        return job_ids

    def _enqueue(self, payloads: list[dict[str, Any]]) -> JobHandle:
        job_id = enqueue(self.queue, self.settings, payloads)
        return JobHandle(job_id, [str(p["id"]) for p in payloads], self.queue)

    def report(self, doc_id: str, *, wait: float | None = None, limit: int | None = None) -> Report:
        """The report of one document, with the duplicates known now.

        Args:
            doc_id: the document's id.
            wait: seconds to wait for a worker to index a document just submitted (polling,
                gently); None or 0 answers at once.
            limit: list at most this many exact and near duplicates, best first (the
                report's totals count them all).

        Raises:
            NotFoundError: no such document (and no ``wait``).
            ReportTimeoutError: still none after ``wait`` seconds; the message says how the
                queue is doing, which is usually why.
        """
        if not wait or wait <= 0:
            return self.store.report(doc_id, limit)
        deadline = time.monotonic() + wait
        pause = 0.05
        while True:
            try:
                return self.store.report(doc_id, limit)
            except NotFoundError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReportTimeoutError(
                        f"no report for document {doc_id!r} after {wait:g} s "
                        f"({self._queue_state()})"
                    ) from None
                time.sleep(min(pause, left))
                pause = min(pause * 2, 1.0)

    def _queue_state(self) -> str:
        """Queue depth, failures and workers: what explains a report that does not come."""
        from rq import Worker
        from rq.registry import FailedJobRegistry

        try:
            queued = self.queue.count
            failed = FailedJobRegistry(queue=self.queue).count
            workers = Worker.count(queue=self.queue)
        except redis.RedisError:
            return "queue state unknown"
        hint = "; is a worker running?" if not workers else ""
        return f"{queued} job(s) queued, {failed} failed, {workers} worker(s){hint}"


def enqueue(
    queue: Queue, settings: Settings, payloads: list[dict[str, Any]], job_id: str | None = None
) -> str:
    """Queue one job of these documents (under ``job_id`` when given); its id.

    Raises:
        StoreError: Redis could not be reached.
    """
    try:
        job: Job = queue.enqueue(
            JOB_FUNCTION,
            payloads,
            job_id=job_id,
            job_timeout=settings.job_timeout,
            retry=retry_policy(settings),
            result_ttl=RESULT_TTL,
            failure_ttl=30 * 86400,
            description=f"analyse {len(payloads)} document(s)",
        )
    except redis.RedisError as exc:
        raise StoreError(f"could not enqueue: {str(exc).splitlines()[0]}") from None
    return str(job.id)
