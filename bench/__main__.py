"""``python -m bench`` (``make bench``): run the benchmarks and write their results.

Each section can be run alone; defaults keep the whole run under about 20 minutes on two
cores, ``--sizes 10000,100000,1000000`` adds the 1M index (about an hour more), and
``--groups-docs 1000000`` reads the groups of a 1M index (about 15 minutes more). The
``cluster`` section (:mod:`bench.cluster`, about 10 minutes) takes its options with a
``--cluster-`` prefix, e.g. ``--cluster-memory-docs 300000``. The ``hot`` section
(:mod:`bench.hot`: one page copied 10,000 times, up to ten phases of ``--hot-budget`` seconds)
runs only when named: ``--sections hot``, options with a ``--hot-`` prefix.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import cluster, groups, growth, hot, inflight, profiling, summary, throughput, web
from bench import corpus as corpus_
from bench.measure import REPO, machine, names, numbers
from bench.redisproc import default_binary, redis_server, server_version
from bench.workerproc import freeze_code
from dedup.index.layout import SERVER_SHARDS
from dedup.index.meta import signature_settings
from dedup.settings import Settings

SECTIONS = ("throughput", "growth", "profile", "groups", "web", "cluster", "inflight", "hot")
DEFAULT_SECTIONS = SECTIONS[:-1]
"""Every section but ``hot``, which takes its phases' budgets when the index is slow."""


def _sizes(text: str) -> list[int]:
    return sorted(set(numbers("sizes", 1000)(text)))


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--corpus",
        type=Path,
        default=REPO.parent / "shared" / "corpus",
        help="corpus folder with truth/<source>/<stem>.txt (default: ../shared/corpus)",
    )
    parser.add_argument("--redis-server", default=None, help="redis-server binary to run")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument(
        "--sections", type=names("sections", SECTIONS), default=list(DEFAULT_SECTIONS)
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--bulk-docs", type=int, default=1500, help="documents per bulk run")
    parser.add_argument(
        "--single-docs", type=int, default=600, help="documents per one-per-job run"
    )
    parser.add_argument("--batch-size", type=int, default=200, help="documents per bulk job")
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000])
    parser.add_argument(
        "--growth-docs", type=int, default=1000, help="documents per run at each size"
    )
    parser.add_argument("--lookups", type=int, default=1000, help="Store.report calls per size")
    parser.add_argument("--command-samples", type=int, default=20, help="`dedup report` runs")
    parser.add_argument("--check-docs", type=int, default=100, help="in-process check runs")
    parser.add_argument("--profile-docs", type=int, default=1000)
    parser.add_argument(
        "--groups-docs", type=int, default=100_000, help="documents of the groups section's index"
    )
    parser.add_argument(
        "--web-docs", type=int, default=300, help="documents per measurement of the web section"
    )
    cluster.add_options(parser, "cluster-")
    inflight.add_options(parser, "inflight-")
    hot.add_options(parser, "hot-")
    parser.add_argument("--plot", type=Path, default=None, help="PNG path of the growth plot")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="measure nothing: write summary.md (and --plot) again from a run's results.json",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.bulk_docs, args.single_docs = 1, 400, 100
        args.sizes, args.growth_docs, args.lookups = [2000, 4000], 200, 100
        args.command_samples, args.check_docs, args.profile_docs = 3, 20, 200
        args.groups_docs = 2000
        args.web_docs = 50
        args.cluster_docs, args.cluster_memory_docs, args.cluster_queue_jobs = 2000, 4000, 100
        args.cluster_write_docs, args.cluster_single_docs = 1000, 100
        args.cluster_worker_docs = 400
        args.inflight_docs, args.inflight_single_docs = 1000, 100
        args.hot_copies, args.hot_near, args.hot_samples, args.hot_budget = [300], [30], 10, 60.0
    return args


def log(message: str) -> None:
    """Progress on stderr, timestamped."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections; write results.json, summary.md and the plot."""
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.render is not None:
        return _render(args.render, args.plot)
    corpus = corpus_.load_or_say(args.corpus)
    if corpus is None:
        return 2
    binary = args.redis_server or default_binary()
    out = args.out or REPO / "bench" / "results" / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    code = freeze_code(Path(tempfile.mkdtemp(prefix="dedup-bench-code-")))
    try:
        return _run(args, corpus, binary, out)
    finally:
        shutil.rmtree(code, ignore_errors=True)


