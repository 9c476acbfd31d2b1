"""How throughput, latency and memory change as the index grows to 100k or 1M documents.

Each size gets its own server, filled through :meth:`dedup.index.store.Store.index` with synthetic
analyses (:mod:`bench.synthetic`) by two processes, in batches of 200 as bulk jobs write them.
Then the same measurements run on every server in turn, round after round, on new real-text
documents from the corpus, so that the machine's load weighs on every size alike.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from bench import corpus as corpus_
from bench import memory, synthetic, throughput
from bench.measure import latency_summary, median
from bench.redisproc import redis_server
from bench.workerproc import CODE, dedup_command, worker_env
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import from_payload
from dedup.queue.queues import make_queue
from dedup.servers.connection import connect
from dedup.settings import Settings

BATCH = 200
FILL_PREFIX = "syn"
_FRESH = 50_000_000  # index offset of the documents measured on top of the fill


LATENCIES = (
    "report_in_process",
    "report_command",
    "version_command",
    "lean_lookup_command",
    "check_in_process",
)
"""The latencies a growth run measures at each index size."""


def _fill_worker(
    url: str, corpus: corpus_.Corpus, start: int, stop: int, part: int, parts: int
) -> None:
    settings = Settings(redis_url=url, namespace=throughput.NAMESPACE)
    store = Store(connect(url), settings)
    for first in range(start + part * BATCH, stop, parts * BATCH):
        last = min(first + BATCH, stop)
        store.index([synthetic.analysis(corpus, i, settings) for i in range(first, last)])


def fill(
    url: str, corpus: corpus_.Corpus, target: int, log: Callable[[str], None], processes: int = 2
) -> list[tuple[int, float]]:
    """Add synthetic documents until the store holds ``target``; (size, docs/s) along the way."""
    client = connect(url)
    start = memory.documents(client, throughput.NAMESPACE)
    filled = int(client.get("bench:filled") or 0)
    if start >= target:
        return []
    ctx = multiprocessing.get_context("fork")
    count = target - start
    children = [
        ctx.Process(
            target=_fill_worker,
            args=(url, corpus, filled, filled + count, part, processes),
        )
        for part in range(processes)
    ]
    for child in children:
        child.start()
    rates: list[tuple[int, float]] = []
    last_size, last_time = start, time.perf_counter()
    while any(child.is_alive() for child in children):
        time.sleep(10)
        size, now = memory.documents(client, throughput.NAMESPACE), time.perf_counter()
        rates.append((size, (size - last_size) / (now - last_time)))
        log(f"    filled {size:,} documents ({rates[-1][1]:,.0f} docs/s)")
        last_size, last_time = size, now
    for child in children:
        child.join()
    if any(child.exitcode for child in children):
        raise RuntimeError("a fill process failed")
    client.set("bench:filled", filled + count)
    return rates


def _store_rate(url: str, corpus: corpus_.Corpus, offset: int, count: int) -> float:
    """Documents per second of ``Store.index`` alone, one process, ready analyses."""
    settings = Settings(redis_url=url, namespace=throughput.NAMESPACE)
    store = Store(connect(url), settings)
    analyses = [
        synthetic.analysis(corpus, i, settings, prefix="fresh")
        for i in range(offset, offset + count)
    ]
    start = time.perf_counter()
    for k in range(0, count, BATCH):
        store.index(analyses[k : k + BATCH])
    return count / (time.perf_counter() - start)


def _report_times(url: str, filled: int, samples: int, seed: int) -> list[float]:
    settings = Settings(redis_url=url, namespace=throughput.NAMESPACE)
    store = Store(connect(url), settings)
    rng = random.Random(seed)
    times = []
    for _ in range(samples):
        doc_id = corpus_.doc_id(rng.randrange(filled), FILL_PREFIX)
        start = time.perf_counter()
        store.report(doc_id)
        times.append(time.perf_counter() - start)
    return times


_LEAN_LOOKUP = "import sys, redis; redis.Redis.from_url(sys.argv[1]).hget(sys.argv[2], sys.argv[3])"
"""The floor of any Python command: start, import redis-py, read one document record."""


def _command_times(url: str, command: list[str], samples: int) -> list[float]:
    env = worker_env(url, throughput.NAMESPACE, throughput.NAMESPACE)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=CODE["dir"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def _check_times(url: str, docs: list[dict[str, Any]]) -> list[float]:
    """``dedup check`` in-process: analyse, index, read the report back."""
    settings = Settings(redis_url=url, namespace=throughput.NAMESPACE)
    store = Store(connect(url), settings)
    times = []
    for doc in docs:
        start = time.perf_counter()
        analysis = analyse(from_payload(doc, settings.max_document_bytes), settings)
        store.index([analysis])
        store.report(analysis.document.doc_id)
        times.append(time.perf_counter() - start)
    return times


def _forget_jobs(url: str) -> None:
    """Delete finished jobs: their payloads would count as index memory at the next size."""
    queue = make_queue(Settings(queue=throughput.NAMESPACE), connect(url))
    for job_id in queue.finished_job_registry.get_job_ids():
        job = queue.fetch_job(job_id)
        if job is not None:
            job.delete()


def memory_at(url: str, size: int, baseline: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Memory of a store just filled to ``size`` documents, in total and by key family."""
    client = connect(url)
    used = memory.used_memory(client) - baseline
    documents = memory.documents(client, throughput.NAMESPACE)
    row: dict[str, Any] = {
        "size": size,
        "documents": documents,
        "used_memory": used,
        "bytes_per_doc": round(used / documents, 1),
    }
    log(f"  {size:,}: {row['bytes_per_doc']:,.0f} bytes/document; splitting by key family")
    row["families"] = memory.breakdown(client, throughput.NAMESPACE)
    return row


