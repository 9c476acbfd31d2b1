"""Worker figures kept in Redis, so that they add up across worker processes and hosts.

Every job adds its counts and latency observations to one of a few hashes
(:meth:`Keys.worker_metrics`, a part chosen at random, so that on a cluster no key takes
every job's writes) in the same pipelined call that keeps its documents' text; ``/metrics``
sums the parts and turns them into Prometheus counters and histograms. Histogram buckets
are stored per bucket (not cumulative), so an observation costs one ``HINCRBY``.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import redis
from rq import Queue

from dedup.index.keys import Keys
from dedup.servers.connection import IndexClient

ANALYSIS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the analysis latency histogram, per document."""
WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the index write latency histogram, per batch written."""
HISTOGRAMS = {"analysis_seconds": ANALYSIS_BUCKETS, "write_seconds": WRITE_BUCKETS}
COUNTS = ("indexed", "unchanged", "rejected")
"""Document counters: indexed (new or changed), unchanged (same content again), rejected."""


@dataclass
class JobFigures:
    """What one job adds to the workers' figures."""

    counts: Counter[str] = field(default_factory=Counter)
    """Documents by outcome (:data:`COUNTS`) and ``flag:<name>`` for flags raised."""
    observations: dict[str, list[float]] = field(default_factory=dict)

    def observe(self, histogram: str, seconds: float) -> None:
        """Record one latency observation."""
        self.observations.setdefault(histogram, []).append(seconds)


def _bucket_field(histogram: str, seconds: float) -> str:
    bounds = HISTOGRAMS[histogram]
    index = bisect.bisect_left(bounds, seconds)
    return f"{histogram}:le:{bounds[index]:g}" if index < len(bounds) else f"{histogram}:le:+Inf"


def add(pipe: redis.client.Pipeline, keys: Keys, figures: JobFigures) -> None:
    """Queue on ``pipe`` the increments of one job (a few ``HINCRBY`` in the same call)."""
    key = keys.worker_metrics(random.randrange(keys.metric_parts))
    for name, count in figures.counts.items():
        if count:
            pipe.hincrby(key, name, count)
    for histogram, values in figures.observations.items():
        for bucket, count in Counter(_bucket_field(histogram, v) for v in values).items():
            pipe.hincrby(key, bucket, count)
        pipe.hincrby(key, f"{histogram}:count", len(values))
        pipe.hincrbyfloat(key, f"{histogram}:sum", sum(values))


@dataclass(frozen=True)
class Histogram:
    """A histogram as Prometheus shows it: cumulative buckets, sum and count."""

    buckets: list[tuple[str, float]]
    total: float
    count: float


@dataclass(frozen=True)
class WorkerFigures:
    """Everything the workers have counted, summed over all of them."""

    counts: dict[str, int]
    flags: dict[str, int]
    histograms: dict[str, Histogram]


def _histogram(values: Mapping[str, float], name: str, bounds: Sequence[float]) -> Histogram:
    running = 0.0
    buckets = []
    for label in [f"{b:g}" for b in bounds] + ["+Inf"]:
        running += values.get(f"{name}:le:{label}", 0.0)
        buckets.append((label, running))
    return Histogram(buckets, values.get(f"{name}:sum", 0.0), values.get(f"{name}:count", 0.0))


def read(client: IndexClient, keys: Keys, flags: Iterable[str]) -> WorkerFigures:
    """The workers' figures so far, summed over the parts (zeros before the first job)."""
    pipe = client.pipeline(transaction=False)
    for part in range(keys.metric_parts):
        pipe.hgetall(keys.worker_metrics(part))
    pipe.hgetall(keys.legacy_worker_metrics)
    values: dict[str, float] = {}
    for raw in cast("list[dict[bytes, bytes]]", pipe.execute()):
        for k, v in raw.items():
            values[k.decode()] = values.get(k.decode(), 0.0) + float(v)
    return WorkerFigures(
        counts={name: int(values.get(name, 0)) for name in COUNTS},
        flags={name: int(values.get(f"flag:{name}", 0)) for name in flags},
        histograms={name: _histogram(values, name, bounds) for name, bounds in HISTOGRAMS.items()},
    )


@dataclass(frozen=True)
class QueueState:
    """How the queue is doing: jobs waiting, jobs failed for good, live workers."""

    queued: int
    failed: int
    workers: int


def queue_state(queue: Queue) -> QueueState:
    """The queue's depth, its failed jobs and the workers serving it now."""
    from rq import Worker
    from rq.registry import FailedJobRegistry

    return QueueState(queue.count, FailedJobRegistry(queue=queue).count, Worker.count(queue=queue))