def _render(path: Path, plot: Path | None) -> int:
    """Summary and plot of an earlier run, e.g. after changing how they are presented."""
    results = json.loads(path.read_text())
    (path.parent / "summary.md").write_text(_markdown(results))
    if summary.plot(results, plot or path.parent / "growth.png"):
        log(f"plot: {plot or path.parent / 'growth.png'}")
    log(f"summary: {path.parent / 'summary.md'}")
    return 0


def _markdown(results: dict[str, Any]) -> str:
    """The run's summary, the groups section's lines last."""
    text = summary.markdown(results)
    if "groups" in results:
        text = "\n".join([text.rstrip("\n"), *groups.markdown(results["groups"]), ""])
    if "web" in results:
        text = "\n".join([text.rstrip("\n"), *web.markdown(results["web"]), ""])
    if "cluster" in results:
        text = "\n".join([text.rstrip("\n"), *cluster.markdown(results["cluster"])])
    if "inflight" in results:
        text = "\n".join([text.rstrip("\n"), *inflight.markdown(results["inflight"]), ""])
    if "hot" in results:
        text = "\n".join([text.rstrip("\n"), *hot.markdown(results["hot"])])
    return text


def _run(args: argparse.Namespace, corpus: corpus_.Corpus, binary: str, out: Path) -> int:
    """The chosen sections, one after the other, saving the results after each."""
    results: dict[str, Any] = {
        "machine": machine(server_version(binary)),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "signature_settings": signature_settings(Settings(), SERVER_SHARDS),
    }
    log(f"corpus: {len(corpus.articles)} articles from {args.corpus}; results in {out}")

    def save() -> None:
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        (out / "summary.md").write_text(_markdown(results))

    if "throughput" in args.sections:
        log("throughput: dedup end to end, RQ no-op jobs, datasketch MinHashLSH")
        bulk = list(corpus_.documents(corpus, 0, args.bulk_docs))
        single = list(corpus_.documents(corpus, 0, args.single_docs))
        with redis_server(binary) as url:
            results["throughput"] = throughput.run(
                url, bulk, single, args.repeat, args.batch_size, log
            )
        save()
    if "growth" in args.sections:
        log(f"growth: memory, latency and throughput at {args.sizes}")
        options = {
            "repeat": args.repeat,
            "growth_docs": args.growth_docs,
            "lookups": args.lookups,
            "command_samples": args.command_samples,
            "check_docs": args.check_docs,
            "batch_size": args.batch_size,
        }

        def partial(found: dict[str, Any]) -> None:
            results["growth"] = found
            save()

        results["growth"] = growth.run(binary, corpus, args.sizes, options, log, partial)
        save()
    if "profile" in args.sections:
        log("profile: one worker under pyinstrument")
        try:
            with redis_server(binary) as url:
                results["profile"] = profiling.run(
                    url, corpus, args.profile_docs, args.batch_size, out, log
                )
        except ImportError:
            log("pyinstrument is missing: pip install -e '.[bench]' (make bench does)")
        save()
    if "groups" in args.sections:
        log(f"groups: `dedup groups` over an index of {args.groups_docs:,} documents")
        results["groups"] = groups.run(binary, corpus, args.groups_docs, log)
        save()
    if "web" in args.sections:
        log(f"web: the HTTP API against the client and the CLI, {args.web_docs:,} documents")
        results["web"] = web.run(args.web_docs)
        save()
    if "cluster" in args.sections:
        log("cluster: load per shard, memory, writes against the code before the cluster index")
        started = time.perf_counter()
        options = cluster.options_from(args, "cluster-")
        results["cluster"] = cluster.run(corpus, args.corpus, binary, options, log)
        results["cluster"]["seconds"] = round(time.perf_counter() - started, 1)
        save()
    if "inflight" in args.sections:
        log("inflight: writes while other writers' batches are in flight")
        results["inflight"] = inflight.measure(
            corpus,
            inflight.WORKERS,
            args.inflight_docs,
            args.inflight_single_docs,
            args.repeat,
            binary,
            Settings(),
        )
        save()
    if "hot" in args.sections:
        log("hot: one page copied many times, on one server and on a cluster")
        results["hot"] = hot.run(binary, hot.options_from(args, "hot-"), log)
        save()
    plot_path = args.plot or out / "growth.png"
    if summary.plot(results, plot_path):
        log(f"plot: {plot_path}")
    save()
    print(_markdown(results))
    log(f"results: {out}/results.json, {out}/summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
