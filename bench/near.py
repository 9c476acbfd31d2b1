"""``python -m bench.near``: what ``near_paragraphs`` costs, off and on side by side in one run.

Memory: one fresh server per setting, filled with the same synthetic analyses
(:mod:`bench.synthetic`, which adds the near-copy pieces when the setting is on) through the
real :meth:`dedup.index.store.Store.index`, two processes in batches of 200; ``used_memory``
growth per document and its split by key family. Writes (``store``): ``Store.index`` alone
on real corpus text analysed beforehand with each setting. Throughput: bulk end to end with 2
workers on real corpus text. Both alternate the setting off and on on one server (flushed
before each run): the median of each and of the paired ratios.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

from bench import corpus as corpus_
from bench import memory, synthetic, throughput
from bench.measure import REPO, median
from bench.redisproc import default_binary, redis_server
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.servers.connection import connect
from dedup.settings import Settings

BATCH = 200


def _fill_part(url: str, corpus: corpus_.Corpus, count: int, part: int, near: bool) -> None:
    settings = Settings(redis_url=url, namespace=throughput.NAMESPACE, near_paragraphs=near)
    store = Store(connect(url), settings)
    for first in range(part * BATCH, count, 2 * BATCH):
        last = min(first + BATCH, count)
        store.index([synthetic.analysis(corpus, i, settings) for i in range(first, last)])


def memory_run(binary: str, corpus: corpus_.Corpus, count: int, near: bool) -> dict[str, Any]:
    """Bytes per document of ``count`` synthetic documents with the setting ``near``."""
    with redis_server(binary) as url:
        client = connect(url)
        baseline = memory.used_memory(client)
        started = time.perf_counter()
        ctx = multiprocessing.get_context("fork")
        parts = [
            ctx.Process(target=_fill_part, args=(url, corpus, count, p, near)) for p in range(2)
        ]
        for process in parts:
            process.start()
        for process in parts:
            process.join()
        if any(p.exitcode for p in parts):
            raise RuntimeError("a fill process failed")
        seconds = time.perf_counter() - started
        used = memory.used_memory(client) - baseline
        documents = memory.documents(client, throughput.NAMESPACE)
        return {
            "near_paragraphs": near,
            "documents": documents,
            "fill_seconds": round(seconds, 1),
            "used_memory": used,
            "bytes_per_doc": round(used / documents, 1),
            "families": memory.breakdown(client, throughput.NAMESPACE),
        }


def throughput_run(
    binary: str, corpus: corpus_.Corpus, docs: int, repeat: int, batch_size: int
) -> dict[str, Any]:
    """Bulk docs/s with 2 workers, the setting off then on, ``repeat`` times."""
    bulk = list(corpus_.documents(corpus, 0, docs))
    rates: dict[str, list[float]] = {"off": [], "on": []}
    with redis_server(binary) as url:
        for _ in range(repeat):
            for name in ("off", "on"):
                switch = {"DEDUP_NEAR_PARAGRAPHS": "true" if name == "on" else "false"}
                with mock.patch.dict(os.environ, switch):
                    run = throughput.end_to_end(url, bulk, 2, "bulk", batch_size)
                rates[name].append(round(run["rate"], 1))
                print(f"  bulk {name}: {run['rate']:.0f} docs/s", file=sys.stderr, flush=True)
    ratios = [on / off for off, on in zip(rates["off"], rates["on"], strict=True)]
    return {
        "documents": docs,
        "rates": rates,
        "median_off": median(rates["off"]),
        "median_on": median(rates["on"]),
        "ratios": [round(r, 3) for r in ratios],
        "median_ratio": round(median(ratios), 3),
    }


def store_run(
    binary: str, corpus: corpus_.Corpus, docs: int, repeat: int, batch_size: int
) -> dict[str, Any]:
    """``Store.index`` alone, docs/s: real corpus text analysed once per setting beforehand,
    then indexed in batches into an empty database, the setting off then on, ``repeat``
    times (the write path's cost of the pieces and the longer records, without the
    analysis)."""
    ready = {}
    for name in ("off", "on"):
        settings = Settings(namespace=throughput.NAMESPACE, near_paragraphs=name == "on")
        parsed = [
            Document(d["id"], d["html"], d["url"], "html")
            for d in corpus_.documents(corpus, 0, docs)
        ]
        ready[name] = (settings, [analyse(d, settings) for d in parsed])
    rates: dict[str, list[float]] = {"off": [], "on": []}
    with redis_server(binary) as url:
        client = connect(url)
        for _ in range(repeat):
            for name in ("off", "on"):
                settings, analyses = ready[name]
                client.flushdb()
                store = Store(client, settings.replace(redis_url=url))
                started = time.perf_counter()
                for first in range(0, docs, batch_size):
                    store.index(analyses[first : first + batch_size])
                rates[name].append(round(docs / (time.perf_counter() - started), 1))
                print(f"  Store.index {name}: {rates[name][-1]:.0f} docs/s", file=sys.stderr)
    ratios = [on / off for off, on in zip(rates["off"], rates["on"], strict=True)]
    return {
        "documents": docs,
        "rates": rates,
        "ratios": [round(r, 3) for r in ratios],
        "median_ratio": round(median(ratios), 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Run both measures and print them as JSON (also written to ``--out``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.near", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--docs", type=int, default=100_000, help="documents in the memory fill")
    parser.add_argument("--bulk-docs", type=int, default=1000, help="documents per bulk run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--sections", default="memory,store,throughput")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    corpus = corpus_.load(args.corpus)
    binary = default_binary()
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d")}
    if "memory" in args.sections:
        result["memory"] = [memory_run(binary, corpus, args.docs, near) for near in (False, True)]
        off, on = result["memory"]
        result["memory_extra_bytes_per_doc"] = round(on["bytes_per_doc"] - off["bytes_per_doc"], 1)
    if "store" in args.sections:
        result["store"] = store_run(binary, corpus, args.bulk_docs, args.repeat, args.batch_size)
    if "throughput" in args.sections:
        result["throughput"] = throughput_run(
            binary, corpus, args.bulk_docs, args.repeat, args.batch_size
        )
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
