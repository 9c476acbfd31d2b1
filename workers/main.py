"""Worker entry point: warm everything once, then run RQ workers on the dedup queue.

Heavy imports (numpy, datasketch, the LSH parameters) happen before any fork, so a work
horse or a second worker process starts with them in memory.

Two things RQ leaves to the application are settled here (docs/RELIABILITY.md):

- **Crashed workers.** RQ counts a started job as abandoned when its execution's heartbeat
  runs out, and a worker's registry maintenance then retries it. RQ's ``SimpleWorker`` sends
  no heartbeat while a job runs, so it declares each execution alive for the whole job
  timeout plus a minute; here a thread sends RQ's own heartbeats every
  ``HEARTBEAT_INTERVAL`` seconds instead, and an execution lives ``HEARTBEAT_GRACE``
  seconds past the interval. A long job of a live worker keeps beating and is never taken
  away; a killed worker's job is picked up by the others within about a minute.
- **Redis outages.** RQ's work loop quits on a connection error outside its dequeue call.
  Here the worker waits for Redis instead (saying so once, starting the embedded server
  again when that is the one in use), hands the job that was running back to RQ's failure
  handling, which retries it, and goes on. When the index lives on a server of its own, a
  job that lost it fails (and is retried) like any other, and the worker waits for the
  index before it takes the next job, so the queue is not emptied into failures.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import redis
from redis.exceptions import RedisClusterException
from rq import SimpleWorker, Worker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker, WorkerStatus

from dedup.errors import DedupError
from dedup.queue.queues import PayloadJob, make_queue
from dedup.servers.connection import (
    OUTAGE_BACKOFF,
    IndexClient,
    location,
    shared_location,
    wait_for_redis,
)
from dedup.settings import Settings
from workers.jobs import prepare

MAINTENANCE_INTERVAL = 10
"""Seconds between a worker's sweeps for abandoned jobs (RQ's default is 10 minutes)."""
HEARTBEAT_INTERVAL = 10
"""Seconds between the heartbeats of a running job (RQ's ``job_monitoring_interval``)."""
HEARTBEAT_GRACE = 20
"""Seconds an execution stays alive past a missed heartbeat; RQ allows 60."""
WORKER_TTL = 25
"""An idle worker blocks on the queue for this minus 15 seconds, so it reaches its
maintenance at least that often (RQ's default, 420, would leave a crashed worker's job
alone for 6 minutes when the queue is empty)."""

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
"""What a lost or restarting Redis raises through redis-py, once its own retries gave up."""

_T = TypeVar("_T")


class _QuietReconnects(logging.Filter):
    """Drops RQ's line per reconnection attempt: the worker says once that Redis is away."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "could not connect to Redis" not in str(record.msg)


class _OutageProof:
    """Outage handling shared by both worker classes (a mixin over RQ's ``BaseWorker``)."""

    connection: redis.Redis
    log: logging.Logger
    name: str
    key: str
    horse_pid: int
    executions: dict[str, Execution]
    job_monitoring_interval: int

    def __init__(
        self, *args: Any, settings: Settings, index: IndexClient | None = None, **kwargs: Any
    ) -> None:
        self.settings = settings
        self.index = None if shared_location(settings) else index
        """The index's Redis when it is not the queue's (``connection``), else None."""
        self._after_outage: list[Callable[[], None]] = []
        super().__init__(*args, **kwargs)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """RQ's heartbeat TTL (the next beat, capped by the time left), with a shorter grace."""
        beat = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            beat = max(0.0, min(beat, job.timeout - working_time))
        return int(beat) + HEARTBEAT_GRACE

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """A job failed by bad input gets one line in the log, not RQ's traceback.

        Its reason, a :class:`~dedup.errors.DedupError` message, names each rejected document
        already (``dedup failed`` shows it too); a traceback there would only tell an
        operator that dedup crashed, which it did not. Anything else keeps RQ's full report.
        """
        error = exc_info[1] if len(exc_info) > 1 else None
        if isinstance(error, DedupError):
            self.log.warning("job %s failed: %s", job.id, error)
            return
        super().handle_exception(job, *exc_info)  # type: ignore[misc]

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)  # type: ignore[misc]
        except REDIS_DOWN as exc:
            if self.horse_pid:  # a fork worker's horse may still run: it must not go on alone
                self.kill_horse()  # type: ignore[attr-defined]
                self.wait_for_horse()  # type: ignore[attr-defined]
            self.ride_out_outage(exc)
            self._steady(lambda: self._retry_interrupted(job, queue))
        self._check_index()

    def _check_index(self) -> None:
        """With the index on a server of its own, wait for it before the next job if it is
        away (a job that lost it failed, to be retried; the next ones would fail too)."""
        if self.index is None:
            return
        try:
            self.index.ping()
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            self.ride_out_outage(exc, "index")

    def _retry_interrupted(self, job: Job, queue: Queue) -> None:
        """Give the job Redis interrupted to RQ's failure handling: retried like any failure."""
        execution = next(iter(self.executions.values()), None)
        self.handle_job_failure(  # type: ignore[attr-defined]
            job, queue, exc_string="Redis connection lost while the job ran", execution=execution
        )
        self.set_state(WorkerStatus.IDLE)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # buffered: whoever executes the pipeline sees the error
            super().heartbeat(timeout, pipeline)  # type: ignore[misc]
            return
        self._steady(lambda: super(_OutageProof, self).heartbeat(timeout))  # type: ignore[misc]

    def set_state(self, state: str, pipeline: Any = None) -> None:
        # RQ sets the worker idle before each dequeue, outside the call that waits out a
        # lost connection: that one write would otherwise end the work loop.
        if pipeline is not None:  # buffered: whoever executes the pipeline sees the error
            super().set_state(state, pipeline)  # type: ignore[misc]
            return
        self._steady(lambda: super(_OutageProof, self).set_state(state))  # type: ignore[misc]

    def run_maintenance_tasks(self) -> None:
        def run() -> None:
            try:
                super(_OutageProof, self).run_maintenance_tasks()  # type: ignore[misc]
            except REDIS_DOWN:
                # a sweep cut off may have left RQ's 15-minute maintenance lock behind
                self._after_outage.append(self._release_maintenance_locks)
                raise

        self._steady(run)

    def check_for_suspension(self, burst: bool) -> None:
        self._steady(lambda: super(_OutageProof, self).check_for_suspension(burst))  # type: ignore[misc]

    def request_stop(self, signum: int, frame: Any) -> None:
        """Stop on SIGTERM or Ctrl+C even while Redis is away.

        RQ's warm shutdown asks Redis whether a job is running; with Redis gone that call
        fails inside the signal handler, and the wait for Redis would swallow it, so the
        worker would never stop. Then there is nothing to finish or hand back (the job that
        was running is retried once Redis is back): the worker exits at once.
        """
        try:
            super().request_stop(signum, frame)  # type: ignore[misc]
        except REDIS_DOWN:
            self.log.warning("Worker %s: stopping while Redis is away", self.name)
            raise SystemExit(0) from None

    def teardown(self) -> None:
        """RQ's teardown; with Redis away, the worker's entry expires by its TTL instead."""
        try:
            super().teardown()  # type: ignore[misc]
        except REDIS_DOWN:
            self.log.warning("Worker %s: stopped; Redis is away, its entry will expire", self.name)

    def _steady(self, call: Callable[[], _T]) -> _T:
        """Run a call of the work loop until it gets through Redis, waiting out outages."""
        while True:
            try:
                return call()
            except REDIS_DOWN as exc:
                self.ride_out_outage(exc)

    def ride_out_outage(self, exc: Exception, role: Literal["queue", "index"] = "queue") -> None:
        """Wait until Redis (the queue's, or the index's as ``role`` says) answers again;
        one log line when it went away, one when back."""
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = location(self.settings, role)
        if self.index is not None:
            where = f"{role} {where}"
        self.log.warning("Worker %s: lost Redis (%s: %s); retrying", self.name, where, reason)
        started = time.monotonic()
        if role == "index" and self.index is not None:
            wait_for_redis(self.settings, self.index, "index")
        else:
            wait_for_redis(self.settings, self.connection, "queue")
        self.log.warning(
            "Worker %s: Redis is back after %.0f s; carrying on",
            self.name,
            time.monotonic() - started,
        )
        if role == "index":
            return
        if not self.connection.exists(self.key):  # a restarted server may have lost the entry
            self.register_birth()  # type: ignore[attr-defined]
        pending, self._after_outage[:] = list(self._after_outage), []
        for action in pending:
            action()

    def _release_maintenance_locks(self) -> None:
        for queue in self.queues:  # type: ignore[attr-defined]
            queue.release_maintenance_lock()


class _Heartbeat(threading.Thread):
    """RQ's heartbeats for a job running in the worker's own process (what a fork worker's
    monitoring loop does for its horse)."""

    def __init__(self, worker: SimpleWorker, job: Job, execution: Execution) -> None:
        super().__init__(name=f"heartbeat-{job.id}", daemon=True)
        self.worker, self.job, self.execution = worker, job, execution
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.worker.job_monitoring_interval):
            try:
                self.worker.maintain_heartbeats(self.job, self.execution)
            except REDIS_DOWN:
                continue  # the job itself meets the outage; the worker reports it once


