"""The index on Redis Cluster: load per shard, memory, write speed against the code before it.

Four measurements (``python -m bench.cluster``, or the ``cluster`` section of ``make bench``):

* **shards**: the same synthetic analyses (:mod:`bench.synthetic`) indexed in batches of 200
  on a fresh cluster of 1, 2 and 3 masters (:class:`tests.cluster.LocalCluster`, the embedded
  server's layout settings), and on one standalone server; per master the growth of CPU seconds
  (``used_cpu_sys + used_cpu_user``), commands and ``used_memory``. Keys are spread over the
  index's shards (``index_shards``), whose hash tags cover the slots evenly, so the total per
  document should stay flat as masters are added and each master should carry about 1/N.
* **memory**: bytes per document summed over 3 masters against one standalone server, each
  filled to the same size by two processes.
* **write**: ``Store.index`` alone (analyses built before the clock starts, and frozen out of
  the garbage collector's walks) on a fresh standalone server, this tree against the commit
  before the index was rewritten for clusters, each in a subprocess of its own with that tree
  first on ``PYTHONPATH``, alternately; bulk batches and one-document batches; then two real
  workers of each tree on jobs of real corpus documents, bulk and one per job, from the first
  submit until every report is stored (what a user's run sees, analysis included). This tree
  runs with its default shards on one server (one) and, for one-document writes, also with
  the 128 of a cluster.
* **queue**: how many bulk jobs (200 small documents each) one Redis takes in and hands out per
  second for RQ, and the Redis CPU each costs: the ceiling past which a second queue is needed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import redis

from bench import corpus as corpus_
from bench import memory, synthetic
from bench.measure import REPO, machine, median, names, numbers, redis_cpu, wait_until
from bench.redisproc import default_binary, redis_server, server_version
from bench.throughput import NOOP_FUNCTION
from bench.workerproc import CODE, running_workers
from dedup.client import Client
from dedup.index.layout import CLUSTER_SHARDS
from dedup.index.store import Store
from dedup.pipeline.analysis import Analysis, analyse
from dedup.pipeline.document import from_payload
from dedup.servers.embedded import LAYOUT_CONFIG
from dedup.settings import Settings
from tests.cluster import LocalCluster

NAMESPACE = "bench"
BATCH = 200
OLD_COMMIT = "ab655ad"
"""The last commit before the index was rewritten for Redis Cluster (same ``Store.index``)."""
PARTS = ("shards", "memory", "write", "queue")
EACH_DEFAULT = "each tree's default"
"""What the write part compares unless ``DEDUP_NEAR_PARAGRAPHS`` sets both trees alike."""
Log = Callable[[str], None]


def _index_all(store: Store, analyses: Sequence[Analysis], batch: int) -> float:
    """Seconds to index ``analyses`` in batches of ``batch``."""
    start = time.perf_counter()
    for k in range(0, len(analyses), batch):
        store.index(analyses[k : k + batch])
    return time.perf_counter() - start


def local_cluster(
    folder: Path, masters: int, binary: str, node_timeout_ms: int = 1000
) -> LocalCluster:
    """A cluster of ``masters`` with the embedded server's layout settings (not started)."""
    return LocalCluster(
        folder,
        masters,
        binary=binary,
        server_args=LAYOUT_CONFIG,
        timeout=120,
        node_timeout_ms=node_timeout_ms,
    )


# -- shards ---------------------------------------------------------------------------------


def _share_row(values: dict[int, float]) -> dict[str, Any]:
    total = sum(values.values()) or 1.0
    shares = [v / total for v in values.values()]
    even = 1 / len(values)
    return {
        "shares": [round(s, 4) for s in shares],
        "max_deviation": round(max(abs(s / even - 1) for s in shares), 4),
    }


