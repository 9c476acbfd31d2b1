"""Commands that analyse documents: ``worker`` works off the queue, ``check`` one document now."""

from __future__ import annotations

import click

from dedup.cli.context import pass_settings
from dedup.cli.reading import show_reports
from dedup.cli.sources import default_id, read_source
from dedup.errors import DedupError
from dedup.pipeline.document import FORMATS, Document, check_id
from dedup.settings import Settings


@click.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes.",
)
@click.option(
    "--worker-class",
    type=click.Choice(["simple", "fork"]),
    help="simple: no fork per job; fork: a work horse per job.",
)
@pass_settings
def worker(settings: Settings, burst: bool, processes: int, worker_class: str | None) -> None:
    """Run workers that analyse queued documents."""
    from workers.main import run, run_many

    if worker_class:
        settings = settings.replace(worker_class=worker_class)
    if processes == 1:
        run(settings, burst=burst)
    elif run_many(settings, processes, burst=burst):
        raise DedupError("a worker process exited with an error")


@click.command()
@click.argument("path")
@click.option("--url", help="URL of the document.")
@click.option("--id", "doc_id", help="Id of the document (default: file name).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-store", is_flag=True, help="Leave the index untouched (no Redis needed).")
@pass_settings
def check(
    settings: Settings,
    path: str,
    url: str | None,
    doc_id: str | None,
    fmt: str,
    as_json: bool,
    no_store: bool,
) -> None:
    """Analyse one document now, without the queue."""
    from dedup.pipeline.analysis import analyse
    from dedup.report import local_report

    body = read_source(path, settings)
    document = Document(check_id(doc_id or default_id(path, body)), body, url, fmt)
    analysis = analyse(document, settings)
    if no_store:
        report = local_report(analysis)
    else:
        from dedup.cli.context import index_store

        store = index_store(settings)
        store.index([analysis])
        report = store.report(document.doc_id)
    show_reports([report], as_json)