def one_round(
    url: str, corpus: corpus_.Corpus, size: int, rep: int, options: dict[str, Any]
) -> dict[str, Any]:
    """One repetition of every timed measurement on the store of ``size`` documents."""
    client = connect(url)
    filled = int(client.get("bench:filled") or 0)
    repeat = options["repeat"]
    rng = random.Random(size * 100 + rep)
    doc_id = corpus_.doc_id(rng.randrange(filled), FILL_PREFIX)
    samples = max(1, options["command_samples"] // repeat)
    dedup = dedup_command()
    store = Store(client, Settings(namespace=throughput.NAMESPACE))
    serial, _ = store.resolve(doc_id)
    key = store.keys.records(serial)
    offset = _FRESH + size * 10 + rep * 100_000
    check_docs = list(
        corpus_.documents(corpus, offset, max(1, options["check_docs"] // repeat), prefix="check")
    )
    docs = list(corpus_.documents(corpus, offset + 50_000, options["growth_docs"], prefix="g"))
    e2e = throughput.end_to_end(url, docs, 2, "bulk", options["batch_size"], flush=False)
    _forget_jobs(url)
    return {
        "report_in_process": _report_times(
            url, filled, max(1, options["lookups"] // repeat), size + rep
        ),
        "report_command": _command_times(url, [*dedup, "report", doc_id, "--json"], samples),
        "version_command": _command_times(url, [*dedup, "--version"], samples),
        "lean_lookup_command": _command_times(
            url, [sys.executable, "-c", _LEAN_LOOKUP, url, key, str(serial)], samples
        ),
        "check_in_process": _check_times(url, check_docs),
        "store_index_rate": _store_rate(url, corpus, offset + 20_000, options["growth_docs"]),
        "bulk2_rate": e2e["rate"],
    }


def run(
    binary: str,
    corpus: corpus_.Corpus,
    sizes: list[int],
    options: dict[str, Any],
    log: Callable[[str], None],
    save: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One server per size, filled in turn, then every size measured round by round.

    Measuring the sizes alternately, rather than one after the other, lets a busy moment of
    the machine slow every size alike: the growth ratios compare like with like.
    """
    rows: dict[int, dict[str, Any]] = {}
    fill_rates: dict[int, list[tuple[int, float]]] = {}
    with ExitStack() as stack:
        urls: dict[int, str] = {}
        for size in sorted(sizes):
            url = stack.enter_context(redis_server(binary))
            baseline = memory.used_memory(connect(url))
            log(f"  filling a server to {size:,} documents")
            started = time.perf_counter()
            fill_rates[size] = fill(url, corpus, size, log)
            log(f"  filled in {time.perf_counter() - started:,.0f} s")
            rows[size] = memory_at(url, size, baseline, log)
            urls[size] = url
            if save is not None:
                save({"sizes": [rows[s] for s in sorted(rows)], "fill_rates": fill_rates})
        rounds: dict[int, list[dict[str, Any]]] = {size: [] for size in urls}
        for rep in range(options["repeat"]):
            for size, url in urls.items():
                try:
                    result = one_round(url, corpus, size, rep, options)
                except (RuntimeError, subprocess.CalledProcessError, TimeoutError) as exc:
                    log(f"  [{rep + 1}/{options['repeat']}] {size:>9,}: failed: {exc}")
                    rows[size].setdefault("errors", []).append(str(exc))
                    continue
                rounds[size].append(result)
                log(
                    f"  [{rep + 1}/{options['repeat']}] {size:>9,}: Store.index "
                    f"{result['store_index_rate']:,.0f} docs/s, bulk 2 workers "
                    f"{result['bulk2_rate']:,.1f} docs/s, report "
                    f"{statistics.median(result['report_in_process']) * 1000:.2f} ms"
                )
    for size, results in rounds.items():
        row = rows[size]
        if not results:
            continue
        for name in ("store_index_rate", "bulk2_rate"):
            row[name] = round(median([r[name] for r in results]), 1)
            row[f"{name}s"] = [round(r[name], 1) for r in results]
        for name in LATENCIES:
            row[name] = latency_summary([t for r in results for t in r[name]])
    return {"sizes": [rows[size] for size in sorted(rows)], "fill_rates": fill_rates}
