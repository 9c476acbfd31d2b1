"""What a write costs while other writers' versions are in flight (``python -m bench.inflight``).

Every writer announces its versions in the shards of its documents, and on one server an index
has one shard: all writers announce in the same place. Each of their versions waits there as
an intent (its record, its writer, when) until its commit. This measures ``Store.index`` on a
fresh server while the intents of other writers' batches are kept in the index's shards, as
many as N workers each writing a batch of 200 would keep, against the same writes with none
(the baseline, measured in the same run): the time and Redis CPU a document costs, and the
bytes the announcing round trips bring back. A write that read every writer's intents would
cost more with every worker added.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from bench import corpus as corpus_
from bench import synthetic
from bench.measure import median, redis_cpu
from bench.redisproc import default_binary, redis_server
from dedup.index import layout, records
from dedup.index.store import Store
from dedup.pipeline.analysis import Analysis
from dedup.settings import Settings

BATCH = 200
"""Documents a bulk job writes, and so a writer keeps in flight."""
WORKERS = (8, 32)
"""Other workers writing bulk jobs at the same time, by default."""


def _fill(client: redis.Redis, store: Store, analyses: Sequence[Analysis], count: int) -> int:
    """Keep ``count`` intents of other writers in the index's shards, each holding the record
    of a synthetic document, as fresh as a write in progress; returns their bytes."""
    keys = store.keys
    shards = keys.shards.count
    size = 0
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        analysis = analyses[n % len(analyses)]
        signature = analysis.document_signature()
        assert signature is not None  # synthetic documents have signed paragraphs
        record = records.Record(
            doc_id=f"other{n}",
            url=analysis.document.url,
            paragraphs=len(analysis.paragraphs),
            indexed_at=time.time(),
            content=n,
            signature=layout.reduce_signature(signature, store.wide),
            fingerprints=[layout.paragraph_key(fp) for fp in analysis.fingerprints],
            doubled_body=False,
            extra={},
        )
        intent = records.Intent(records.WRITING, f"worker{n // BATCH}", time.time(), record=record)
        packed = records.pack_intent(intent)
        size += len(packed)
        shard = n % shards
        serial = (10_000_000 + n) * shards + shard
        pipe.hset(keys.intents(shard), str(serial), packed)
    pipe.execute()
    return size


def _run(
    binary: str, settings: Settings, analyses: Sequence[Analysis], others: int, batch: int
) -> dict[str, Any]:
    """Index ``analyses`` in batches of ``batch`` on a fresh server holding ``others``
    intents of other writers."""
    with redis_server(binary) as url:
        client = redis.Redis.from_url(url)
        store = Store(client, settings)
        store.check_settings()
        kept = _fill(client, store, analyses, others)
        client.config_resetstat()
        before = client.info("all")
        start = time.perf_counter()
        for k in range(0, len(analyses), batch):
            store.index(analyses[k : k + batch])
        seconds = time.perf_counter() - start
        after = client.info("all")
    docs = len(analyses)
    cpu = redis_cpu(after) - redis_cpu(before)
    out = int(after["total_net_output_bytes"]) - int(before["total_net_output_bytes"])
    return {
        "others": others,
        "others_bytes": kept,
        "batch": batch,
        "documents": docs,
        "write_ms_per_doc": round(seconds / docs * 1e3, 3),
        "redis_cpu_us_per_doc": round(cpu / docs * 1e6, 1),
        "answered_bytes_per_doc": round(out / docs),
    }


def measure(
    corpus: corpus_.Corpus,
    workers: Sequence[int],
    docs: int,
    single_docs: int,
    repeat: int,
    binary: str,
    settings: Settings,
) -> dict[str, Any]:
    """Per batch size and number of other workers, the medians of ``repeat`` runs, each
    alternating with the baseline (no other writer), and their ratios to it."""
    found: dict[str, Any] = {}
    for batch, count in ((BATCH, docs), (1, single_docs)):
        analyses = [synthetic.analysis(corpus, i, settings) for i in range(count)]
        runs: dict[int, list[dict[str, Any]]] = {0: [], **{w: [] for w in workers}}
        for _ in range(repeat):
            for w in runs:
                runs[w].append(_run(binary, settings, analyses, w * BATCH, batch))
        rows = []
        base: dict[str, float] = {}
        for w, results in runs.items():
            row: dict[str, Any] = {"other_workers": w, "others": w * BATCH}
            for name in ("write_ms_per_doc", "redis_cpu_us_per_doc", "answered_bytes_per_doc"):
                row[name] = median([r[name] for r in results])
                if w == 0:
                    base[name] = row[name]
                else:
                    row[f"{name}_ratio"] = round(row[name] / base[name], 3) if base[name] else None
            rows.append(row)
            print(json.dumps({"batch": batch, **row}), file=sys.stderr)
        found["bulk" if batch > 1 else "single"] = {"documents": count, "rows": rows}
    return found


def markdown(found: dict[str, Any]) -> list[str]:
    """The summary's lines: per batch size, each count of other writers against none."""
    lines = [
        "",
        "## Writes while other writers' batches are in flight",
        "",
        "| batch | other workers (intents) | write ms/doc | ratio | Redis CPU µs/doc | ratio "
        "| bytes answered/doc |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, part in found.items():
        batch = BATCH if name == "bulk" else 1
        for row in part["rows"]:
            lines.append(
                f"| {batch} | {row['other_workers']} ({row['others']:,}) "
                f"| {row['write_ms_per_doc']:.3f} | {row.get('write_ms_per_doc_ratio', 1.0)} "
                f"| {row['redis_cpu_us_per_doc']:,.0f} "
                f"| {row.get('redis_cpu_us_per_doc_ratio', 1.0)} "
                f"| {row['answered_bytes_per_doc']:,.0f} |"
            )
    return lines


def add_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """This measurement's options (``prefix``-ed in ``make bench``)."""
    parser.add_argument(f"--{prefix}docs", type=int, default=4000, help="documents in bulk")
    parser.add_argument(
        f"--{prefix}single-docs", type=int, default=600, help="documents written alone"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inflight", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    parser.add_argument("--redis-server", default=None, help="redis-server binary to run")
    parser.add_argument("--workers", default="8,32", help="other workers in flight, e.g. 8,32")
    add_options(parser)
    parser.add_argument("--repeat", type=int, default=3, help="alternations")
    parser.add_argument("--out", type=Path, default=None, help="results.json here")
    args = parser.parse_args(argv)
    corpus = corpus_.load_or_say(args.corpus)
    if corpus is None:
        raise SystemExit(2)
    found = measure(
        corpus,
        [int(w) for w in args.workers.split(",")],
        args.docs,
        args.single_docs,
        args.repeat,
        args.redis_server or default_binary(),
        Settings(),
    )
    text = json.dumps(found, indent=1)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(text)
    print(text)
    print("\n".join(markdown(found)))


if __name__ == "__main__":
    main()
