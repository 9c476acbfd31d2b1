"""Failed jobs and rejected documents as people need them: which, why, when; sending them again.

Two things end in RQ's failed-job registry. A job that failed as a whole (Redis gone for
longer than its retries, a timeout) keeps its documents, all with the job's reason. A
document that a worker rejected (bad input) never fails the others of its job: the worker
indexes those, and files the rejected ones, with a reason each, as a failed job of their own
(:func:`file_rejected`), so that ``dedup requeue`` can send exactly them again after a fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FailedJobRegistry
from rq.results import Result

from dedup.errors import NotFoundError
from dedup.pipeline.document import label
from dedup.queue.queues import JOB_FUNCTION

REJECTED = "rejected"
"""Job meta field: the rejected documents of a job, ``[{"id", "reason"}]``."""


@dataclass(frozen=True)
class Rejection:
    """One document a worker could not index, and why."""

    doc_id: str
    """The document's id, or a safe rendering of a bad one (``dedup.pipeline.document.label``)."""
    reason: str
    payload: Any
    """The document as the job carried it, to send again after a fix."""


@dataclass(frozen=True)
class FailedJob:
    """One job that failed for good."""

    job_id: str
    reason: str
    failed_at: datetime | None
    documents: list[str]
    rejected: list[tuple[str, str]]
    """Documents rejected for what they hold: (id, reason); empty when the job failed whole."""


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
        return [label(p, n) for n, p in enumerate(args[0])]
    return []


def _rejected(job: Job) -> list[tuple[str, str]]:
    rows = job.meta.get(REJECTED) if isinstance(job.meta, dict) else None
    if not isinstance(rows, list):
        return []
    return [
        (str(row.get("id")), str(row.get("reason")))
        for row in rows
        if isinstance(row, dict) and "id" in row
    ]


def summary(rejected: Sequence[Rejection], total: int) -> str:
    """One line for a job's failure: how many were rejected, and the first reasons."""
    shown = "; ".join(f"{r.doc_id}: {r.reason}" for r in rejected[:5])
    more = f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
    return f"{len(rejected)} of {total} document(s) rejected: {shown}{more}"


def rejected_meta(rejected: Sequence[Rejection]) -> list[dict[str, str]]:
    """The rejected documents as a job keeps them in its meta."""
    return [{"id": r.doc_id, "reason": r.reason} for r in rejected]


def file_rejected(queue: Queue, parent: Job, rejected: Sequence[Rejection], total: int) -> Job:
    """File the rejected documents of ``parent`` as a failed job holding only them.

    Its id is derived from the parent's, so a retried parent files them once, not twice.
    Requeued (``dedup requeue``), it runs like any job: after a fix, they are indexed.
    """
    reason = summary(rejected, total)
    job = queue.create_job(
        JOB_FUNCTION,
        args=([r.payload for r in rejected],),
        timeout=int(parent.timeout) if parent.timeout is not None else None,
        result_ttl=parent.result_ttl,
        failure_ttl=parent.failure_ttl,
        description=f"analyse {len(rejected)} rejected document(s)",
        job_id=f"{parent.id}-rejected",
        meta={REJECTED: rejected_meta(rejected)},
        status=JobStatus.FAILED,
    )
    job.ended_at = datetime.now(UTC)
    ttl = parent.failure_ttl
    with queue.connection.pipeline() as pipe:
        job.save(pipeline=pipe)
        FailedJobRegistry(queue=queue).add(job, ttl=ttl, exc_string=reason, pipeline=pipe)
        Result.create_failure(job, ttl, exc_string=reason, pipeline=pipe)
        pipe.execute()
    return job


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
        rows.append(FailedJob(job.id, _reason(exc), job.ended_at, _documents(job), _rejected(job)))
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
