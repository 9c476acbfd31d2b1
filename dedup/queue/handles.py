"""Job handles: what :meth:`dedup.Client.submit` returns, so a scraper can follow its documents.

A handle *is* the job id (a ``str``), as submit always returned, so code that stores, prints
or serialises job ids keeps working; it also knows which documents the job carries and can
ask RQ how the job is doing.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

import redis
from rq.queue import Queue

from dedup.errors import StoreError

GONE = "expired"
"""Status of a job RQ no longer holds (its result or failure was kept for a limited time)."""
GATHERED = "gathered"
"""Status of a document the submitting process still holds to send with others
(:mod:`dedup.queue.gather`): at most ``submit_delay`` seconds, unless Redis is unreachable."""


class JobHandle(str):
    """A queued job: its id, the ids of the documents it carries, and its status."""

    doc_ids: tuple[str, ...]
    """Ids of the documents submitted with this handle, in the order they were submitted (a
    job gathered from single submissions carries the others' too)."""
    _queue: Queue
    _sent: Future[str] | None

    def __new__(
        cls, job_id: str, doc_ids: Sequence[str], queue: Queue, sent: Future[str] | None = None
    ) -> JobHandle:
        """A handle of the job ``job_id`` on ``queue``; ``sent`` completes once it is queued,
        for a job still being gathered."""
        handle = super().__new__(cls, job_id)
        handle.doc_ids = tuple(doc_ids)
        handle._queue = queue
        handle._sent = sent
        return handle

    @property
    def id(self) -> str:
        """The RQ job id, as a plain string."""
        return str.__str__(self)

    def status(self) -> str:
        """``gathered`` (not sent yet, :data:`GATHERED`), ``queued``, ``started``,
        ``finished``, ``failed``, ``scheduled`` (waiting to be tried again), another RQ
        status, or ``expired`` once RQ has let the job go.

        Raises:
            StoreError: Redis cannot be reached.
        """
        if self._sent is not None and not self._sent.done():
            return GATHERED
        try:
            job = self._queue.fetch_job(self.id)
            if job is None:
                return GONE
            status = job.get_status(refresh=False)
        except redis.RedisError as exc:
            raise StoreError(f"could not read job {self.id}: {str(exc).splitlines()[0]}") from None
        return GONE if status is None else str(status.value)
