"""Where one worker spends its time: a pyinstrument profile of a real RQ worker.

A ``SimpleWorker`` runs in this process (prepared like ``dedup worker`` prepares it) on a
queue filled beforehand, under pyinstrument. The full profiles are saved as HTML and text;
the summary groups time by pipeline stage: the dedup module that was running, or, when a
Redis round trip was under way, whether dedup's store or RQ's bookkeeping asked for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from bench import corpus as corpus_
from bench import throughput
from dedup.client import Client
from dedup.queue.queues import JOB_FUNCTION, PayloadJob
from dedup.servers.connection import connect
from dedup.settings import Settings


def _stage(path: list[str]) -> str:
    """The stage a sample belongs to, from its stack (outermost first) of file paths."""
    redis_call = False
    for file in reversed(path):
        if "/redis/" in file:
            redis_call = True
        elif "/dedup/" in file or "/workers/" in file:
            module = file.rsplit("/", 2)[-2] + "." + Path(file).stem
            return f"Redis round trips ({module})" if redis_call else module
        elif "/rq/" in file:
            return "Redis round trips (rq)" if redis_call else "rq"
    return "Redis round trips (other)" if redis_call else "other"


def summarise(root: Any, top: int = 15) -> dict[str, Any]:
    """Self time by stage and by function, in seconds and shares of the total."""
    stages: defaultdict[str, float] = defaultdict(float)
    functions: defaultdict[str, float] = defaultdict(float)
    total = root.time

    def walk(frame: Any, path: list[str]) -> None:
        if frame.is_synthetic_leaf:  # "[self]" time, already in its parent's total_self_time
            return
        here = [*path, frame.file_path or ""]
        if frame.total_self_time:
            stages[_stage(here)] += frame.total_self_time
            name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
            functions[name] += frame.total_self_time
        for child in frame.children:
            walk(child, here)

    walk(root, [])
    return {
        "seconds": round(total, 3),
        "stages": {
            k: {"seconds": round(v, 3), "share": round(v / total, 3)}
            for k, v in sorted(stages.items(), key=lambda kv: -kv[1])
        },
        "functions": {
            k: {"seconds": round(v, 3), "share": round(v / total, 3)}
            for k, v in sorted(functions.items(), key=lambda kv: -kv[1])[:top]
        },
    }


def profile_worker(
    url: str, docs: list[dict[str, Any]], mode: str, batch_size: int, out: Path
) -> dict[str, Any]:
    """Queue ``docs`` (bulk, one per job, or no-op jobs), then profile one worker draining them.

    The text profiles of one-document and no-op jobs show RQ's and redis-py's frames too:
    that is where their time goes.
    """
    from pyinstrument import Profiler
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from workers.jobs import prepare

    settings = Settings(
        redis_url=url,
        namespace=throughput.NAMESPACE,
        queue=throughput.NAMESPACE,
        submit_delay=0.0,  # one document per job in the single and no-op modes
    )
    connect(url).flushall()
    client = Client(settings)
    if mode == "bulk":
        client.submit_many(docs, batch_size=batch_size)
    else:
        function = throughput.NOOP_FUNCTION if mode == "noop" else JOB_FUNCTION
        with mock.patch("dedup.client.JOB_FUNCTION", function):
            for doc in docs:
                client.submit(doc["html"], doc_id=doc["id"], url=doc["url"], fmt="html")
    ctx = prepare(settings)
    worker = SimpleWorker(
        [client.queue], connection=ctx.queue, serializer=JSONSerializer, job_class=PayloadJob
    )
    connection = ctx.queue
    connection.config_resetstat()
    profiler = Profiler(interval=0.001)
    profiler.start()
    worker.work(burst=True, logging_level="WARNING")
    session = profiler.stop()
    commands = connection.info("commandstats")
    (out / f"profile-{mode}.html").write_text(profiler.output_html())
    (out / f"profile-{mode}.txt").write_text(
        profiler.output_text(unicode=True, color=False, show_all=mode != "bulk")
    )
    root = session.root_frame()
    if root is None:
        raise RuntimeError("the profiler recorded nothing")
    summary = summarise(root)
    summary["documents"] = len(docs)
    summary["redis_commands_per_doc"] = round(
        sum(int(c["calls"]) for c in commands.values()) / len(docs), 1
    )
    summary["redis_commands"] = {
        name.removeprefix("cmdstat_"): round(int(c["calls"]) / len(docs), 2)
        for name, c in sorted(commands.items(), key=lambda kv: -int(kv[1]["calls"]))[:10]
    }
    script = commands.get("cmdstat_evalsha")
    if script:
        summary["lua_script_us_per_call"] = float(script["usec_per_call"])
    summary["docs_per_second_profiled"] = round(len(docs) / max(root.time, 1e-9), 1)
    return summary


def run(
    url: str,
    corpus: corpus_.Corpus,
    count: int,
    batch_size: int,
    out: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Profiles of bulk jobs, of one-document jobs and of RQ alone (no-op jobs)."""
    results = {}
    for mode, docs in (
        ("bulk", list(corpus_.documents(corpus, 0, count))),
        ("single", list(corpus_.documents(corpus, 0, count // 2))),
        ("noop", list(corpus_.documents(corpus, 0, count // 2))),
    ):
        log(f"  profiling a worker on {len(docs)} documents, {mode}")
        results[mode] = profile_worker(url, docs, mode, batch_size, out)
    return results
