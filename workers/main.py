"""Worker entry point: warm everything once, then run RQ workers on the dedup queue.

Heavy imports (numpy, datasketch, the LSH parameters) happen before any fork, so a work
horse or a second worker process starts with them in memory.
"""

from __future__ import annotations

import multiprocessing
import sys

from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer

from dedup.queue import PayloadJob, make_queue
from dedup.settings import Settings
from workers.jobs import prepare

MAINTENANCE_INTERVAL = 60
"""Seconds between a worker's sweeps for abandoned jobs."""


def run(settings: Settings, *, burst: bool = False) -> None:
    """Run one worker in this process until stopped (or, with ``burst``, the queue is empty)."""
    ctx = prepare(settings)
    connection = ctx.store.client
    worker_class = SimpleWorker if settings.worker_class == "simple" else Worker
    worker = worker_class(
        [make_queue(settings, connection)],
        connection=connection,
        serializer=JSONSerializer,
        job_class=PayloadJob,
        # Registry maintenance finds jobs abandoned by killed workers; RQ's default is 10 min.
        maintenance_interval=MAINTENANCE_INTERVAL,
    )
    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")


def _child(settings: Settings, burst: bool) -> None:
    try:
        run(settings, burst=burst)
    except KeyboardInterrupt:
        sys.exit(0)


def run_many(settings: Settings, processes: int, *, burst: bool = False) -> int:
    """Run ``processes`` workers in child processes; returns how many exited with an error."""
    prepare(settings)  # fail early, in the parent, on a bad connection or settings
    ctx = multiprocessing.get_context("fork")  # children inherit the warmed-up modules
    children = [ctx.Process(target=_child, args=(settings, burst)) for _ in range(processes)]
    for child in children:
        child.start()
    try:
        for child in children:
            child.join()
    except KeyboardInterrupt:
        for child in children:
            child.join()
    return sum(1 for child in children if child.exitcode)
