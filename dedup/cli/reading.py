"""Commands that read the index: ``report``, ``list`` and ``stats``.

With ``--json`` they print the typed models of :mod:`dedup.report` as they are (the contract
of docs/CLI.md); without, :mod:`dedup.cli.render` draws them for a terminal.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from dedup.cli import render
from dedup.cli.context import pass_settings
from dedup.cli.durations import since_option
from dedup.cli.thresholds import threshold_option, with_threshold
from dedup.errors import DedupError, InputError, NotFoundError
from dedup.index.keys import FLAGS
from dedup.settings import Settings

if TYPE_CHECKING:
    from dedup.report import Report, Stats


def show_reports(reports: list[Report], as_json: bool) -> None:
    """Reports as JSON lines, or as panels for people."""
    if as_json:
        for report in reports:
            click.echo(json.dumps(report, ensure_ascii=False))
        return
    out = render.console()
    for report in reports:
        out.print(render.report(report))


@click.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=0,
    metavar="SECONDS",
    help="Wait up to SECONDS for each document just submitted to be indexed.",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="List at most N exact and N near duplicates, best first (the totals count all).",
)
@threshold_option
@pass_settings
def report(
    settings: Settings,
    ids: tuple[str, ...],
    as_json: bool,
    wait: float,
    limit: int | None,
    threshold: float | None,
) -> None:
    """Show the report of documents, with the duplicates known now."""
    from dedup.cli.context import index_reads
    from dedup.index.reads import Reads

    reads = index_reads(settings)
    if threshold is not None:
        settings = with_threshold(settings, threshold, reads.lsh)
    read: Callable[[str], Report] = functools.partial(
        Reads(reads.client, settings).report, limit=limit
    )
    if wait:
        from dedup.client import Client

        client = Client(settings)
        read = functools.partial(client.report, wait=wait, limit=limit)
    missing = []
    for doc_id in ids:
        try:
            show_reports([read(doc_id)], as_json)
        except DedupError as exc:
            if not isinstance(exc, InputError) and exc.exit_code != NotFoundError.exit_code:
                raise
            missing.append(str(exc))
    for message in missing:
        render.error(message)
    if missing:
        sys.exit(NotFoundError.exit_code)


@click.command(name="list")
@click.option("--flag", type=click.Choice(FLAGS), help="Only documents with this flag.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option(
    "--since",
    metavar="AGE",
    callback=since_option,
    help="Only documents indexed in the last AGE (30m, 1h, 2d).",
)
@threshold_option
@pass_settings
def list_documents(
    settings: Settings,
    flag: str | None,
    as_json: bool,
    limit: int,
    since: float | None,
    threshold: float | None,
) -> None:
    """List documents, newest first."""
    from dedup.cli.context import index_reads
    from dedup.index.reads import Reads

    reads = index_reads(settings)
    if threshold is None:
        rows = reads.list_documents(flag, limit, since)
    else:
        from dedup.index.matching import listed_at

        indexed = settings.near_duplicate_threshold
        at = Reads(reads.client, with_threshold(settings, threshold, reads.lsh))
        rows = listed_at(at, flag, limit, since, indexed_threshold=indexed)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
    else:
        render.console().print(render.listing(rows))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_settings
def stats(settings: Settings, as_json: bool) -> None:
    """Documents, paragraphs, flags, queue depth and failed jobs."""
    from rq import Worker
    from rq.registry import FailedJobRegistry

    from dedup.cli.context import index_reads
    from dedup.queue.queues import make_queue
    from dedup.servers.connection import display_url, location, queue_client

    counts = index_reads(settings).stats()
    queue = make_queue(settings, queue_client(settings))
    data: Stats = {
        **counts,
        "queued": queue.count,
        "failed": FailedJobRegistry(queue=queue).count,
        "workers": Worker.count(queue=queue),
        "redis": display_url(settings),
        "queue_redis": location(settings, "queue"),
        "index_redis": location(settings, "index"),
    }
    if as_json:
        click.echo(json.dumps(data))
    else:
        render.console().print(render.stats(data))