def _shard_run(
    analyses: Sequence[Analysis],
    masters: int,
    binary: str,
    batch: int,
    folder: Path,
    settings: Settings,
) -> dict[str, Any]:
    """Index ``analyses`` on a fresh cluster of ``masters``; what each master did."""
    with local_cluster(folder / f"masters-{masters}", masters, binary) as cluster:
        store = Store(cluster.client(), settings)
        cluster.reset_stats()
        before = cluster.stats()
        seconds = _index_all(store, analyses, batch)
        after = cluster.stats()
    docs = len(analyses)
    cpu = {
        p: (after[p].used_cpu_sys + after[p].used_cpu_user)
        - (before[p].used_cpu_sys + before[p].used_cpu_user)
        for p in after
    }
    commands = {
        p: after[p].total_commands_processed - before[p].total_commands_processed for p in after
    }
    used = {p: after[p].used_memory - before[p].used_memory for p in after}
    calls = {
        p: {
            name: n - before[p].commands.get(name, 0)
            for name, n in sorted(after[p].commands.items())
            if n - before[p].commands.get(name, 0)
        }
        for p in after
    }
    return {
        "masters": masters,
        "documents": docs,
        "seconds": round(seconds, 2),
        "docs_per_s": round(docs / seconds, 1),
        "per_master": [
            {
                "port": p,
                "slots": after[p].slots,
                "cpu_s": round(cpu[p], 3),
                "cpu_us_per_doc": round(cpu[p] / docs * 1e6, 1),
                "commands": commands[p],
                "commands_per_doc": round(commands[p] / docs, 2),
                "used_memory": used[p],
                "bytes_per_doc": round(used[p] / docs, 1),
                "calls": calls[p],
            }
            for p in sorted(after)
        ],
        "total": {
            "cpu_us_per_doc": round(sum(cpu.values()) / docs * 1e6, 1),
            "commands_per_doc": round(sum(commands.values()) / docs, 2),
            "bytes_per_doc": round(sum(used.values()) / docs, 1),
        },
        "cpu_share": _share_row(cpu),
        "commands_share": _share_row({p: float(n) for p, n in commands.items()}),
        "memory_share": _share_row({p: float(n) for p, n in used.items()}),
    }


def _standalone_run(
    analyses: Sequence[Analysis], binary: str, batch: int, settings: Settings
) -> dict[str, Any]:
    """The same indexing on one standalone server (no cluster client, no slots)."""
    with redis_server(binary) as url:
        client = redis.Redis.from_url(url)
        store = Store(client, settings)
        client.config_resetstat()
        before = client.info("all")
        seconds = _index_all(store, analyses, batch)
        after = client.info("all")
    docs = len(analyses)
    cpu = redis_cpu(after) - redis_cpu(before)
    commands = int(after["total_commands_processed"]) - int(before["total_commands_processed"])
    used = int(after["used_memory"]) - int(before["used_memory"])
    return {
        "masters": 0,
        "documents": docs,
        "seconds": round(seconds, 2),
        "docs_per_s": round(docs / seconds, 1),
        "total": {
            "cpu_us_per_doc": round(cpu / docs * 1e6, 1),
            "commands_per_doc": round(commands / docs, 2),
            "bytes_per_doc": round(used / docs, 1),
        },
    }


def shards(
    corpus: corpus_.Corpus,
    docs: int,
    counts: Sequence[int],
    binary: str,
    batch: int,
    folder: Path,
    log: Log,
    settings: Settings,
) -> dict[str, Any]:
    """Redis CPU, commands and memory per document on each master, for each master count."""
    started = time.perf_counter()
    analyses = [synthetic.analysis(corpus, i, settings) for i in range(docs)]
    log(f"  {docs:,} synthetic analyses in {time.perf_counter() - started:.1f} s")
    runs = []
    standalone = _standalone_run(analyses, binary, batch, settings)
    # One server as a new index there is cut by default: one shard.
    alone = _standalone_run(analyses, binary, batch, settings.replace(index_shards=None))
    for name, row in (("standalone", standalone), ("standalone, one shard", alone)):
        log(
            f"  {name}: {row['total']['cpu_us_per_doc']:.0f} µs CPU/doc, "
            f"{row['total']['commands_per_doc']:.1f} commands/doc, {row['docs_per_s']:,.0f} docs/s"
        )
    for masters in counts:
        row = _shard_run(analyses, masters, binary, batch, folder, settings)
        runs.append(row)
        per = ", ".join(f"{m['cpu_us_per_doc']:.0f}" for m in row["per_master"])
        log(
            f"  {masters} master(s): {row['total']['cpu_us_per_doc']:.0f} µs CPU/doc in all "
            f"({per} per master), {row['total']['commands_per_doc']:.1f} commands/doc, "
            f"CPU share off by {row['cpu_share']['max_deviation']:.1%} at most, "
            f"{row['docs_per_s']:,.0f} docs/s"
        )
    return {
        "documents": docs,
        "batch": batch,
        "shards": settings.index_shards,
        "standalone": standalone,
        "standalone_one_shard": alone,
        "runs": runs,
    }


