"""A scale model of the index: memory and Redis CPU per document at sizes this machine cannot
fill, from an index 2^k times smaller whose hashes hold what the large one's would.

Entry hashes split as they fill (:class:`dedup.index.splits.Depth`), so a hash holds about
:data:`dedup.index.splits.LOAD` fields at any size; what grows with the index is the depth,
and with it how few bits a field keeps (a family's precision less its shard's and bucket's
bits). An index of ``N * 2^k`` documents has ``k`` more bits of depth than one of ``N``: the
model is an index of ``N`` documents whose families, document ids included, have ``k`` bits
less precision (fields ``k`` bits narrower, as deep down as the large index's). Records,
flags and counters cost the same per document at any size. So the model's bytes per document
are the large index's, and a real fill of the same size checks it (``--shift 0`` beside the
others).

Each model runs in a process of its own, on a server of its own, filled with synthetic
analyses (:mod:`bench.synthetic`) through :meth:`dedup.index.store.Store.index` in batches of
200::

    python -m bench.scale --corpus /work/shared/corpus --model 100000:0 --model 12500:3
    python -m bench.scale --corpus /work/shared/corpus --target 10000000 --target 1000000000

``--target T`` models ``T`` documents from about 150,000 real ones; ``--model N:k`` fills ``N``
documents with shift ``k`` (models ``N * 2^k``); ``--masters 3`` fills a local cluster of 3
masters (the index's 128 shards over them) instead of one server, its memory and CPU summed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FILL = 150_000
"""Documents a model of ``--target`` is filled with, at most."""

_CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
import redis
from bench import corpus as corpus_, memory, synthetic
from bench.cluster import local_cluster
from bench.redisproc import redis_server
from dedup.index import layout
from dedup.index.store import Store
from dedup.settings import Settings

docs, shift, near, corpus_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
masters = int(sys.argv[5])
# The model's families: k bits less precision (every reference to these objects sees the
# change, in this process only).
for family in layout.FAMILIES:
    object.__setattr__(family, "precision", family.precision - shift)
corpus = corpus_.load(Path(corpus_path))
settings = Settings(namespace="scale", near_paragraphs=near)


def servers(client):
    # the masters' own connections (one, for a server alone)
    if masters == 1:
        return [client]
    return [client.get_redis_connection(node) for node in client.get_primaries()]


def measure(client, store):
    nodes = servers(client)
    base = sum(memory.used_memory(n) for n in nodes)
    cpu0 = [n.info("cpu") for n in nodes]
    start = time.perf_counter()
    for at in range(0, docs, 200):
        batch = range(at, min(docs, at + 200))
        store.index([synthetic.analysis(corpus, i, settings) for i in batch])
    seconds = time.perf_counter() - start
    used = sum(
        n.info("cpu")[k] - c[k]
        for n, c in zip(nodes, cpu0)
        for k in ("used_cpu_sys", "used_cpu_user")
    )
    found = {
        "docs": docs,
        "shift": shift,
        "models": docs << shift,
        "near_paragraphs": near,
        "masters": masters,
        "bytes_per_doc": (sum(memory.used_memory(n) for n in nodes) - base) / docs,
        "redis_cpu_us_per_doc": 1e6 * used / docs,
        "keys": sum(n.dbsize() for n in nodes),
        "fill_seconds": seconds,
    }
    if masters == 1:
        split = memory.breakdown(client, "scale")
        found["families"] = {k: v["bytes_per_doc"] for k, v in split["rows"].items()}
    print(json.dumps(found))


if masters == 1:
    with redis_server("redis-server") as url:
        client = redis.Redis.from_url(url)
        measure(client, Store(client, settings))
else:
    with tempfile.TemporaryDirectory(prefix="dedup-scale-") as folder:
        with local_cluster(Path(folder), masters, "redis-server") as cluster:
            client = cluster.client()
            measure(client, Store(client, settings))
"""


def model(docs: int, shift: int, near: bool, corpus: Path, masters: int = 1) -> dict[str, Any]:
    """Fill one model in a process of its own, on one server or a cluster of ``masters``
    (memory, CPU and keys summed over them); what it measured."""
    root = Path(__file__).resolve().parent.parent
    args = [str(docs), str(shift), "1" if near else "0", str(corpus), str(masters)]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"error: the model {docs}:{shift} failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def for_target(target: int) -> tuple[int, int]:
    """The documents and shift of a model of ``target`` documents (at most :data:`FILL`)."""
    shift = 0
    while target >> shift > FILL:
        shift += 1
    return target >> shift, shift


def markdown(rows: list[dict[str, Any]]) -> str:
    """The models as a table."""
    lines = [
        "| models | filled | shift | bytes per document | Redis CPU µs per document | keys |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['models']:,} | {r['docs']:,} | {r['shift']} | {r['bytes_per_doc']:,.0f} "
            f"| {r['redis_cpu_us_per_doc']:,.0f} | {r['keys']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--model", action="append", default=[], help="N:k, N documents, shift k")
    parser.add_argument("--target", action="append", type=int, default=[], help="documents")
    parser.add_argument("--near", action="store_true", help="with near_paragraphs on")
    parser.add_argument(
        "--masters", type=int, default=1, help="a local cluster of this many masters (1: a server)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    chosen = [tuple(int(x) for x in m.split(":")) for m in args.model]
    chosen += [for_target(t) for t in args.target]
    rows = []
    for docs, shift in chosen:
        started = time.monotonic()
        rows.append(model(docs, shift, args.near, args.corpus, args.masters))
        print(
            f"{docs:,} documents, shift {shift}: {rows[-1]['bytes_per_doc']:,.0f} bytes "
            f"per document ({time.monotonic() - started:.0f} s)",
            file=sys.stderr,
        )
    print(markdown(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
