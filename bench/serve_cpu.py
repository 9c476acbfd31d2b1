"""``python -m bench.serve_cpu``: the CPU a ``dedup serve`` process spends per one-document
``POST /v1/documents``, and the jobs it makes of them.

A real server on a Redis of its own and no workers: ``--connections`` threads post corpus
documents one per request, kept alive, as ``bench.gathering`` does; the server's CPU time is
read from ``/proc/<pid>/task/*/stat`` before and after (Linux only), per thread: the event
loop's, and the gatherer's that queues the jobs; the posting threads' own CPU (the scraper's
side: the JSON and ``http.client``) too. The end-to-end effect is
``bench.gathering``'s to measure; this says where the server's part goes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis

from bench import corpus as corpus_
from bench.gathering import poster
from bench.redisproc import default_binary, redis_server

NAMESPACE = "servecpu"
WARM_UP = 100
"""Requests posted before the measurement: imports, connections, first batches."""


def _thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user and system) of each thread of a process."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        found[task.name] = (int(fields[11]) + int(fields[12])) / tick
    return found


def run(corpus: Path, count: int, connections: int) -> dict[str, Any]:
    """Post ``count`` documents (after a warm-up); the server's CPU per request."""
    from tests.web_server import running_server

    docs = list(corpus_.documents(corpus_.load(corpus), 0, count + WARM_UP))
    with redis_server(default_binary()) as url:
        env = {"DEDUP_QUEUE": NAMESPACE}
        with running_server(url, NAMESPACE, env=env) as server:
            post = poster(server.url, server.token)
            with ThreadPoolExecutor(connections) as pool:
                list(pool.map(post, docs[:WARM_UP]))
            jobs_before = redis.Redis.from_url(url).llen(f"rq:queue:{NAMESPACE}")
            before = _thread_seconds(server.process.pid)
            started, posting = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(connections) as pool:
                list(pool.map(post, docs[WARM_UP:]))
            seconds = time.perf_counter() - started
            posting = time.process_time() - posting
            after = _thread_seconds(server.process.pid)
            jobs = redis.Redis.from_url(url).llen(f"rq:queue:{NAMESPACE}") - jobs_before
    spent = sorted((after[t] - before.get(t, 0.0) for t in after), reverse=True)
    return {
        "requests": count,
        "connections": connections,
        "requests_per_second": round(count / seconds, 1),
        "server_ms_per_request": round(sum(spent) * 1000 / count, 3),
        "busiest_threads_ms_per_request": [round(s * 1000 / count, 3) for s in spent[:2]],
        "poster_ms_per_request": round(posting * 1000 / count, 3),
        "jobs": jobs,
        "documents_per_job": round(count / max(jobs, 1), 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run and print the results as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.serve_cpu", description=__doc__)
    parser.add_argument("corpus", type=Path, help="corpus folder with truth/<source>/<stem>.txt")
    parser.add_argument("--requests", type=int, default=2000, help="documents posted")
    parser.add_argument("--connections", type=int, default=16, help="requests in flight")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.corpus, args.requests, args.connections), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
