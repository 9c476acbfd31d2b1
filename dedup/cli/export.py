"""``dedup export``: the flagged documents, as rows a crawl can be fixed or re-run from.

A scraper acting on the reports needs, per document, why it was flagged (``flags``), where
the repeated content sits (``internal_repeats``: paragraph spans) and what it matches
(``near_duplicates``: ids with similarity), in a file it can load: JSON lines keep the
report's own structure and field names; CSV flattens them into one row per document.
Rows stream from the index page by page, so an export of any size holds one page in memory.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from dedup.cli.context import pass_settings
from dedup.cli.durations import since_option
from dedup.errors import InputError, NotFoundError
from dedup.index.keys import FLAGS
from dedup.report import EXPORTED_FIELDS, Exported, exported
from dedup.settings import Settings

if TYPE_CHECKING:
    from dedup.index.reads import Reads


def flagged_reports(store: Reads, flag: str | None, since: float | None) -> Iterator[Exported]:
    """Rows of the documents carrying ``flag`` (any flag when None), newest first."""
    for listed in store.scan_documents(flag, since=since):
        if not listed["flags"]:
            continue
        try:
            report = store.report(listed["doc_id"])
        except NotFoundError:  # deleted since it was listed
            continue
        if (flag in report["flags"]) if flag else report["flags"]:
            yield exported(report)


def _utc(seconds: float | None) -> str:
    if not seconds:
        return ""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def csv_row(row: Exported) -> list[str]:
    """One document as CSV cells, in :data:`~dedup.report.EXPORTED_FIELDS` order: lists
    joined by spaces (ids never hold whitespace).

    ``internal_repeats`` reads ``0-12/13-25@1.0`` (paragraphs 0-12 appear again as 13-25,
    similarity 1.0); ``near_duplicates`` reads ``other-id@0.93``.
    """
    repeats = " ".join(
        f"{r['first'][0]}-{r['first'][1]}/{r['repeat'][0]}-{r['repeat'][1]}@{r['similarity']:g}"
        for r in row["internal_repeats"]
    )
    near = " ".join(f"{m['doc_id']}@{m['similarity']:g}" for m in row["near_duplicates"])
    cells = {
        "doc_id": row["doc_id"],
        "url": row["url"] or "",
        "fetched_at": row["fetched_at"] or "",
        "indexed_at": _utc(row["indexed_at"]),
        "flags": " ".join(row["flags"]),
        "paragraphs": str(row["paragraphs"]),
        "duplicate_fraction": f"{row['duplicate_fraction']:g}",
        "internal_repeats": repeats,
        "near_duplicates": near,
    }
    return [cells[name] for name in EXPORTED_FIELDS]


def write_rows(rows: Iterator[Exported], fmt: str, out: TextIO) -> int:
    """Write ``rows`` as JSON lines or CSV (with a header); returns how many."""
    count = 0
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORTED_FIELDS)
    for row in rows:
        if writer is not None:
            writer.writerow(csv_row(row))
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def _write_file(rows: Iterator[Exported], fmt: str, path: Path) -> int:
    """Write to a temporary file beside ``path``, then rename: no half-written exports."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8", newline="") as out:
            count = write_rows(rows, fmt, out)
        temporary.replace(path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return count


@click.command()
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option("--flag", type=click.Choice(FLAGS), help="Only documents with this flag.")
@click.option(
    "--since",
    metavar="AGE",
    callback=since_option,
    help="Only documents indexed in the last AGE (30m, 1h, 2d).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output).",
)
@pass_settings
def export(
    settings: Settings, fmt: str, flag: str | None, since: float | None, output: Path | None
) -> None:
    """Export flagged documents: flags, repeated spans and matching ids."""
    from dedup.index.reads import Reads
    from dedup.servers.connection import redis_for

    store = Reads(redis_for(settings), settings)
    rows = flagged_reports(store, flag, since)
    if output is None:
        write_rows(rows, fmt, sys.stdout)
        return
    count = _write_file(rows, fmt, output)
    click.echo(f"exported {count} document(s) to {output}", err=True)