class DedupSimpleWorker(_OutageProof, SimpleWorker):
    """RQ's ``SimpleWorker`` (no fork per job) with heartbeats while a job runs."""

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        beat = _Heartbeat(self, job, execution)
        beat.start()
        try:
            return bool(super().perform_job(job, queue, execution))
        finally:
            beat.done.set()
            beat.join()


class DedupWorker(_OutageProof, Worker):
    """RQ's forking ``Worker``; its monitoring loop already beats for the horse."""


class SteadyScheduler(RQScheduler):
    """RQ's scheduler (it enqueues retries when their pause is over), waiting out outages.

    RQ's own scheduler process dies on a connection error with a traceback, and the worker's
    maintenance starts another; this one waits quietly and goes on, as its worker does.
    """

    def work(self) -> None:
        failures = 0
        while True:
            try:
                super().work()  # type: ignore[no-untyped-call]  # unannotated in RQ
                return
            except REDIS_DOWN:
                if getattr(self, "_stop_requested", False):  # its worker is stopping: the
                    return  # locks expire by themselves, and Redis is not there to free them
                failures += 1
                time.sleep(OUTAGE_BACKOFF.compute(failures))


def start_scheduler(worker: BaseWorker, *, burst: bool) -> None:
    """What ``work(with_scheduler=True)`` does, with the steady scheduler: it takes the lock
    of the queue unless another worker's scheduler holds it; later maintenance tries again."""
    scheduler = SteadyScheduler(
        worker.queues,
        connection=worker.connection,
        logging_level="WARNING",
        serializer=worker.serializer,
    )
    worker.scheduler = scheduler
    scheduler.acquire_locks()  # type: ignore[no-untyped-call]  # unannotated in RQ
    if not scheduler.acquired_locks:
        return
    if not burst:
        scheduler.start()  # type: ignore[no-untyped-call]  # unannotated in RQ
        return
    try:
        scheduler.register_birth()
        scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]  # unannotated in RQ
    finally:
        scheduler.release_locks()  # type: ignore[no-untyped-call]  # unannotated in RQ
        scheduler.register_death()


def make_worker(
    settings: Settings, connection: redis.Redis, index: IndexClient | None = None
) -> DedupSimpleWorker | DedupWorker:
    """A worker of the configured class on the dedup queue (``connection``: the queue's
    Redis; ``index``: the index's, when it is another), tuned for prompt crash recovery."""
    worker_class = DedupSimpleWorker if settings.worker_class == "simple" else DedupWorker
    return worker_class(
        [make_queue(settings, connection)],
        connection=connection,
        serializer=JSONSerializer,
        job_class=PayloadJob,
        maintenance_interval=MAINTENANCE_INTERVAL,
        job_monitoring_interval=HEARTBEAT_INTERVAL,
        worker_ttl=WORKER_TTL,
        settings=settings,
        index=index,
    )


def run(settings: Settings, *, burst: bool = False) -> None:
    """Run one worker in this process until stopped (or, with ``burst``, the queue is empty)."""
    ctx = prepare(settings)
    logging.getLogger("rq.worker").addFilter(_QuietReconnects())
    worker = make_worker(settings, ctx.queue, ctx.index)
    start_scheduler(worker, burst=burst)
    worker.work(burst=burst, logging_level="WARNING")


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
