"""The ``dedup`` command: submit documents, run workers, read reports.

Every failure a user can cause ends as one line on stderr and a non-zero exit code; the
commands, options and JSON field names are a contract (docs/CLI.md).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, NoReturn

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
from dedup.cli.durations import since_option
from dedup.errors import DedupError, InputError
from dedup.index.keys import FLAGS
from dedup.pipeline.document import FORMATS, Document, check_id, decode, from_payload, id_for_body
from dedup.settings import Settings, load_settings


def _error(message: str) -> None:
    """One line on stderr, never wrapped, whatever the terminal width."""
    click.echo(click.style("error:", fg="red", bold=True) + " " + render.clean(message), err=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    _error(message)
    sys.exit(code)


class DedupGroup(click.Group):
    """Turns every dedup error into one line and an exit code, never a traceback."""

    lazy_commands: ClassVar[dict[str, tuple[str, str]]] = {
        "eval": ("dedup.evaluation.command", "evaluate")
    }
    """Commands whose modules are heavy to import: loaded only when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            import importlib

            module, attribute = self.lazy_commands[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DedupError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if os.environ.get("DEDUP_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} (set DEDUP_DEBUG=1 for details)", 70)


@click.group(cls=DedupGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", type=click.Path(dir_okay=False, path_type=Path), help="TOML settings file."
)
@click.option("--redis-url", help="Redis to use (default: DEDUP_REDIS_URL, else the embedded one).")
@click.option("--namespace", help="Key prefix in Redis (default: dedup).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of the embedded Redis.",
)
@click.version_option(
    package_name="dedup",
    message="%(prog)s %(version)s (MinHash arithmetic: "
    + ("compiled kernel" if importlib.util.find_spec("dedup.pipeline._minhash") else "numpy")
    + ")",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config: Path | None,
    redis_url: str | None,
    namespace: str | None,
    data_dir: Path | None,
) -> None:
    """Find duplicate content in scraped web documents.

    Documents are queued (submit), analysed by workers (worker) and read back as reports
    (report, list, stats). check analyses one document at once, without the queue.
    """
    overrides = {"redis_url": redis_url, "namespace": namespace, "data_dir": data_dir}
    try:
        ctx.obj = load_settings(config, overrides=overrides)
    except DedupError as exc:
        _fail(str(exc), exc.exit_code)


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def _read_source(path: str, settings: Settings) -> str:
    """The text of a file, or of stdin for ``-``."""
    if path == "-":
        raw = sys.stdin.buffer.read(settings.max_document_bytes + 1)
        return decode(raw, settings.max_document_bytes, "standard input")
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > settings.max_document_bytes:
            raise InputError(
                f"{path} is {size:,} bytes, over the limit of {settings.max_document_bytes:,}"
            )
        raw = file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return decode(raw, settings.max_document_bytes, path)


def _default_id(path: str, body: str) -> str:
    return id_for_body(body) if path == "-" else Path(path).stem


def _expand(paths: tuple[str, ...]) -> Iterator[str]:
    for path in paths:
        if path != "-" and Path(path).is_dir():
            yield from sorted(str(p) for p in Path(path).rglob("*") if p.is_file())
        else:
            yield path


def _jsonl(source: str) -> Iterator[tuple[int, str]]:
    handle = sys.stdin if source == "-" else open(source, encoding="utf-8", errors="strict")  # noqa: SIM115
    try:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield number, line
    except UnicodeDecodeError:
        raise InputError(f"{source} is not valid UTF-8") from None
    finally:
        if handle is not sys.stdin:
            handle.close()


@cli.command()
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
@click.pass_context
def submit(
    ctx: click.Context,
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

    settings = _settings(ctx)
    if not paths and not jsonl and not warc:
        raise click.UsageError(
            "give files to submit, - for standard input, --jsonl FILE or --warc FILE"
        )
    files = list(_expand(paths))
    if (url or doc_id) and (len(files) != 1 or jsonl or warc):
        raise click.UsageError("--url and --id apply to a single document")
    if jsonl and jsonl != "-" and not Path(jsonl).is_file():
        raise InputError(f"{jsonl}: no such file")
    readers = [WarcReader(path, settings.max_document_bytes) for path in warc]
    client = Client(settings)
    errors: list[str] = []

    def documents() -> Iterator[Document]:
        for path in files:
            try:
                body = _read_source(path, settings)
                yield Document(check_id(doc_id or _default_id(path, body)), body, url, fmt)
            except InputError as exc:
                errors.append(str(exc))
        if jsonl:
            for number, line in _jsonl(jsonl):
                try:
                    yield from_payload(json.loads(line), settings.max_document_bytes)
                except json.JSONDecodeError as exc:
                    errors.append(f"{jsonl} line {number}: not JSON ({exc.msg})")
                except InputError as exc:
                    errors.append(f"{jsonl} line {number}: {exc}")
        for reader in readers:  # web archives: the bar follows the bytes read
            for document in reader.documents():
                progress.update(task, completed=sum(r.position for r in readers))
                yield document
            errors.extend(reader.errors)

    count = 0
    with Progress(
        TextColumn("submitting"),
        BarColumn(),
        DownloadColumn() if readers else MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=render.console(stderr=True),
        transient=True,
        disable=as_json or (len(files) < 50 and not jsonl and not readers),
    ) as progress:
        total = sum(r.size for r in readers) if readers else len(files) or None
        task = progress.add_task("submit", total=total, rate="")

        def advance(n: int) -> None:
            nonlocal count
            count += n
            elapsed = progress.tasks[0].elapsed or 0.0
            rate = f"{count / elapsed:,.0f} docs/s" if elapsed > 0 else ""
            if readers:
                progress.update(task, rate=f"{count:,} docs  {rate}")
            else:
                progress.update(task, advance=n, rate=rate)

        jobs = client.submit_many(documents(), batch_size=batch_size, on_batch=advance)
    skipped = sum(r.skipped for r in readers)
    if as_json:
        result: dict[str, Any] = {"documents": count, "jobs": jobs, "rejected": errors}
        if readers:
            result["skipped"] = skipped
        click.echo(json.dumps(result))
    else:
        out = render.console()
        for error in errors:
            _error(error)
        out.print(f"queued {count} document(s) in {len(jobs)} job(s) on queue '{settings.queue}'")
        if skipped:
            out.print(f"skipped {skipped} WARC record(s) that are not HTML responses")
    if errors:
        sys.exit(InputError.exit_code)


@cli.command()
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
@click.pass_context
def worker(ctx: click.Context, burst: bool, processes: int, worker_class: str | None) -> None:
    """Run workers that analyse queued documents."""
    from workers.main import run, run_many

    settings = _settings(ctx)
    if worker_class:
        settings = settings.replace(worker_class=worker_class)
    if processes == 1:
        run(settings, burst=burst)
    elif run_many(settings, processes, burst=burst):
        _fail("a worker process exited with an error")


@cli.command()
@click.argument("path")
@click.option("--url", help="URL of the document.")
@click.option("--id", "doc_id", help="Id of the document (default: file name).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-store", is_flag=True, help="Leave the index untouched (no Redis needed).")
@click.pass_context
def check(
    ctx: click.Context,
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

    settings = _settings(ctx)
    body = _read_source(path, settings)
    document = Document(check_id(doc_id or _default_id(path, body)), body, url, fmt)
    analysis = analyse(document, settings)
    if no_store:
        data = local_report(analysis)
    else:
        from dedup.index.store import Store
        from dedup.servers.connection import redis_for

        store = Store(redis_for(settings), settings)
        store.index([analysis])
        data = store.report(document.doc_id)
    _show_reports([data], as_json)


def _show_reports(reports: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for data in reports:
            click.echo(json.dumps(data, ensure_ascii=False))
        return
    out = render.console()
    for data in reports:
        out.print(render.report(data))


@cli.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=0,
    metavar="SECONDS",
    help="Wait up to SECONDS for each document just submitted to be indexed.",
)
@click.pass_context
def report(ctx: click.Context, ids: tuple[str, ...], as_json: bool, wait: float) -> None:
    """Show the report of documents, with the duplicates known now."""
    from dedup.index.reads import Reads
    from dedup.servers.connection import redis_for

    settings = _settings(ctx)
    read: Callable[[str], dict[str, Any]] = Reads(redis_for(settings), settings).report
    if wait:
        from dedup.client import Client

        client = Client(settings)
        read = functools.partial(client.report, wait=wait)
    missing = []
    for doc_id in ids:
        try:
            _show_reports([read(doc_id)], as_json)
        except DedupError as exc:
            if not isinstance(exc, InputError) and exc.exit_code != 4:
                raise
            missing.append(str(exc))
    for message in missing:
        _error(message)
    if missing:
        sys.exit(4)


@cli.command(name="list")
@click.option("--flag", type=click.Choice(FLAGS), help="Only documents with this flag.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option(
    "--since",
    metavar="AGE",
    callback=since_option,
    help="Only documents indexed in the last AGE (30m, 1h, 2d).",
)
@click.pass_context
def list_(
    ctx: click.Context, flag: str | None, as_json: bool, limit: int, since: float | None
) -> None:
    """List documents, newest first."""
    from dedup.index.reads import Reads
    from dedup.servers.connection import redis_for

    settings = _settings(ctx)
    rows = Reads(redis_for(settings), settings).list_documents(flag, limit, since)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
    else:
        render.console().print(render.listing(rows))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Documents, paragraphs, flags, queue depth and failed jobs."""
    from rq import Worker
    from rq.registry import FailedJobRegistry

    from dedup.index.reads import Reads
    from dedup.queue.queues import make_queue
    from dedup.servers.connection import display_url, redis_for

    settings = _settings(ctx)
    connection = redis_for(settings)
    data = Reads(connection, settings).stats()
    queue = make_queue(settings, connection)
    data["queued"] = queue.count
    data["failed"] = FailedJobRegistry(queue=queue).count
    data["workers"] = Worker.count(queue=queue)
    data["redis"] = display_url(settings)
    if as_json:
        click.echo(json.dumps(data))
    else:
        render.console().print(render.stats(data))


@cli.group()
def server() -> None:
    """The embedded Redis (used when no Redis URL is configured)."""


@server.command("start")
@click.pass_context
def server_start(ctx: click.Context) -> None:
    """Start the embedded Redis of the data folder."""
    from dedup.servers.embedded import ensure_server

    settings = _settings(ctx.find_root())
    ensure_server(settings.data_dir)
    click.echo(f"embedded Redis running in {settings.data_dir}")


@server.command("stop")
@click.pass_context
def server_stop(ctx: click.Context) -> None:
    """Stop the embedded Redis (its data stays in the data folder)."""
    from dedup.servers.embedded import stop_server

    settings = _settings(ctx.find_root())
    stopped = stop_server(settings.data_dir)
    click.echo("stopped" if stopped else "not running")


def main() -> None:
    """Entry point of the ``dedup`` command."""
    cli(prog_name="dedup")


def _register_admin_commands() -> None:
    from dedup.cli.admin import register

    register(cli)


_register_admin_commands()


def _register_export_command() -> None:
    from dedup.cli.export import export

    cli.add_command(export)


_register_export_command()
