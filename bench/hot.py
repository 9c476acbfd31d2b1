"""One page copied thousands of times (``python -m bench.hot``, the ``hot`` section of
``python -m bench``): what readers and writers of it pay, and what every other client sees.

A page scraped under many URLs puts one serial per copy into each of its entries (its LSH
bands, its content, its paragraphs), so every entry of that page is held by every copy.
This indexes ``copies`` copies of one page and ``near`` near copies (the page with a few
words changed), each under its own id and URL, through real ``dedup worker --burst``
processes (two, taking jobs of 200 documents queued by ``Client.submit_many``, as the
throughput section does), on one server (queue and index together) and on a cluster of 3
masters (the index there, the queue on a server of its own). Then, phase by phase:

* **index**: the workers, from the first job taken until the queue is empty;
* **report**: ``Store.report`` of random copies; **groups**: the ``dedup groups --json``
  command, and whether one group holds every copy;
* **replace**: ``Store.index`` of a new version (the page with other words changed) of a
  random copy, analysed beforehand; **delete**: ``Store.delete`` of a random copy.

The timed phases give p50 and p99 of ``--samples`` calls, and apart the phase's first call,
which is the benchmark's store's first of its kind: it also opens the store's connections
or learns what a process keeps (the shards' depths, the entries held in overflow sets).

In every phase, on every master (:mod:`bench.watch`): the slowest command of the slow log
(threshold 1 ms) and how many took over 10 ms, with their scripts and keys; the ``BUSY``
answers and the longest wait of a client sending ``PING`` every 50 ms; how long the
masters' main threads ran on a core and waited in the run queue for one (Linux's
schedstat): the slow log counts a command's wall time, waits for a core included. Each phase has a
wall-clock budget; a phase past it is reported "over budget" and, where a script that has
written holds a server, the servers are killed and the phases after it are not run.

The code measured is the ``dedup`` importable here: its tree is what the workers and the
command run too, so ``PYTHONPATH=TREE python -m bench.hot`` measures another commit's.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

import dedup
from bench.cluster import local_cluster
from bench.measure import REPO, latency_summary, machine, names, numbers
from bench.redisproc import default_binary, redis_server, server_version
from bench.watch import Budget, Connect, Watch, timed
from bench.workerproc import CODE, dedup_command, stop, worker_env
from dedup.client import Client
from dedup.errors import DedupError
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import from_payload
from dedup.servers.connection import index_client
from dedup.settings import Settings

NAMESPACE = "hot"
BATCH = 200
"""Documents per job, as bulk submissions queue them."""
PAGE = REPO / "examples" / "000_25903e5ddf5549c1.txt"
"""The seed page of the examples (the demo's ``seed``)."""
TARGETS = ("server", "cluster")
PHASES = ("index", "report", "groups", "replace", "delete")
CLUSTER_NODE_TIMEOUT_MS = 15_000
"""Redis's default: a master held by a script longer than this is taken for failed."""
Log = Callable[[str], None]
Masters = dict[str, tuple[Connect, int]]


# -- documents ------------------------------------------------------------------------------


def edited(text: str, rng: random.Random, edits: int) -> str:
    """The page with ``edits`` of its plain words replaced by other words of the page."""
    words = text.split(" ")
    plain = [k for k, word in enumerate(words) if re.fullmatch(r"[a-z]{3,}", word)]
    for k in rng.sample(plain, min(edits, len(plain))):
        words[k] = words[rng.choice(plain)]
    return " ".join(words)


def documents(text: str, copies: int, near: int, edits: int) -> list[dict[str, Any]]:
    """``copies`` copies of the page and ``near`` near copies spread among them, each under
    an id and a URL of its own."""
    rng = random.Random(copies * 7919 + near)
    docs = [
        {"id": f"copy-{k}", "url": f"https://site{k % 97}.example.com/news/{k}", "html": text}
        for k in range(copies)
    ]
    total = copies + near
    for k in range(near):
        page = {
            "id": f"near-{k}",
            "url": f"https://mirror{k % 31}.example.org/story/{k}",
            "html": edited(text, rng, edits),
        }
        docs.insert(k * total // near, page)
    return docs


# -- where the index lives ------------------------------------------------------------------


def code_dir() -> Path:
    """The tree the workers and commands import dedup from: this repository's run copy
    (:func:`bench.workerproc.freeze_code`), or the tree of another dedup imported here."""
    tree = Path(dedup.__file__).resolve().parent.parent
    return CODE["dir"] if tree == REPO else tree


def _commit(tree: Path) -> str:
    """The last commit of the tree that changed the code measured (not the benchmarks)."""
    found = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h", "--", "dedup", "workers"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or "unknown"


def _env(settings: Settings) -> dict[str, str]:
    """The environment of a ``dedup`` command on this queue and index, with the code measured."""
    env = worker_env(settings.effective_queue_url or "", NAMESPACE, NAMESPACE)
    env["PYTHONPATH"] = str(code_dir())
    if settings.index_url:
        env["DEDUP_INDEX_URL"] = settings.index_url
    return env


@contextmanager
def _on_server(binary: str, _folder: Path) -> Iterator[tuple[Settings, Masters]]:
    """One server holding the queue and the index, as a user's first setup does."""
    with redis_server(binary) as url:

        def connect(timeout: float | None) -> redis.Redis:
            return redis.Redis.from_url(url, socket_timeout=timeout)

        with connect(10) as client:
            pid = int(client.info("server")["process_id"])
        yield (
            Settings(redis_url=url, namespace=NAMESPACE, queue=NAMESPACE),
            {"server": (connect, pid)},
        )


@contextmanager
def _on_cluster(binary: str, folder: Path) -> Iterator[tuple[Settings, Masters]]:
    """The index on 3 masters, the queue on a server of its own."""
    with (
        redis_server(binary) as queue_url,
        local_cluster(folder, 3, binary, CLUSTER_NODE_TIMEOUT_MS) as cluster,
    ):
        masters: Masters = {}
        for port, pid in cluster.pids.items():

            def connect(timeout: float | None, port: int = port) -> redis.Redis:
                return cluster.node(port, socket_timeout=timeout, decode_responses=False)

            masters[f"master {port}"] = (connect, pid)
        settings = Settings(
            redis_url=queue_url, index_url=cluster.url, namespace=NAMESPACE, queue=NAMESPACE
        )
        yield settings, masters


# -- phases ---------------------------------------------------------------------------------


def _index(
    settings: Settings, docs: list[dict[str, Any]], processes: int, budget: Budget
) -> dict[str, Any]:
    """Queue the documents, then ``dedup worker --burst`` until the queue is empty."""
    client = Client(settings)
    start = time.perf_counter()
    client.submit_many(docs, batch_size=BATCH)
    found: dict[str, Any] = {"submit_seconds": round(time.perf_counter() - start, 2)}
    env = _env(settings)
    command = [*dedup_command(), "worker", "--burst", "--processes", str(processes)]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=code_dir(),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        try:
            code: int | None = process.wait(timeout=max(0.0, budget.left()))
        except subprocess.TimeoutExpired:
            code = None
            budget.expire()
        finally:
            stop(process, patience=5)
        seconds = time.perf_counter() - start
        if code:
            log.seek(0)
            found["worker_error"] = log.read().decode(errors="replace").strip()[-500:]
    found.update(worker_exit=code, seconds=round(seconds, 2))
    if code == 0:
        found["docs_per_s"] = round(len(docs) / seconds, 1)
        found["failed_jobs"] = int(client.queue.failed_job_registry.count)
    return found


def _groups(settings: Settings, docs: list[dict[str, Any]], budget: Budget) -> dict[str, Any]:
    """``dedup groups --json`` as a user runs it: the time, and the group of the copies."""
    env = _env(settings)
    start = time.perf_counter()
    process = subprocess.Popen(
        [*dedup_command(), "groups", "--json"],
        cwd=code_dir(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=max(0.0, budget.left()))
    except subprocess.TimeoutExpired:
        budget.expire()
        stop(process, patience=0)
        return {"finished": False}
    seconds = time.perf_counter() - start
    if process.returncode:
        return {"finished": False, "exit": process.returncode, "error": err.decode()[-500:]}
    groups: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines() if line.strip()]
    members = max(({m["doc_id"] for m in g["members"]} for g in groups), key=len, default=set())
    everyone = {d["id"] for d in docs}
    return {
        "finished": True,
        "seconds": round(seconds, 2),
        "groups": len(groups),
        "in_groups": sum(len(g["members"]) for g in groups),
        "largest": len(members),
        "copies_in_largest": sum(d.startswith("copy-") for d in members),
        "near_in_largest": sum(d.startswith("near-") for d in members),
        "one_group_holds_every_copy": len(groups) == 1 and members >= everyone,
    }


def _samples(ids: list[str], operation: Callable[[str], object], budget: Budget) -> dict[str, Any]:
    """p50 and p99 of ``operation`` on these ids but the first, as many as the budget
    allows. The first is reported apart (``first_ms``): it is the phase's first call of the
    benchmark's store, which also opens its connections to each master, reads every shard's
    depths or learns which entries have overflow sets, once for the life of a process."""
    seconds, short = timed(ids, operation, budget)
    found: dict[str, Any] = latency_summary(seconds[1:])
    if seconds:
        found["first_ms"] = round(seconds[0] * 1000, 3)
    if short:
        found["short"] = short
    return found


def measure(
    settings: Settings,
    masters: Masters,
    text: str,
    copies: int,
    near: int,
    options: dict[str, Any],
    log: Log,
) -> dict[str, Any]:
    """Index the copies on the index ``settings`` name, then time each phase."""
    docs = documents(text, copies, near, options["edits"])
    rng = random.Random(copies)
    count = options["samples"] + 1  # the first of each phase is reported apart
    picked = rng.sample([f"copy-{k}" for k in range(copies)], min(copies, 3 * count))
    reported, replaced, deleted = picked[:count], picked[count : 2 * count], picked[2 * count :]
    new_versions = {}  # analysed before the clock starts
    for doc_id in replaced:
        page = {"id": doc_id, "url": f"https://example.net/{doc_id}", "html": text}
        page["html"] = edited(text, rng, options["edits"])
        new_versions[doc_id] = analyse(from_payload(page, settings.max_document_bytes), settings)
    store = Store(index_client(settings), settings)
    # the documents and analyses above are this benchmark's, not the store's: a server
    # freezes what it made at start-up likewise (`dedup serve`), and a full pass of the
    # cyclic collector then scans what the store made, not them
    gc.collect()
    gc.freeze()
    budget_s = options["budget"]
    phases: dict[str, Callable[[Budget], dict[str, Any]]] = {
        "index": lambda b: _index(settings, docs, options["workers"], b),
        "report": lambda b: _samples(reported, store.report, b),
        "groups": lambda b: _groups(settings, docs, b),
        "replace": lambda b: _samples(replaced, lambda d: store.index([new_versions[d]]), b),
        "delete": lambda b: _samples(deleted, lambda d: store.delete([d]), b),
    }
    found: dict[str, Any] = {"copies": copies, "near": near, "phases": {}}
    watch = Watch(masters, options["slowlog_us"])
    stopped: str | None = None
    with watch.running():
        for name, body in phases.items():
            if stopped:
                found["phases"][name] = {"not_run": f"servers killed at the budget of {stopped}"}
                continue
            watch.begin()
            stop_at_budget = watch.kill if name == "index" else watch.unstick
            seconds = options["index_budget"] or budget_s if name == "index" else budget_s
            with Budget(seconds, stop_at_budget) as budget:
                try:
                    row = body(budget)
                except (redis.RedisError, DedupError, OSError):
                    if not budget.expired:
                        raise
                    row = {}
            row["phase_seconds"] = round(budget.elapsed(), 2)
            if budget.expired:
                row["over_budget"] = f"over budget ({budget.elapsed():.0f} s; {budget.action})"
            row["redis"] = watch.end()
            found["phases"][name] = row
            if not watch.alive:
                stopped = name
            log(f"  {name}: {_line(row)}")
    if stopped is None:
        found["index"] = {k: v for k, v in store.stats().items() if k != "paragraphs"}
    store.client.close()
    return found


def _line(row: dict[str, Any]) -> str:
    """One phase in a line of progress."""
    r = row["redis"]
    parts = [f"{row['phase_seconds']} s"]
    if "p99_ms" in row:
        parts.append(f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms ({row['samples']})")
        parts.append(f"first {row.get('first_ms')} ms")
    parts.append(f"slowest command {r['slowest_ms']} ms, {r['over_10ms']} over 10 ms")
    parts.append(f"BUSY {r['busy']}, longest stall {r['longest_stall_ms']} ms")
    for note in ("short", "over_budget", "worker_error"):
        if note in row:
            parts.append(str(row[note]))
    return "; ".join(parts)


def run(binary: str, options: dict[str, Any], log: Log) -> dict[str, Any]:
    """Every size on every target chosen; results by target and size."""
    text = Path(options["page"]).read_text(encoding="utf-8")
    results: dict[str, Any] = {
        "page": str(options["page"]),
        "dedup": dedup.__file__,
        "dedup_commit": _commit(Path(dedup.__file__).resolve().parent.parent),
        "budget_s": options["budget"],
        "index_budget_s": options["index_budget"] or options["budget"],
        "samples": options["samples"],
        "slowlog_us": options["slowlog_us"],
        "workers": options["workers"],
        "runs": [],
    }
    places = {"server": _on_server, "cluster": _on_cluster}
    for target in options["on"]:
        for copies, near in zip(options["copies"], options["near"], strict=True):
            log(f"hot: {copies:,} copies and {near:,} near copies on the {target}")
            folder = Path(tempfile.mkdtemp(prefix="dedup-bench-hot-"))
            try:
                with places[target](binary, folder) as (settings, masters):
                    row = measure(settings, masters, text, copies, near, options, log)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            results["runs"].append({"target": target, **row})
    return results


# -- output ---------------------------------------------------------------------------------


def _cell(row: dict[str, Any], phase: str) -> str:
    if "not_run" in row:
        return "not run"
    if "over_budget" in row:
        return str(row["over_budget"])
    if phase == "index":
        return f"{row['seconds']:,.1f} s ({row.get('docs_per_s', 0):,.0f} docs/s)"
    if phase == "groups":
        if not row.get("finished"):
            return "did not finish"
        holds = "yes" if row.get("one_group_holds_every_copy") else "no"
        largest = (
            f"the largest {row['copies_in_largest']:,} copies + {row['near_in_largest']:,} near"
        )
        return f"{row['seconds']:,.1f} s; {row['groups']} group(s), {largest}; all in one: {holds}"
    text = f"p50 {row['p50_ms']:,.1f} / p99 {row['p99_ms']:,.1f} ms ({row['samples']})"
    if "first_ms" in row:
        text += f"; first {row['first_ms']:,.1f} ms"
    return text + (f", {row['short']}" if "short" in row else "")


def _slowest(redis_: dict[str, Any]) -> str:
    top = redis_["slowest"][:1]
    if not top:
        return "-"
    entry = top[0]
    what = entry.get("script", entry["command"])
    return f"{entry['ms']:,.1f} ({what})"


def markdown(results: dict[str, Any]) -> list[str]:
    """The section's table, for summary.md."""
    lines = [
        "",
        f"## Hot pages (dedup at {results['dedup_commit']}; budget {results['budget_s']:.0f} s "
        f"a phase, {results.get('index_budget_s', results['budget_s']):.0f} s to index)",
        "",
        "| where | copies + near | phase | time or latency | slowest command ms (script) "
        "| commands > 10 ms | BUSY | longest stall ms | Redis on a core / waiting for one, ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run_ in results["runs"]:
        for phase, row in run_["phases"].items():
            r = row.get("redis")
            tail = "| - | - | - | - | - |"
            if r:
                tail = f"| {_slowest(r)} | {r['over_10ms']:,} | {r['busy']:,} "
                tail += f"| {r['longest_stall_ms']:,.0f} "
                tail += (
                    f"| {r.get('on_core_ms', 0):,.0f} / {r.get('waiting_for_core_ms', 0):,.0f} |"
                )
            lines.append(
                f"| {run_['target']} | {run_['copies']:,} + {run_['near']:,} | {phase} "
                f"| {_cell(row, phase)} {tail}"
            )
    return [*lines, ""]


def add_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The section's options (``prefix`` keeps them apart among ``python -m bench``'s)."""
    p = prefix
    parser.add_argument(
        f"--{p}copies", type=numbers("copies", 2), default=[10_000], help="e.g. 500,1000,2000"
    )
    parser.add_argument(
        f"--{p}near",
        type=numbers("near copies", 0),
        default=None,
        help="near copies for each size of --copies (default: a tenth of each)",
    )
    parser.add_argument(f"--{p}on", type=names("targets", TARGETS), default=list(TARGETS))
    parser.add_argument(f"--{p}budget", type=float, default=120.0, help="seconds per phase")
    parser.add_argument(
        f"--{p}index-budget", type=float, default=None, help="seconds to index (default: --budget)"
    )
    parser.add_argument(f"--{p}samples", type=int, default=50, help="copies per timed phase")
    parser.add_argument(f"--{p}edits", type=int, default=3, help="words changed in a near copy")
    parser.add_argument(f"--{p}workers", type=int, default=2, help="worker processes")
    parser.add_argument(f"--{p}slowlog-us", type=int, default=1000, help="slow log threshold")
    parser.add_argument(f"--{p}page", type=Path, default=PAGE, help="the page to copy")


def options_from(args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """The options of :func:`run` from parsed arguments."""
    p = prefix.replace("-", "_")
    options = {
        name: getattr(args, p + name)
        for name in ("copies", "near", "on", "budget", "samples", "edits", "workers", "page")
    }
    options["slowlog_us"] = getattr(args, p + "slowlog_us")
    options["index_budget"] = getattr(args, p + "index_budget")
    if options["near"] is None:
        options["near"] = [c // 10 for c in options["copies"]]
    if len(options["near"]) != len(options["copies"]):
        raise SystemExit(f"--{p}near needs one count for each size of --{p}copies")
    return options


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.hot``: this section alone; JSON on stdout, files in --out."""
    parser = argparse.ArgumentParser(prog="python -m bench.hot", description=__doc__)
    parser.add_argument("--redis-server", default=None, help="redis-server binary to run")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    add_options(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    binary = args.redis_server or default_binary()
    out = args.out or REPO / "bench" / "results" / datetime.now().strftime("%Y%m%d-%H%M%S-hot")
    out.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    results = {
        "machine": machine(server_version(binary)),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "hot": run(binary, options_from(args), log),
    }
    text = json.dumps(results, indent=1, default=str)
    (out / "results.json").write_text(text)
    (out / "summary.md").write_text("\n".join(markdown(results["hot"])))
    print("\n".join(markdown(results["hot"])))
    log(f"results: {out}/results.json, {out}/summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
