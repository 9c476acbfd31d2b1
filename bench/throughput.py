"""End-to-end throughput, from the first submit until every report is stored, and its ceilings.

Three things are timed side by side on one fresh Redis per run: dedup itself (bulk jobs of
``batch_size`` documents, or one document per job), RQ with a job that does nothing (the
ceiling of one-document jobs: same client, same worker command, same JSON payloads), and
datasketch's Redis-backed ``MinHashLSH`` doing a query and an insert per document with
dedup's LSH shape (what a user would otherwise pick). Repetitions are interleaved so that a
busy moment of the machine hits every configuration alike.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from unittest import mock

import numpy as np
import redis
from datasketch import MinHash, MinHashLSH

from bench import memory
from bench.measure import median, wait_until
from bench.workerproc import running_workers
from dedup.client import Client
from dedup.pipeline import signature
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import from_payload
from dedup.servers.connection import connect
from dedup.settings import Settings

NOOP_FUNCTION = "bench.noop.noop"
NAMESPACE = "bench"
"""Namespace and queue of every benchmark store."""


def _rq_residue(connection: redis.Redis) -> int:
    """Bytes RQ still holds after a run (finished jobs keep their payload for a day)."""
    total = 0
    for key in connection.scan_iter("rq:*", count=1000):
        total += int(connection.memory_usage(key, samples=0) or 0)
    return total


def end_to_end(
    url: str,
    docs: list[dict[str, Any]],
    processes: int,
    mode: str,
    batch_size: int,
    *,
    flush: bool = True,
    post: Callable[[dict[str, Any]], None] | None = None,
    connections: int = 1,
) -> dict[str, float]:
    """Seconds from the first submit until the last report is stored (or no-op job done).

    ``mode`` is ``bulk`` (``submit_many``), ``single`` (``submit`` with ``submit_delay = 0``,
    one job per document), ``gathered`` (``submit`` as it comes, single submissions gathered
    into bulk jobs), ``noop`` (one job per document, with a job function that does nothing)
    or ``api`` (each document given to ``post``, from ``connections`` threads at once). With
    ``flush`` false the documents are added to what the store already holds (growth runs).
    """
    settings = Settings(redis_url=url, namespace=NAMESPACE, queue=NAMESPACE)
    if mode in ("single", "noop"):
        settings = settings.replace(submit_delay=0.0)
    connection = connect(url)
    if flush:
        connection.flushall()
    with running_workers(connection, url, settings.namespace, settings.queue, processes):
        client = Client(settings)
        finished = client.queue.finished_job_registry
        if mode == "noop":
            expected = int(finished.count) + len(docs)

            def done() -> bool:
                return int(finished.count) >= expected
        else:
            expected = memory.documents(connection, settings.namespace) + len(docs)

            def done() -> bool:
                return memory.documents(connection, settings.namespace) >= expected

        start = time.perf_counter()
        if mode == "bulk":
            client.submit_many(docs, batch_size=batch_size)
        elif mode in ("single", "gathered"):
            for doc in docs:
                client.submit(doc["html"], doc_id=doc["id"], url=doc["url"], fmt="html")
        elif mode == "api" and post is not None:
            with ThreadPoolExecutor(connections) as pool:
                list(pool.map(post, docs))
        else:
            # The same client code path, only the job function swapped for one that returns.
            with mock.patch("dedup.client.JOB_FUNCTION", NOOP_FUNCTION):
                for doc in docs:
                    client.submit(doc["html"], doc_id=doc["id"], url=doc["url"], fmt="html")
        wait_until(done, timeout=1800, interval=0.01)
        seconds = time.perf_counter() - start
    failed = client.queue.failed_job_registry.count
    if failed:
        raise RuntimeError(f"{failed} job(s) failed in the {mode} run")
    result = {"seconds": seconds, "rate": len(docs) / seconds}
    if flush:  # scanning for RQ's keys is cheap only in a store of this run alone
        result["rq_bytes_per_doc"] = _rq_residue(connection) / len(docs)
    return result


# -- datasketch's MinHashLSH on Redis -------------------------------------------------------

DATASKETCH_THRESHOLD = 0.5
"""The Jaccard threshold given to MinHashLSH; with ``params`` it picks no shape from it."""


def _lsh(url: str, settings: Settings) -> MinHashLSH:
    path = url.removeprefix("unix://")
    return MinHashLSH(
        threshold=DATASKETCH_THRESHOLD,
        num_perm=settings.num_perm,
        # dedup's own LSH shape (16 bands of 4 rows by default), as the comparison asks;
        # for 0.5 datasketch's optimiser picks 42 bands of 6 rows (one round trip a band)
        params=(settings.lsh_bands, settings.lsh_rows),
        storage_config={
            "type": "redis",
            "basename": b"bench",
            "redis": {"unix_socket_path": path},
        },
    )


def _lsh_worker(
    url: str,
    settings: Settings,
    items: list[tuple[str, Any]],
    go: Any,
) -> None:
    lsh = _lsh(url, settings)
    go.wait()
    for key, minhash in items:
        lsh.query(minhash)
        lsh.insert(key, minhash)


def datasketch_signatures(docs: list[dict[str, Any]], settings: Settings) -> list[Any]:
    """datasketch MinHash objects holding the same document signatures dedup computes."""
    minhashes = []
    for doc in docs:
        analysis = analyse(from_payload(doc, settings.max_document_bytes), settings)
        sig = analysis.document_signature()
        values = sig if sig is not None else np.full(settings.num_perm, 2**32 - 1)
        minhashes.append(
            MinHash(
                num_perm=settings.num_perm,
                seed=settings.seed,
                hashvalues=values,
                scheme=signature.SCHEME,
            )
        )
    return minhashes


def datasketch_lsh(
    url: str, docs: list[dict[str, Any]], minhashes: list[Any], processes: int
) -> dict[str, float]:
    """Seconds for ``query`` then ``insert`` of every document, over ``processes`` processes."""
    settings = Settings(redis_url=url)
    connect(url).flushall()
    items = [(doc["id"], minhash) for doc, minhash in zip(docs, minhashes, strict=True)]
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    children = [
        ctx.Process(target=_lsh_worker, args=(url, settings, items[k::processes], go))
        for k in range(processes)
    ]
    for child in children:
        child.start()
    time.sleep(0.5)  # let each child connect before the clock starts
    start = time.perf_counter()
    go.set()
    for child in children:
        child.join()
    seconds = time.perf_counter() - start
    if any(child.exitcode for child in children):
        raise RuntimeError("a datasketch process failed")
    return {"seconds": seconds, "rate": len(docs) / seconds}


# -- the whole comparison -------------------------------------------------------------------


def run(
    url: str,
    bulk_docs: list[dict[str, Any]],
    single_docs: list[dict[str, Any]],
    repeat: int,
    batch_size: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Every configuration ``repeat`` times, interleaved; medians and the raw runs."""
    settings = Settings(redis_url=url)
    log("  computing datasketch MinHash objects for the same documents")
    minhashes = datasketch_signatures(single_docs, settings)
    configs: list[tuple[str, Callable[[], dict[str, float]]]] = []
    for processes in (1, 2):
        configs += [
            (
                f"bulk/{processes}",
                partial(end_to_end, url, bulk_docs, processes, "bulk", batch_size),
            ),
            (
                f"single/{processes}",
                partial(end_to_end, url, single_docs, processes, "single", batch_size),
            ),
            (
                f"noop/{processes}",
                partial(end_to_end, url, single_docs, processes, "noop", batch_size),
            ),
            (
                f"datasketch/{processes}",
                partial(datasketch_lsh, url, single_docs, minhashes, processes),
            ),
        ]
    raw: dict[str, list[dict[str, float]]] = {name: [] for name, _ in configs}
    for rep in range(repeat):
        for name, measure in configs:
            result = measure()
            raw[name].append(result)
            log(f"  [{rep + 1}/{repeat}] {name:14s} {result['rate']:8.1f} docs/s")
    summary = {
        name: {
            "rate": round(median([r["rate"] for r in runs]), 1),
            "rates": [round(r["rate"], 1) for r in runs],
            **(
                {"rq_bytes_per_doc": round(median([r["rq_bytes_per_doc"] for r in runs]))}
                if "rq_bytes_per_doc" in runs[0]
                else {}
            ),
        }
        for name, runs in raw.items()
    }
    return {
        "bulk_documents": len(bulk_docs),
        "single_documents": len(single_docs),
        "batch_size": batch_size,
        "repeat": repeat,
        "configs": summary,
    }
