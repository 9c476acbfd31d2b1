"""Commands that look after the index and the queue: failed jobs, deletion, retention."""

from __future__ import annotations

import json

import click

from dedup.cli import render
from dedup.cli.context import pass_settings
from dedup.cli.durations import parse_duration
from dedup.settings import Settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@pass_settings
def failed(settings: Settings, as_json: bool, limit: int) -> None:
    """List what failed for good: jobs, and documents rejected for bad input, with reasons.

    A rejected document is listed on its own row with its reason; `dedup requeue JOB`
    sends it again (after a fix), without the documents of its batch that were indexed.
    """
    from rich.table import Table
    from rich.text import Text

    from dedup.queue.failed import failed_jobs
    from dedup.queue.queues import make_queue
    from dedup.servers.connection import queue_client

    rows = failed_jobs(make_queue(settings, queue_client(settings)), limit)
    if as_json:
        for row in rows:
            click.echo(
                json.dumps(
                    {
                        "job_id": row.job_id,
                        "reason": row.reason,
                        "failed_at": row.failed_at.isoformat() if row.failed_at else None,
                        "documents": row.documents,
                        "rejected": [{"id": i, "reason": r} for i, r in row.rejected],
                    },
                    ensure_ascii=False,
                )
            )
        return
    table = Table()
    for column in ("job", "failed at", "documents", "reason"):
        table.add_column(column)
    for row in rows:
        when = row.failed_at.strftime("%Y-%m-%d %H:%M:%S") if row.failed_at else ""
        if row.rejected:
            for doc_id, reason in row.rejected:
                table.add_row(
                    row.job_id, when, Text(render.clean(doc_id)), Text(render.clean(reason))
                )
            continue
        documents = ", ".join(row.documents[:3]) + (" …" if len(row.documents) > 3 else "")
        table.add_row(
            row.job_id, when, Text(render.clean(documents)), Text(render.clean(row.reason))
        )
    render.console().print(table)


@click.command()
@click.argument("job_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every failed job.")
@pass_settings
def requeue(settings: Settings, job_ids: tuple[str, ...], everything: bool) -> None:
    """Put failed jobs back on the queue."""
    from rq.registry import FailedJobRegistry

    from dedup.queue.failed import requeue as requeue_jobs
    from dedup.queue.queues import make_queue
    from dedup.servers.connection import queue_client

    if bool(job_ids) == everything:
        raise click.UsageError("give failed job ids, or --all")
    queue = make_queue(settings, queue_client(settings))
    ids = FailedJobRegistry(queue=queue).get_job_ids() if everything else list(job_ids)
    click.echo(f"requeued {requeue_jobs(queue, ids)} job(s)")


@click.command()
@click.argument("ids", nargs=-1, required=True)
@pass_settings
def delete(settings: Settings, ids: tuple[str, ...]) -> None:
    """Remove documents from the index: signatures, bands, paragraph counts, report."""
    from dedup.cli.context import index_store

    deleted = index_store(settings).delete(list(ids))
    click.echo(f"deleted {deleted} of {len(ids)} document(s)")


@click.command()
@click.option("--older-than", required=True, metavar="AGE", help="e.g. 30d, 12h, 90m.")
@pass_settings
def purge(settings: Settings, older_than: str) -> None:
    """Remove every document indexed longer ago than AGE."""
    from dedup.cli.context import index_store

    seconds = parse_duration(older_than)
    deleted = index_store(settings).purge(seconds)
    click.echo(f"purged {deleted} document(s) indexed more than {older_than} ago")


@click.command()
@pass_settings
def migrate(settings: Settings) -> None:
    """Bring an index made by an older dedup to the format this one reads.

    Stop the workers first. Safe to run again: a migration stopped half way is run again
    whole; an index already in this format is left as it is.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from dedup.index.migrate import migrate as migrate_index
    from dedup.servers.connection import index_client

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=render.console(stderr=True)
    ) as bar:
        task = bar.add_task("entries rewritten: 0")
        done = migrate_index(
            index_client(settings),
            settings.namespace,
            lambda n: bar.update(task, description=f"entries rewritten: {n}"),
        )
    if done.from_format == done.to_format:
        click.echo(f"namespace {settings.namespace!r} is in format {done.to_format} already")
    else:
        click.echo(
            f"migrated namespace {settings.namespace!r} from format {done.from_format} to "
            f"{done.to_format}: {done.id_entries} id entries rewritten, {done.entries} index "
            "entries moved"
        )
    if done.settings:
        needed = ", ".join(f"DEDUP_{k.upper()}={v}" for k, v in done.settings.items())
        click.echo(
            f"its writers sign documents as it was written: set {needed} for them "
            "(or index into a new namespace for the newer rules)"
        )
