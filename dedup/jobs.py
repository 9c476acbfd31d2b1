"""Failed jobs as people need them: which documents, why, when; and sending them again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.queue import Queue
from rq.registry import FailedJobRegistry

from dedup.errors import NotFoundError


@dataclass(frozen=True)
class FailedJob:
    """One job that failed for good."""

    job_id: str
    reason: str
    failed_at: datetime | None
    documents: list[str]


def _reason(exc_string: str | None) -> str:
    """The last line of the stored traceback, without the exception's module path."""
    lines = [line for line in (exc_string or "").strip().splitlines() if line.strip()]
    if not lines:
        return "unknown"
    last = lines[-1]
    head, _, rest = last.partition(": ")
    return rest if rest and "." in head and " " not in head else last


def _documents(job: Job) -> list[str]:
    try:
        args = job.args
    except Exception:  # a payload that is not JSON names no documents
        return []
    if args and isinstance(args[0], list):
        return [str(p.get("id")) for p in args[0] if isinstance(p, dict) and p.get("id")]
    return []


def failed_jobs(queue: Queue, limit: int = 100) -> list[FailedJob]:
    """The failed jobs of the queue, newest first."""
    registry = FailedJobRegistry(queue=queue)
    ids = list(reversed(registry.get_job_ids()))[:limit]
    rows = []
    for job in Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer):
        if job is None:
            continue
        result = job.latest_result()
        exc = result.exc_string if result is not None else None
        rows.append(FailedJob(job.id, _reason(exc), job.ended_at, _documents(job)))
    return rows


def requeue(queue: Queue, job_ids: list[str]) -> int:
    """Put failed jobs back on the queue; every id must be a failed job of this queue."""
    registry = FailedJobRegistry(queue=queue)
    known = set(registry.get_job_ids())
    unknown = [job_id for job_id in job_ids if job_id not in known]
    if unknown:
        raise NotFoundError(f"not a failed job of queue {queue.name!r}: {', '.join(unknown)}")
    done = 0
    for job_id in job_ids:
        try:
            registry.requeue(job_id)
            done += 1
        except NoSuchJobError:
            continue
    return done
