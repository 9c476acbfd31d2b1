"""``python -m bench.gathering``: documents submitted one at a time against bulk submission,
end to end.

From the first submission until every report is stored, with two workers started before the
clock (:func:`bench.throughput.end_to_end`), on a fresh Redis per run: bulk jobs
(``Client.submit_many``), single submissions through ``Client.submit`` (gathered into bulk
jobs), single submissions posted to a real ``dedup serve`` (one document per request, from
``--connections`` threads, as a scraper with that many requests in flight) and, for
comparison, one job per document (``submit_delay = 0``, as before gathering). The
configurations alternate, round after round; each rate is reported with its ratio to the
bulk rate of the same round, and the median of those ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from functools import partial
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import corpus as corpus_
from bench.measure import median
from bench.redisproc import default_binary, redis_server
from bench.throughput import NAMESPACE, end_to_end

MODES = ("bulk", "gathered", "api", "single")


def poster(url: str, token: str) -> Any:
    """A function posting one document, one kept-alive HTTP connection per thread.

    The standard library's client: on a two-core machine the scraper's side shares the
    cores with the server and the workers, and httpx spends about two milliseconds of CPU
    per request (measured), more than the server does.
    """
    local = threading.local()
    address = urlsplit(url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(doc: dict[str, Any]) -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = HTTPConnection(
                address.hostname or "", address.port, timeout=120
            )
        document = {"id": doc["id"], "url": doc["url"], "html": doc["html"]}
        connection.request("POST", "/v1/documents", json.dumps(document), headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 202:
            raise RuntimeError(f"POST answered {response.status}: {answer[:200]!r}")

    return post


def run(
    corpus: Path,
    count: int,
    repeat: int,
    batch_size: int,
    connections: int,
    workers: int,
    modes: tuple[str, ...] = MODES,
) -> dict[str, Any]:
    """Every mode ``repeat`` times, alternated; rates and ratios to bulk."""
    from tests.web_server import running_server

    docs = list(corpus_.documents(corpus_.load(corpus), 0, count))
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    with redis_server(default_binary()) as url:
        env = {"DEDUP_QUEUE": NAMESPACE}
        with running_server(url, NAMESPACE, env=env) as server:
            post = poster(server.url, server.token)
            for round_ in range(repeat):
                for mode in modes:
                    measure = partial(end_to_end, url, docs, workers, mode, batch_size)
                    result = measure(post=post, connections=connections)
                    rates[mode].append(result["rate"])
                    print(
                        f"  [{round_ + 1}/{repeat}] {mode:9s} {result['rate']:8.1f} docs/s",
                        file=sys.stderr,
                        flush=True,
                    )
    ratios = {
        mode: [round(r / b, 3) for r, b in zip(rates[mode], rates["bulk"], strict=True)]
        for mode in modes
    }
    return {
        "documents": count,
        "workers": workers,
        "connections": connections,
        "batch_size": batch_size,
        "rates": {mode: [round(r, 1) for r in values] for mode, values in rates.items()},
        "median_rate": {mode: round(median(values), 1) for mode, values in rates.items()},
        "ratio_to_bulk": ratios,
        "median_ratio_to_bulk": {mode: median(values) for mode, values in ratios.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Run and print the results as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.gathering", description=__doc__)
    parser.add_argument("corpus", type=Path, help="corpus folder with truth/<source>/<stem>.txt")
    parser.add_argument("--docs", type=int, default=1500, help="documents per run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every mode")
    parser.add_argument("--batch-size", type=int, default=200, help="documents per bulk job")
    parser.add_argument("--connections", type=int, default=16, help="API requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"comma-separated, bulk first (the ratios' baseline): {', '.join(MODES)}",
    )
    args = parser.parse_args(argv)
    modes = tuple(args.modes.split(","))
    if modes[0] != "bulk" or not set(modes) <= set(MODES):
        parser.error(f"--modes: bulk first, then any of {', '.join(MODES[1:])}")
    found = run(
        args.corpus, args.docs, args.repeat, args.batch_size, args.connections, args.workers, modes
    )
    print(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