# -- memory ---------------------------------------------------------------------------------


def _fill_part(
    target: Callable[[], Any], corpus: corpus_.Corpus, size: int, part: int, settings: Settings
) -> None:
    store = Store(target(), settings)
    for first in range(part * BATCH, size, 2 * BATCH):
        last = min(first + BATCH, size)
        store.index([synthetic.analysis(corpus, i, settings) for i in range(first, last)])


def _fill(
    target: Callable[[], Any], corpus: corpus_.Corpus, size: int, settings: Settings
) -> float:
    """Fill a store to ``size`` synthetic documents with two processes; seconds taken."""
    ctx = multiprocessing.get_context("fork")
    started = time.perf_counter()
    children = [
        ctx.Process(target=_fill_part, args=(target, corpus, size, k, settings)) for k in range(2)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
    if any(child.exitcode for child in children):
        raise RuntimeError("a fill process failed")
    return time.perf_counter() - started


def memory_compare(
    corpus: corpus_.Corpus, size: int, binary: str, folder: Path, log: Log, settings: Settings
) -> dict[str, Any]:
    """Bytes per document over 3 masters (summed) and on one standalone server, with the
    same shards and with the one shard of a new index there."""
    result: dict[str, Any] = {"size": size, "shards": settings.index_shards}
    started = time.perf_counter()
    with local_cluster(folder / "memory", 3, binary) as cluster:
        start = cluster.stats()
        fill_s = _fill(cluster.client, corpus, size, settings)
        full = cluster.stats()
        documents = memory.documents(cluster.client(), NAMESPACE)  # type: ignore[arg-type]
    grown = {p: full[p].used_memory - start[p].used_memory for p in full}
    commands = {
        p: float(full[p].total_commands_processed - start[p].total_commands_processed) for p in full
    }
    result["cluster"] = {
        "masters": 3,
        "documents": documents,
        "fill_seconds": round(fill_s, 1),
        "used_memory": sum(grown.values()),
        "bytes_per_doc": round(sum(grown.values()) / documents, 1),
        "per_master_bytes_per_doc": [round(grown[p] / documents, 1) for p in sorted(grown)],
        "memory_share": _share_row({p: float(n) for p, n in grown.items()}),
        "commands_share": _share_row(commands),
    }
    log(
        f"  3 masters, {documents:,} documents: {result['cluster']['bytes_per_doc']:,.0f} "
        f"bytes/doc summed (filled in {fill_s:.0f} s); memory shares within "
        f"{result['cluster']['memory_share']['max_deviation']:.1%} of a third, commands within "
        f"{result['cluster']['commands_share']['max_deviation']:.1%}"
    )
    # One server with the cluster's shards, then with its own default (one shard).
    own = settings.replace(index_shards=None)
    for name, chosen in (("standalone", settings), ("standalone_one_shard", own)):
        with redis_server(binary) as url:
            client = redis.Redis.from_url(url)
            empty_one = memory.used_memory(client)
            fill_s = _fill(partial(redis.Redis.from_url, url), corpus, size, chosen)
            grown_one = memory.used_memory(client) - empty_one
            documents = memory.documents(client, NAMESPACE)
        result[name] = {
            "documents": documents,
            "fill_seconds": round(fill_s, 1),
            "used_memory": grown_one,
            "bytes_per_doc": round(grown_one / documents, 1),
        }
        log(
            f"  {name}, {documents:,} documents: {result[name]['bytes_per_doc']:,.0f} "
            f"bytes/doc (filled in {fill_s:.0f} s)"
        )
    result["ratio"] = round(
        result["cluster"]["bytes_per_doc"] / result["standalone"]["bytes_per_doc"], 3
    )
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


# -- write: this tree against the one before the rewrite ------------------------------------

_WRITE_CHILD = """
import gc, json, os, sys, time
from pathlib import Path
import redis
import dedup
from dedup.pipeline import signature
from dedup.index.store import Store
from dedup.settings import Settings
from bench import corpus as corpus_, synthetic

url, corpus_path, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
corpus = corpus_.load(Path(corpus_path))
shards = os.environ.get("DEDUP_INDEX_SHARDS")  # set for this tree only
near = os.environ.get("DEDUP_NEAR_PARAGRAPHS")  # as the workers read it, for both trees
chosen = {"index_shards": int(shards)} if shards else {}
if near:
    chosen["near_paragraphs"] = near.strip().lower() in ("1", "true", "yes", "on")
settings = Settings(namespace="bench", **chosen)
analyses = [synthetic.analysis(corpus, i, settings) for i in range(count)]
# A worker holds one batch; these hold thousands, which the garbage collector would walk
# again and again while a write's own small objects come and go: held out of its reach, as
# a worker holds what it keeps from its start (gc.freeze in workers/jobs.py).
gc.freeze()
store = Store(redis.Redis.from_url(url), settings)
store.check_settings()
start = time.perf_counter()
for k in range(0, count, batch):
    store.index(analyses[k : k + batch])
seconds = time.perf_counter() - start
print(json.dumps({
    "dedup": dedup.__file__, "kernel": signature.KERNEL, "documents": count, "batch": batch,
    "seconds": seconds, "docs_per_s": count / seconds,
}))
"""
"""Run with one tree first on ``PYTHONPATH``: the same lines against either code base."""

_WORKERS_CHILD = """
import json, sys
from pathlib import Path
import dedup
from bench import throughput
from dedup.pipeline import signature

url, docs_path, processes, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
docs = json.loads(Path(docs_path).read_text())
found = throughput.end_to_end(url, docs, processes, "bulk" if batch > 1 else "single", batch)
print(json.dumps({
    "dedup": dedup.__file__, "kernel": signature.KERNEL, "documents": len(docs),
    "batch": batch, "processes": processes, "seconds": found["seconds"],
    "docs_per_s": found["rate"],
}))
"""
"""Real workers of one tree (``dedup worker``, RQ) on bulk jobs of real corpus documents,
from the first submit until every report is stored: the service's throughput as its users
see it, analysis included (the same harness, ``bench.throughput.end_to_end``, in both)."""


def _build_kernel(folder: Path) -> None:
    """The old tree's own compiled MinHash kernel, built from its source beside this tree's
    with the same compiler flags (a kernel's functions change with its tree: this tree's
    cannot stand in). Without a compiler the old tree runs its numpy path, as it reports."""
    source = folder / "dedup" / "pipeline" / "_minhash.c"
    target = source.with_name("_minhash" + str(sysconfig.get_config_var("EXT_SUFFIX")))
    if not source.exists() or target.exists():
        return
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return
    include = sysconfig.get_paths()["include"]
    command = [compiler, "-O3", "-shared", "-fPIC", f"-I{include}", str(source), "-o", str(target)]
    subprocess.run(command, check=False, capture_output=True)


@contextmanager
def old_tree(path: Path | None, commit: str) -> Iterator[Path]:
    """The code of ``commit`` (``git archive`` into a temporary folder unless ``path`` is one
    already), with its own compiled MinHash kernel built (:func:`_build_kernel`)."""
    made = path is None
    folder = path or Path(tempfile.mkdtemp(prefix=f"dedup-{commit}-"))
    try:
        if made:
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
        _build_kernel(folder)
        yield folder
    finally:
        if made:
            shutil.rmtree(folder, ignore_errors=True)


def _write_once(
    tree: Path, binary: str, child: str, *args: Any, shards: int | None = None
) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("DEDUP_INDEX_SHARDS", None)
    if shards is not None:  # the index's shards, for this tree
        env["DEDUP_INDEX_SHARDS"] = str(shards)
    with redis_server(binary) as url:
        result = subprocess.run(
            [sys.executable, "-c", child, url, *map(str, args)],
            env=env,
            cwd=tempfile.gettempdir(),  # not this tree: sys.path[0] is the working directory
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"write run in {tree} failed:\n{result.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if not Path(found["dedup"]).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"imported {found['dedup']}, not the dedup of {tree}")
    return found


def analysis_cost(corpus: corpus_.Corpus, count: int) -> dict[str, Any]:
    """Milliseconds of ``analyse`` per real-text corpus document (what a worker does first)."""
    settings = Settings()
    docs = list(corpus_.documents(corpus, 0, count))
    times = []
    for doc in docs:
        start = time.perf_counter()
        analyse(from_payload(doc, settings.max_document_bytes), settings)
        times.append(time.perf_counter() - start)
    return {
        "documents": len(docs),
        "mean_ms": round(statistics.fmean(times) * 1000, 3),
        "median_ms": round(median(times) * 1000, 3),
    }


def write_compare(
    corpus: corpus_.Corpus,
    corpus_path: Path,
    binary: str,
    tree: Path,
    commit: str,
    docs: int,
    single_docs: int,
    worker_docs: int,
    repeat: int,
    batch: int,
    log: Log,
) -> dict[str, Any]:
    """``Store.index`` docs/s of this tree and of ``tree`` (``commit``), alternately, and
    the docs/s of two real workers of each on real documents, in bulk jobs and one per job.

    This tree runs with its default shards on one server (one), and in the one-document
    modes also with the 128 of a cluster (the ``*_128`` modes, against the old tree again),
    to tell what the shards cost from what the write's steps cost."""
    trees = {"old": tree, "new": CODE["dir"]}
    modes: dict[str, tuple[int, int, int | None]] = {
        "bulk": (docs, batch, None),
        "single": (single_docs, 1, None),
        "single_128": (single_docs, 1, CLUSTER_SHARDS),
        "workers": (worker_docs, batch, None),
        "workers_single": (single_docs, 1, None),
        "workers_single_128": (single_docs, 1, CLUSTER_SHARDS),
    }
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {m: {"old": [], "new": []} for m in modes}
    payloads = Path(tempfile.mkdtemp(prefix="dedup-bench-docs-")) / "docs.json"
    payloads.write_text(json.dumps(list(corpus_.documents(corpus, 0, worker_docs))))
    singles = payloads.with_name("singles.json")
    singles.write_text(json.dumps(list(corpus_.documents(corpus, 0, single_docs))))
    for rep in range(repeat):
        for mode, (count, size, shards) in modes.items():
            for name, folder in trees.items():
                mine = shards if name == "new" else None
                if mode.startswith("workers"):
                    docs_file = payloads if size > 1 else singles
                    found = _write_once(
                        folder, binary, _WORKERS_CHILD, docs_file, 2, size, shards=mine
                    )
                else:
                    found = _write_once(
                        folder, binary, _WRITE_CHILD, corpus_path, count, size, shards=mine
                    )
                raw[mode][name].append(found)
                log(
                    f"  [{rep + 1}/{repeat}] {mode:6s} {name}: {found['docs_per_s']:8,.0f} docs/s "
                    f"({found['kernel']} kernel, {found['dedup']})"
                )
    shutil.rmtree(payloads.parent, ignore_errors=True)
    cost = analysis_cost(corpus, 300)
    result: dict[str, Any] = {
        "old_commit": commit,
        "repeat": repeat,
        "near_paragraphs": os.environ.get("DEDUP_NEAR_PARAGRAPHS", EACH_DEFAULT),
        "analysis": cost,
        "imported": {name: raw["bulk"][name][0]["dedup"] for name in trees},
        "kernels": {name: raw["bulk"][name][0]["kernel"] for name in trees},
    }
    for mode, (count, size, shards) in modes.items():
        rates = {name: [r["docs_per_s"] for r in raw[mode][name]] for name in trees}
        old, new = median(rates["old"]), median(rates["new"])
        row: dict[str, Any] = {
            "documents": count,
            "batch": size,
            "old_docs_per_s": round(old, 1),
            "new_docs_per_s": round(new, 1),
            "old_rates": [round(r, 1) for r in rates["old"]],
            "new_rates": [round(r, 1) for r in rates["new"]],
            "ratio": round(new / old, 3),
            "shards": shards,
        }
        result[mode] = row
        if mode.startswith("workers"):  # measured end to end: the ratio is the workers' own
            log(f"  {mode}: new/old {row['ratio']:.3f} (two workers, real documents)")
            continue
        # A worker analyses, then writes: per document, analysis + write time.
        analysis_ms = cost["mean_ms"]
        old_ms, new_ms = 1000 / old, 1000 / new
        row["write_ms_per_doc"] = {"old": round(old_ms, 3), "new": round(new_ms, 3)}
        row["worker_ratio"] = round((analysis_ms + old_ms) / (analysis_ms + new_ms), 3)
        log(
            f"  {mode}: new/old {row['ratio']:.3f}; with {analysis_ms:.2f} ms of analysis per "
            f"document a worker goes {row['worker_ratio']:.3f} as fast"
        )
    return result


# -- queue ----------------------------------------------------------------------------------


def _small_documents(count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {
            "id": f"q{i}",
            "url": f"https://example.org/q/{i}",
            "html": f"<html><body><p>Small document number {i} for the queue.</p></body></html>",
        }


def queue_ceiling(binary: str, jobs: int, batch: int, log: Log) -> dict[str, Any]:
    """Bulk jobs in (``submit_many``) and out (no-op workers) of one Redis: rates, Redis CPU."""
    with redis_server(binary) as url:
        connection = redis.Redis.from_url(url)
        client = Client(Settings(redis_url=url, namespace=NAMESPACE, queue=NAMESPACE))
        docs = list(_small_documents(jobs * batch))
        client.queue.count  # noqa: B018 - connect before the clock starts
        before = connection.info("all")
        start = time.perf_counter()
        with mock.patch("dedup.client.JOB_FUNCTION", NOOP_FUNCTION):
            client.submit_many(docs, batch_size=batch)
        enqueue_s = time.perf_counter() - start
        queued = connection.info("all")
        queue_bytes = memory.used_memory(connection) - int(before["used_memory"])
        finished = client.queue.finished_job_registry
        with running_workers(connection, url, NAMESPACE, NAMESPACE, 2):
            ready_at, done_then = time.perf_counter(), int(finished.count)
            ready_info = connection.info("cpu")
            wait_until(lambda: int(finished.count) >= jobs, timeout=600, interval=0.02)
            drain_s = time.perf_counter() - ready_at
            drained = connection.info("all")
        failed = int(client.queue.failed_job_registry.count)
    if failed:
        raise RuntimeError(f"{failed} no-op job(s) failed")
    drained_jobs = jobs - done_then
    if drained_jobs < jobs // 2:  # workers drained most of it before RQ listed them ready
        raise RuntimeError(
            f"only {drained_jobs} of {jobs} jobs were left once the workers were ready: "
            "enqueue more (--queue-jobs) for a dequeue rate"
        )
    enqueue_cpu = (redis_cpu(queued) - redis_cpu(before)) / jobs
    dequeue_cpu = (redis_cpu(drained) - redis_cpu(ready_info)) / max(1, drained_jobs)
    result = {
        "jobs": jobs,
        "batch": batch,
        "enqueue_jobs_per_s": round(jobs / enqueue_s, 1),
        "enqueue_docs_per_s": round(jobs * batch / enqueue_s, 1),
        "enqueue_redis_cpu_us_per_job": round(enqueue_cpu * 1e6, 1),
        "queued_bytes_per_job": round(queue_bytes / jobs),
        "dequeue_jobs": drained_jobs,
        "dequeue_jobs_per_s_2_workers": round(drained_jobs / drain_s, 1),
        "dequeue_redis_cpu_us_per_job": round(dequeue_cpu * 1e6, 1),
        "redis_ceiling_jobs_per_s": round(1 / (enqueue_cpu + dequeue_cpu), 1),
    }
    result["redis_ceiling_docs_per_s"] = round(result["redis_ceiling_jobs_per_s"] * batch)
    log(
        f"  enqueue {result['enqueue_jobs_per_s']:,.0f} jobs/s, no-op dequeue (2 workers) "
        f"{result['dequeue_jobs_per_s_2_workers']:,.0f} jobs/s; Redis CPU "
        f"{result['enqueue_redis_cpu_us_per_job']:.0f} + "
        f"{result['dequeue_redis_cpu_us_per_job']:.0f} µs/job: a ceiling of "
        f"{result['redis_ceiling_jobs_per_s']:,.0f} jobs/s"
    )
    return result


# -- the section ----------------------------------------------------------------------------


def run(
    corpus: corpus_.Corpus, corpus_path: Path, binary: str, options: dict[str, Any], log: Log
) -> dict[str, Any]:
    """The chosen parts (``options["parts"]``) with their sizes; results by part."""
    results: dict[str, Any] = {"binary": binary, "server": server_version(binary)}
    folder = Path(tempfile.mkdtemp(prefix="dedup-bench-cluster-"))
    parts = options["parts"]
    settings = Settings(namespace=NAMESPACE, index_shards=options["shards"])
    try:
        if "shards" in parts:
            log(f"cluster/shards: {options['docs']:,} documents on {options['masters']} masters")
            started = time.perf_counter()
            results["shards"] = shards(
                corpus, options["docs"], options["masters"], binary, BATCH, folder, log, settings
            )
            results["shards"]["seconds"] = round(time.perf_counter() - started, 1)
        if "memory" in parts:
            log(f"cluster/memory: {options['memory_docs']:,} documents, 3 masters vs one server")
            results["memory"] = memory_compare(
                corpus, options["memory_docs"], binary, folder, log, settings
            )
        if "write" in parts:
            log(f"cluster/write: Store.index against {options['old_commit']}")
            started = time.perf_counter()
            with old_tree(options["old_tree"], options["old_commit"]) as tree:
                results["write"] = write_compare(
                    corpus,
                    corpus_path,
                    binary,
                    tree,
                    options["old_commit"],
                    options["write_docs"],
                    options["single_docs"],
                    options["worker_docs"],
                    options["repeat"],
                    BATCH,
                    log,
                )
            results["write"]["seconds"] = round(time.perf_counter() - started, 1)
        if "queue" in parts:
            log(f"cluster/queue: {options['queue_jobs']} bulk jobs of {BATCH} documents")
            results["queue"] = queue_ceiling(binary, options["queue_jobs"], BATCH, log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def markdown(results: dict[str, Any]) -> list[str]:
    """The section's tables, for summary.md."""
    lines = ["", "## Cluster", ""]
    if "shards" in results:
        s = results["shards"]
        lines += [
            f"Redis per document, {s['documents']:,} documents in batches of {s['batch']}, "
            f"{s.get('shards', 1024):,} shards:",
            "",
            "| masters | CPU µs/doc per master | CPU µs/doc total | commands/doc total "
            "| CPU shares | commands shares | memory shares | worst share vs 1/N | docs/s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, key in (("standalone", "standalone"), ("one shard", "standalone_one_shard")):
            if key in s:
                one = s[key]
                lines.append(
                    f"| {name} | - | {one['total']['cpu_us_per_doc']:.0f} "
                    f"| {one['total']['commands_per_doc']:.1f} | - | - | - | - "
                    f"| {one['docs_per_s']:,.0f} |"
                )
        for r in s["runs"]:
            kinds = ("cpu_share", "commands_share", "memory_share")
            worst = max(r[k]["max_deviation"] for k in kinds)
            per = " / ".join(f"{m['cpu_us_per_doc']:.0f}" for m in r["per_master"])
            shares = [" / ".join(f"{x:.3f}" for x in r[k]["shares"]) for k in kinds]
            lines.append(
                f"| {r['masters']} | {per} | {r['total']['cpu_us_per_doc']:.0f} "
                f"| {r['total']['commands_per_doc']:.1f} | {' | '.join(shares)} "
                f"| {worst:.1%} | {r['docs_per_s']:,.0f} |"
            )
    if "memory" in results:
        m = results["memory"]
        per = " / ".join(f"{x:,.0f}" for x in m["cluster"]["per_master_bytes_per_doc"])
        lines += [
            "",
            f"Memory at {m['size']:,} documents ({m.get('shards', 1024):,} shards): 3 masters "
            f"{m['cluster']['bytes_per_doc']:,.0f} "
            f"bytes/doc summed ({per} per master), one server "
            f"{m['standalone']['bytes_per_doc']:,.0f} (ratio {m['ratio']:.3f}), one server with "
            f"one shard {m.get('standalone_one_shard', {}).get('bytes_per_doc', float('nan')):,.0f}"
            f"; on the "
            f"masters, memory within {m['cluster']['memory_share']['max_deviation']:.1%} of a "
            f"third, commands within "
            f"{m['cluster'].get('commands_share', {}).get('max_deviation', float('nan')):.1%}; "
            f"{m['seconds']:.0f} s in all",
        ]
    if "write" in results:
        w = results["write"]
        lines += [
            "",
            f"Store.index on one server, this tree vs {w['old_commit']} (median of {w['repeat']}; "
            f"analysis {w['analysis']['mean_ms']:.2f} ms/doc; near_paragraphs: "
            f"{w.get('near_paragraphs', EACH_DEFAULT)}):",
            "",
            "| batch | docs | old docs/s | new docs/s | new/old | worker new/old |",
            "|---|---|---|---|---|---|",
        ]
        for mode in ("bulk", "single", "single_128"):
            if mode in w:
                r = w[mode]
                lines.append(
                    f"| {r['batch']}{_shards_note(r)} | {r['documents']:,} "
                    f"| {r['old_docs_per_s']:,.0f} | {r['new_docs_per_s']:,.0f} "
                    f"| {r['ratio']:.3f} | {r['worker_ratio']:.3f} |"
                )
        for mode in ("workers", "workers_single", "workers_single_128"):
            if mode in w:
                r = w[mode]
                lines += [
                    "",
                    f"Two real workers, jobs of {r['batch']} real document(s) "
                    f"({r['documents']:,}){_shards_note(r)}, first submit to last report: old "
                    f"{r['old_docs_per_s']:,.0f} docs/s, new {r['new_docs_per_s']:,.0f} docs/s, "
                    f"new/old {r['ratio']:.3f}",
                ]
    if "queue" in results:
        q = results["queue"]
        lines += [
            "",
            f"Queue, {q['jobs']} jobs of {q['batch']}: enqueue "
            f"{q['enqueue_jobs_per_s']:,.0f} jobs/s, no-op dequeue with 2 workers "
            f"{q['dequeue_jobs_per_s_2_workers']:,.0f} jobs/s; Redis CPU "
            f"{q['enqueue_redis_cpu_us_per_job']:.0f} µs in + "
            f"{q['dequeue_redis_cpu_us_per_job']:.0f} µs out per job: ceiling "
            f"{q['redis_ceiling_jobs_per_s']:,.0f} jobs/s "
            f"({q['redis_ceiling_docs_per_s']:,} docs/s)",
        ]
    return [*lines, ""]


def _shards_note(row: dict[str, Any]) -> str:
    """How a write row's shards differ from the default, for a table."""
    return f" ({row['shards']} shards)" if row.get("shards") else ""


def add_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The section's options (``prefix`` keeps them apart among ``python -m bench``'s)."""
    p = prefix
    parser.add_argument(
        f"--{p}parts", type=names("parts", PARTS), default=list(PARTS), help=f"of {PARTS}"
    )
    parser.add_argument(
        f"--{p}docs", type=int, default=20_000, help="documents per master count (shards)"
    )
    parser.add_argument(
        f"--{p}shards",
        type=int,
        default=CLUSTER_SHARDS,
        help="index_shards of the shards and memory parts (on the server as on the clusters)",
    )
    parser.add_argument(
        f"--{p}masters", type=numbers("master counts", 1), default=[1, 2, 3], help="e.g. 1,2,3"
    )
    parser.add_argument(
        f"--{p}memory-docs", type=int, default=100_000, help="documents of the memory part"
    )
    parser.add_argument(
        f"--{p}write-docs", type=int, default=10_000, help="documents per bulk write run"
    )
    parser.add_argument(
        f"--{p}single-docs", type=int, default=1000, help="documents per one-per-batch run"
    )
    parser.add_argument(
        f"--{p}worker-docs", type=int, default=4000, help="documents per two-worker run"
    )
    parser.add_argument(f"--{p}old-commit", default=OLD_COMMIT, help="code to compare against")
    parser.add_argument(
        f"--{p}old-tree",
        type=Path,
        default=None,
        help="a checkout of --old-commit (default: git archive into a temporary folder)",
    )
    parser.add_argument(f"--{p}queue-jobs", type=int, default=300, help="bulk jobs to enqueue")


def options_from(args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """The options of :func:`run` from parsed arguments."""
    p = prefix.replace("-", "_")
    names = (
        "parts",
        "docs",
        "shards",
        "masters",
        "memory_docs",
        "write_docs",
        "single_docs",
        "worker_docs",
    )
    options = {name: getattr(args, p + name) for name in names}
    options.update(
        old_commit=getattr(args, p + "old_commit"),
        old_tree=getattr(args, p + "old_tree"),
        queue_jobs=getattr(args, p + "queue_jobs"),
        repeat=args.repeat,
    )
    return options


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.cluster``: this section alone; JSON on stdout, files in --out."""
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--redis-server", default=None, help="redis-server binary to run")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--repeat", type=int, default=3, help="alternations of the write part")
    add_options(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    corpus = corpus_.load_or_say(args.corpus)
    if corpus is None:
        return 2
    binary = args.redis_server or default_binary()
    out = args.out or REPO / "bench" / "results" / datetime.now().strftime("%Y%m%d-%H%M%S-cluster")
    out.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    results = {
        "machine": machine(server_version(binary)),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "cluster": run(corpus, args.corpus, binary, options_from(args), log),
    }
    results["cluster"]["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(results, indent=1, default=str)
    (out / "results.json").write_text(text)
    (out / "summary.md").write_text("\n".join(markdown(results["cluster"])))
    print(text)
    log(f"results: {out}/results.json, {out}/summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
