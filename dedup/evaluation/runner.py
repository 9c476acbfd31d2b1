"""Run cases the way production runs documents: a queue, real worker processes, a real Redis.

Each group of cases gets a namespace and a queue of its own (``eval-<random>-<group>``) on
the configured Redis (the queue's and the index's, ``DEDUP_REDIS_URL`` or the embedded
server), with the configured
settings; ``python -m dedup worker --burst`` processes work it off, then the reports are read
back through :class:`dedup.index.store.Store`, and for the groups asked, the duplicate
groups as ``dedup groups`` reads them (:func:`dedup.index.groups.read_groups`). Everything
written (index keys, jobs, registries) is deleted afterwards, whatever happened, by the
layers that wrote it (``Store.drop``, :func:`dedup.queue.queues.drop_queue`).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from dedup.errors import DedupError, NotFoundError, StoreError
from dedup.evaluation.cases import Case
from dedup.index.groups import options_for, read_groups
from dedup.index.reads import Reads
from dedup.index.store import Store
from dedup.pipeline.document import Document
from dedup.queue.failed import failed_jobs
from dedup.queue.queues import JOB_FUNCTION, drop_queue, make_queue
from dedup.report import Group, Report
from dedup.servers.connection import IndexClient, clients
from dedup.servers.embedded import ensure_server
from dedup.settings import Settings

_JOB_BYTES = 4_000_000
"""Payload bytes per job: whole pages are large, and a job is one Redis value."""


@dataclass
class GroupRun:
    """What the workers made of one group: a report per indexed document."""

    reports: dict[str, Report] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    """Documents without a report."""
    failures: list[str] = field(default_factory=list)
    """Why jobs failed, as the workers said it."""
    groups: list[Group] = field(default_factory=list)
    """The duplicate groups of the namespace, when asked (at the settings' threshold and
    canonical rule)."""


def _batches(cases: list[Case], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    weight = 0
    for case in cases:
        document = Document(case.doc_id, case.body, fmt="html", fetched_at=case.fetched_at)
        payload = document.to_payload()
        if batch and (len(batch) >= size or weight + len(case.body) > _JOB_BYTES):
            yield batch
            batch, weight = [], 0
        batch.append(payload)
        weight += len(case.body)
    if batch:
        yield batch


def _environment(settings: Settings) -> dict[str, str]:
    """The settings as ``DEDUP_*`` variables, so the workers run with exactly these."""
    env = dict(os.environ)
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        env[f"DEDUP_{item.name.upper()}"] = "" if value is None else str(value)
    return env


def run_group(
    settings: Settings,
    queue_redis: redis.Redis,
    index_redis: IndexClient,
    cases: list[Case],
    processes: int,
    *,
    grouped: bool = False,
) -> GroupRun:
    """Queue the cases, work them off with real workers, read the reports (and with
    ``grouped`` the duplicate groups), clean up."""
    queue = make_queue(settings, queue_redis)
    job_ids: list[str] = []
    try:
        for payloads in _batches(cases, settings.batch_size):
            job = queue.enqueue(
                JOB_FUNCTION,
                payloads,
                job_timeout=settings.job_timeout,
                result_ttl=0,
                failure_ttl=3600,
                description=f"evaluate {len(payloads)} document(s)",
            )
            job_ids.append(str(job.id))
        command = [sys.executable, "-m", "dedup", "worker", "--burst"]
        command += ["--processes", str(processes)]
        done = subprocess.run(
            command, env=_environment(settings), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise StoreError(f"evaluation workers exited with {done.returncode}: {tail}")
        result = GroupRun()
        result.failures = [f.reason for f in failed_jobs(queue, limit=len(job_ids))]
        store = Store(index_redis, settings)  # see IndexClient
        for case in cases:
            try:
                result.reports[case.doc_id] = store.report(case.doc_id)
            except NotFoundError:
                result.rejected.append(case.doc_id)
        if grouped:
            reads = Reads(index_redis, settings)  # see IndexClient
            result.groups = list(read_groups(reads, options_for(reads)))
        return result
    finally:
        drop_queue(queue, job_ids)
        Store(index_redis, settings).drop()  # see IndexClient


def run(
    settings: Settings,
    groups: dict[str, list[Case]],
    processes: int = 2,
    on_group: Callable[[str, int], None] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    grouped: Collection[str] = (),
) -> dict[str, GroupRun]:
    """Run every group in a fresh namespace of the configured Redis; returns their reports.

    ``overrides`` changes settings for some groups (a setting a group measures, e.g.
    ``near_paragraphs``); the namespace of each group is its own, so this mixes nothing.
    The groups named in ``grouped`` also get their duplicate groups read.
    """
    # the workers are told where the embedded server is, if that is the one in use
    located = settings.replace(
        queue_url=settings.effective_queue_url or ensure_server(settings.data_dir),
        index_url=settings.effective_index_url or ensure_server(settings.data_dir),
    )
    queue_redis, index_redis = clients(located)
    token = secrets.token_hex(4)
    results: dict[str, GroupRun] = {}
    try:
        for group, cases in groups.items():
            if on_group is not None:
                on_group(group, len(cases))
            name = f"eval-{token}-{group}"
            group_settings = located.replace(
                namespace=name,
                queue=name,
                retries=0,
                **(overrides or {}).get(group, {}),
            )
            results[group] = run_group(
                group_settings,
                queue_redis,
                index_redis,
                cases,
                processes,
                grouped=group in grouped,
            )
    except redis.RedisError as exc:
        raise StoreError(f"Redis failed during the evaluation: {exc}") from None
    except DedupError:
        raise
    finally:
        queue_redis.close()
        index_redis.close()
    return results
