"""``/metrics``: the service's figures in Prometheus's text format.

Worker figures (documents indexed and rejected, flags raised, latency histograms) come from
the hash every worker adds to (:mod:`dedup.queue.metrics`), so they are right however many
workers run on however many hosts; queue depth, failed jobs, live workers and index counts
are read from Redis at each scrape.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from dedup.index.keys import FLAGS
from dedup.queue import metrics as worker_metrics
from dedup.web.app import Web, require, web

router = APIRouter(tags=["metrics"])

_HELP = {
    "analysis_seconds": "Seconds a worker spent analysing one document",
    "write_seconds": "Seconds a worker spent writing one job's documents to the index",
}


class ServiceCollector(Collector):
    """Reads the figures from Redis at each scrape."""

    def __init__(self, state: Web) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        store = self.state.store
        figures = worker_metrics.read(store.client, store.keys, FLAGS)
        counts = figures.counts
        for name, help_text in (
            ("indexed", "Documents indexed (new, or with changed content)"),
            ("unchanged", "Documents submitted again with unchanged content"),
            ("rejected", "Documents rejected for bad input or a failed write"),
        ):
            yield CounterMetricFamily(f"dedup_documents_{name}", help_text, value=counts[name])
        flags = CounterMetricFamily(
            "dedup_flags_raised", "Flags raised when documents were indexed", labels=["flag"]
        )
        for flag, count in figures.flags.items():
            if flag != "boilerplate":  # decided when reports are read, not when written
                flags.add_metric([flag], count)
        yield flags
        for name, histogram in figures.histograms.items():
            yield HistogramMetricFamily(
                f"dedup_{name}",
                _HELP[name],
                buckets=histogram.buckets,
                sum_value=histogram.total,
            )
        queue = worker_metrics.queue_state(self.state.client.queue)
        yield GaugeMetricFamily("dedup_queue_depth", "Jobs waiting on the queue", queue.queued)
        yield GaugeMetricFamily("dedup_failed_jobs", "Jobs that failed for good", queue.failed)
        yield GaugeMetricFamily("dedup_workers", "Live workers serving the queue", queue.workers)
        yield GaugeMetricFamily(
            "dedup_gathered_documents",
            "Single submissions this server holds to queue with others (submit_delay)",
            self.state.gatherer.waiting,
        )
        yield GaugeMetricFamily(
            "dedup_submissions_in_progress",
            "Submission requests this server is reading, checking or queueing",
            self.state.submitting,
        )
        index = store.stats()
        yield GaugeMetricFamily(
            "dedup_index_documents", "Documents in the index", index["documents"]
        )
        flagged = GaugeMetricFamily(
            "dedup_flagged_documents", "Indexed documents carrying each flag", labels=["flag"]
        )
        for flag, count in index["flags"].items():
            flagged.add_metric([flag], count)
        yield flagged


@router.get("/metrics", summary="Prometheus text format")
def prometheus(request: Request) -> Response:
    """The figures of the service, for a Prometheus scrape with a bearer token."""
    require(request)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(web(request)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
