"""Job handles: what :meth:`dedup.Client.submit` returns, so a scraper can follow its documents.

A handle *is* the job id (a ``str``), as submit always returned, so code that stores, prints
or serialises job ids keeps working; it also knows which documents the job carries and can
ask RQ how the job is doing.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from rq.queue import Queue

from dedup.errors import StoreError

GONE = "expired"
"""Status of a job RQ no longer holds (its result or failure was kept for a limited time)."""


class JobHandle(str):
    """A queued job: its id, the ids of the documents it carries, and its status."""

    doc_ids: tuple[str, ...]
    """Ids of the documents in the job, in the order they were submitted."""
    _queue: Queue

    def __new__(cls, job_id: str, doc_ids: Sequence[str], queue: Queue) -> JobHandle:
        """A handle of the job ``job_id`` on ``queue``."""
        handle = super().__new__(cls, job_id)
        handle.doc_ids = tuple(doc_ids)
        handle._queue = queue
        return handle

    @property
    def id(self) -> str:
        """The RQ job id, as a plain string."""
        return str.__str__(self)

    def status(self) -> str:
        """``queued``, ``started``, ``finished``, ``failed``, ``scheduled`` (waiting to be tried
        again), another RQ status, or ``expired`` once RQ has let the job go.

        Raises:
            StoreError: Redis cannot be reached.
        """
        try:
            job = self._queue.fetch_job(self.id)
            if job is None:
                return GONE
            status = job.get_status(refresh=False)
        except redis.RedisError as exc:
            raise StoreError(f"could not read job {self.id}: {str(exc).splitlines()[0]}") from None
        return GONE if status is None else str(status.value)
