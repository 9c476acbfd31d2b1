"""The workers' figures in the index, one server and a cluster: parts that add up."""

from __future__ import annotations

from dedup.index.keys import FLAGS
from dedup.index.store import Store
from dedup.queue import metrics
from dedup.servers.connection import IndexClient
from dedup.settings import Settings


def test_jobs_spread_their_figures_and_readers_sum_them(
    index_client: IndexClient, index_settings: Settings
) -> None:
    """Each job writes one part of the figures; the reader sums the parts, and the one key
    that indexes built before the parts kept."""
    store = Store(index_client, index_settings)
    keys = store.keys
    for _ in range(64):
        figures = metrics.JobFigures()
        figures.counts["indexed"] += 2
        figures.counts["flag:doubled_body"] += 1
        figures.observe("write_seconds", 0.003)
        pipe = index_client.pipeline(transaction=False)
        metrics.add(pipe, keys, figures)
        pipe.execute()
    index_client.hincrby(keys.legacy_worker_metrics, "indexed", 5)
    used = [s for s in range(keys.metric_parts) if index_client.exists(keys.worker_metrics(s))]
    assert len(used) > keys.metric_parts // 2, "the jobs wrote many parts, not one"
    read = metrics.read(index_client, keys, FLAGS)
    assert 64 * 2 + 5 == read.counts["indexed"]
    assert 64 == read.flags["doubled_body"]
    write = read.histograms["write_seconds"]
    assert (64.0, 64.0) == (write.count, dict(write.buckets)["0.005"])
