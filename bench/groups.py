"""``python -m bench.groups`` (and the ``groups`` section of ``python -m bench``): ``dedup
groups`` over a synthetic index, time and memory.

The index is filled as the growth runs fill it (:mod:`bench.synthetic`, two processes through
``Store.index``): 5 % of the documents are near copies (one paragraph of ~20 changed) of an
earlier one, so about a tenth of the index is in groups. Then the groups are read the way
the command reads them (the flag bitmaps, the flagged records page by page, one script per
flagged document) and the peak memory of the reading process is taken from the kernel.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import corpus as corpus_
from bench import growth, redisproc, throughput
from dedup.index.groups import Options, read_groups
from dedup.index.reads import Reads
from dedup.servers.connection import connect
from dedup.settings import Settings


def measure(url: str, size: int) -> dict[str, float]:
    """Read every group of the index at ``url``; the figures of that read."""
    settings = Settings(redis_url=url, namespace=throughput.NAMESPACE)
    reads = Reads(connect(url), settings)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    groups = members = 0
    read = [0, 0]

    def progress(done: int, total: int) -> None:
        read[:] = [done, total]

    for group in read_groups(reads, Options(settings.near_duplicate_threshold), progress=progress):
        groups += 1
        members += len(group["members"])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = reads.stats()
    return {
        "documents": size,
        "flagged": counts["flags"]["near_duplicate"] + counts["flags"]["exact_duplicate"],
        "read": read[0],
        "groups": groups,
        "members": members,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before / 1024, 1),
        "rss_peak_mb": round(peak / 1024, 1),
    }


def run(
    binary: str, corpus: corpus_.Corpus, docs: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """A fresh server filled to ``docs`` documents, and the figures of reading its groups."""
    with redisproc.redis_server(binary) as url:
        started = time.perf_counter()
        growth.fill(url, corpus, docs, log)
        filled = time.perf_counter() - started
        log(f"filled {docs:,} documents in {filled:,.0f} s; reading the groups")
        return {**measure(url, docs), "fill_seconds": round(filled, 1)}


def markdown(found: dict[str, Any]) -> list[str]:
    """The figures as lines of the run's summary."""
    return [
        "",
        f"## Duplicate groups, index of {found['documents']:,} documents",
        "",
        f"- flagged {found['flagged']:,}, read {found['read']:,}: {found['groups']:,} groups "
        f"of {found['members']:,} documents",
        f"- {found['seconds']} s; reader's peak RSS {found['rss_peak_mb']} MB "
        f"({found['rss_before_mb']} MB before the read)",
    ]


def main() -> None:
    """Fill a fresh server to ``--docs`` documents, then time ``groups``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    parser.add_argument("--redis-server", default=None)
    args = parser.parse_args()
    corpus = corpus_.load(args.corpus)
    binary = args.redis_server or redisproc.default_binary()
    print(json.dumps(run(binary, corpus, args.docs, print)))


if __name__ == "__main__":
    main()
