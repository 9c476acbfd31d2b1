"""``dedup submit``: documents from files, folders, stdin, JSON lines and web archives, queued.

A bad document costs one error line, never the submission: the others are queued, then the
command exits 2. Bulk submissions show a bar (documents queued, or archive bytes read).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from dedup.cli import render
from dedup.cli.context import pass_settings
from dedup.cli.sources import default_id, expand, jsonl_lines, read_source
from dedup.errors import InputError
from dedup.pipeline.document import FORMATS, Document, check_id, from_payload
from dedup.settings import Settings

if TYPE_CHECKING:
    from dedup.integrations.warc import WarcReader
    from dedup.queue.handles import JobHandle

QUIET_BELOW = 50
"""Files submitted at once from which the bar shows (JSON lines and archives: always)."""


class Submission:
    """The documents of one submission, read while they are queued, and the ones rejected."""

    def __init__(
        self,
        settings: Settings,
        files: list[str],
        jsonl: str | None,
        readers: list[WarcReader],
        *,
        doc_id: str | None,
        url: str | None,
        fmt: str,
    ) -> None:
        self.settings = settings
        self.files = files
        self.jsonl = jsonl
        self.readers = readers
        self.doc_id = doc_id
        self.url = url
        self.fmt = fmt
        self.errors: list[str] = []
        """One line per rejected document, in the order they were read."""

    def documents(self, on_archive_read: Callable[[int], None]) -> Iterator[Document]:
        """Files, then JSON lines, then archives (``on_archive_read``: archive bytes read)."""
        yield from self._files()
        if self.jsonl:
            yield from self._json_lines(self.jsonl)
        for reader in self.readers:
            for document in reader.documents():
                on_archive_read(sum(r.position for r in self.readers))
                yield document
            self.errors.extend(reader.errors)

    @property
    def skipped(self) -> int:
        """Archive records that are not successful HTML responses."""
        return sum(r.skipped for r in self.readers)

    def _files(self) -> Iterator[Document]:
        for path in self.files:
            try:
                body = read_source(path, self.settings)
                doc_id = check_id(self.doc_id or default_id(path, body))
                yield Document(doc_id, body, self.url, self.fmt)
            except InputError as exc:
                self.errors.append(str(exc))

    def _json_lines(self, source: str) -> Iterator[Document]:
        for number, line in jsonl_lines(source):
            try:
                yield from_payload(json.loads(line), self.settings.max_document_bytes)
            except json.JSONDecodeError as exc:
                self.errors.append(f"{source} line {number}: not JSON ({exc.msg})")
            except InputError as exc:
                self.errors.append(f"{source} line {number}: {exc}")


class SubmitBar:
    """The bar of a submission: documents queued out of those given, or archive bytes read."""

    def __init__(self, progress: Progress, total: int | None, *, by_bytes: bool) -> None:
        self.progress = progress
        self.by_bytes = by_bytes
        self.task = progress.add_task("submit", total=total, rate="")
        self.queued = 0
        """Documents queued so far."""

    def read(self, position: int) -> None:
        """Archive bytes read so far."""
        self.progress.update(self.task, completed=position)

    def queue(self, count: int) -> None:
        """``count`` more documents were queued."""
        self.queued += count
        elapsed = self.progress.tasks[0].elapsed or 0.0
        rate = f"{self.queued / elapsed:,.0f} docs/s" if elapsed > 0 else ""
        if self.by_bytes:
            self.progress.update(self.task, rate=f"{self.queued:,} docs  {rate}")
        else:
            self.progress.update(self.task, advance=count, rate=rate)


def _progress(*, by_bytes: bool, disable: bool) -> Progress:
    return Progress(
        TextColumn("submitting"),
        BarColumn(),
        DownloadColumn() if by_bytes else MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=render.console(stderr=True),
        transient=True,
        disable=disable,
    )


def _show(
    settings: Settings,
    submission: Submission,
    queued: int,
    jobs: list[JobHandle],
    as_json: bool,
) -> None:
    if as_json:
        result: dict[str, Any] = {"documents": queued, "jobs": jobs, "rejected": submission.errors}
        if submission.readers:
            result["skipped"] = submission.skipped
        click.echo(json.dumps(result))
        return
    out = render.console()
    for error in submission.errors:
        render.error(error)
    out.print(f"queued {queued} document(s) in {len(jobs)} job(s) on queue '{settings.queue}'")
    if submission.skipped:
        out.print(f"skipped {submission.skipped} WARC record(s) that are not HTML responses")


@click.command()
@click.argument("paths", nargs=-1)
@click.option(
    "--jsonl", "jsonl", metavar="FILE|-", help='JSON lines: {"id"?, "url"?, "html" | "text"}.'
)
@click.option(
    "--warc",
    multiple=True,
    metavar="FILE",
    help="Web archive (.warc or .warc.gz): its HTML responses, with URL and fetch date.",
)
@click.option("--url", help="URL of the document (one document only).")
@click.option("--id", "doc_id", help="Id of the document (one document only; default: file name).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 10_000), help="Documents per job.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_settings
def submit(
    settings: Settings,
    paths: tuple[str, ...],
    jsonl: str | None,
    warc: tuple[str, ...],
    url: str | None,
    doc_id: str | None,
    fmt: str,
    batch_size: int | None,
    as_json: bool,
) -> None:
    """Queue documents (HTML or text files, folders, - for stdin, JSON lines, web archives)."""
    from dedup.client import Client
    from dedup.integrations.warc import WarcReader

    if not paths and not jsonl and not warc:
        raise click.UsageError(
            "give files to submit, - for standard input, --jsonl FILE or --warc FILE"
        )
    files = list(expand(paths))
    if (url or doc_id) and (len(files) != 1 or jsonl or warc):
        raise click.UsageError("--url and --id apply to a single document")
    if jsonl and jsonl != "-" and not Path(jsonl).is_file():
        raise InputError(f"{jsonl}: no such file")
    readers = [WarcReader(path, settings.max_document_bytes) for path in warc]
    client = Client(settings)
    submission = Submission(settings, files, jsonl, readers, doc_id=doc_id, url=url, fmt=fmt)
    quiet = as_json or (len(files) < QUIET_BELOW and not jsonl and not readers)
    total = sum(r.size for r in readers) if readers else len(files) or None
    with _progress(by_bytes=bool(readers), disable=quiet) as progress:
        bar = SubmitBar(progress, total, by_bytes=bool(readers))
        jobs = client.submit_many(
            submission.documents(bar.read), batch_size=batch_size, on_batch=bar.queue
        )
    _show(settings, submission, bar.queued, jobs, as_json)
    if submission.errors:
        sys.exit(InputError.exit_code)
