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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from dedup.cli.context import pass_settings
from dedup.cli.durations import since_option
from dedup.cli.thresholds import canonical_options, threshold_option, with_threshold
from dedup.errors import InputError, NotFoundError
from dedup.index.keys import FLAGS
from dedup.report import EXPORTED_FIELDS, Decision, Exported, exported
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


def all_reports(store: Reads, flag: str | None, since: float | None) -> Iterator[Exported]:
    """:func:`flagged_reports` when the threshold is below the one the flags were raised at:
    every document is read, since one without flags may have near duplicates at it."""
    for listed in store.scan_documents(None, since=since):
        try:
            report = store.report(listed["doc_id"])
        except NotFoundError:
            continue
        if (flag in report["flags"]) if flag else report["flags"]:
            yield exported(report)


def decisions(
    settings: Settings,
    action: str,
    *,
    flag: str | None,
    since: float | None,
    threshold: float | None,
    canonical: str | None,
    hosts: str | None,
) -> Iterator[Decision]:
    """The documents to keep (canonical copies, and those in no group) or to drop (the other
    members of groups, with their canonical and similarity)."""
    from dedup.cli.groups import read_groups

    if flag not in (None, "near_duplicate", "exact_duplicate"):
        raise click.UsageError("--keep and --drop take --flag near_duplicate or exact_duplicate")
    found = read_groups(
        settings,
        flag=flag or "near_duplicate",
        since=since,
        threshold=threshold,
        canonical=canonical,
        hosts=hosts,
        show_progress=True,
    )
    dropped: dict[str, Decision] = {}
    canonicals: dict[str, str] = {}
    for group in found:
        canonicals[group["canonical"]] = group["group"]
        for member in group["members"][1:]:
            dropped[member["doc_id"]] = {
                "doc_id": member["doc_id"],
                "url": None,
                "action": "drop",
                "reason": "duplicate",
                "group": group["group"],
                "canonical": group["canonical"],
                "similarity": member["similarity"],
            }
    from dedup.cli.context import index_reads

    store = index_reads(settings)
    for listed in store.scan_documents(None, since=since):
        doc = listed["doc_id"]
        if action == "drop":
            if doc in dropped:
                yield {**dropped[doc], "url": listed["url"]}
            continue
        if doc in dropped:
            continue
        group_of = canonicals.get(doc)
        yield {
            "doc_id": doc,
            "url": listed["url"],
            "action": "keep",
            "reason": "canonical" if group_of else "unique",
            "group": group_of,
            "canonical": doc if group_of else None,
            "similarity": 1.0 if group_of else None,
        }


def write_decisions(rows: Iterator[Decision], fmt: str, urls: bool, out: TextIO) -> int:
    """Keep or drop lists: one id (or URL) per line, or JSON lines with the reason."""
    count = 0
    for row in rows:
        if fmt == "lines":
            out.write(((row["url"] or row["doc_id"]) if urls else row["doc_id"]) + "\n")
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


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
        "group": row["group"] or "",
        "canonical": row["canonical"] or "",
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


def _write_file(write: Callable[[TextIO], int], path: Path) -> int:
    """Write to a temporary file beside ``path``, then rename: no half-written exports."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8", newline="") as out:
            count = write(out)
        temporary.replace(path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return count


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "lines"]),
    default="jsonl",
    show_default=True,
    help="lines: one id (or URL with --urls) per line, for --keep and --drop.",
)
@click.option(
    "--keep", "keep", is_flag=True, help="The documents to keep (one per group, and the rest)."
)
@click.option("--drop", "drop", is_flag=True, help="The copies to drop, with their canonical.")
@click.option("--urls", is_flag=True, help="With --format lines: URLs instead of ids.")
@threshold_option
@canonical_options
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
    settings: Settings,
    fmt: str,
    keep: bool,
    drop: bool,
    urls: bool,
    threshold: float | None,
    canonical: str | None,
    hosts: str | None,
    flag: str | None,
    since: float | None,
    output: Path | None,
) -> None:
    """Export flagged documents (flags, repeated spans, matching ids), or with --keep or
    --drop the documents to keep or to drop, group by group."""
    from dedup.cli.context import index_reads
    from dedup.index.reads import Reads

    if keep and drop:
        raise click.UsageError("--keep and --drop exclude each other")
    write: Callable[[TextIO], int]
    if keep or drop:
        if fmt == "csv":
            raise click.UsageError("--keep and --drop write --format lines or jsonl")
        chosen = decisions(
            settings,
            "keep" if keep else "drop",
            flag=flag,
            since=since,
            threshold=threshold,
            canonical=canonical,
            hosts=hosts,
        )

        def write(out: TextIO) -> int:
            return write_decisions(chosen, fmt, urls, out)

    else:
        if fmt == "lines":
            raise click.UsageError("--format lines needs --keep or --drop")
        base = index_reads(settings)
        indexed = settings.near_duplicate_threshold
        at = with_threshold(settings, threshold, base.lsh)
        store = Reads(base.client, at)
        below = at.near_duplicate_threshold < indexed and flag in (None, "near_duplicate")
        rows = (all_reports if below else flagged_reports)(store, flag, since)

        def write(out: TextIO) -> int:
            return write_rows(rows, fmt, out)

    if output is None:
        write(sys.stdout)
        return
    count = _write_file(write, output)
    click.echo(f"exported {count} document(s) to {output}", err=True)
