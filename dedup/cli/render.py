"""Human output: reports, lists and stats as rich tables.

Scraped text can hold terminal control sequences; everything that came from a document is
stripped of control characters and handed to rich as plain ``Text``, never as markup.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from dedup.report import Group as DuplicateGroup
    from dedup.report import Listed, Report, Stats

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clean(value: Any) -> str:
    """Document-derived text made safe for a terminal."""
    return _CONTROL_RE.sub("", str(value))


def error(message: str) -> None:
    """One line on stderr, never wrapped, whatever the terminal width."""
    click.echo(click.style("error:", fg="red", bold=True) + " " + clean(message), err=True)


def warning(message: str) -> None:
    """One line on stderr that does not stop the command."""
    click.echo(click.style("warning:", fg="yellow", bold=True) + " " + clean(message), err=True)


def group(data: DuplicateGroup) -> Table:
    """One duplicate group: the canonical copy first, then the copies to drop."""
    table = Table(title=f"group {data['group']}", title_justify="left")
    table.add_column("document")
    table.add_column("similarity", justify="right")
    table.add_column("")
    for member in data["members"]:
        table.add_row(
            Text(clean(member["doc_id"])),
            f"{member['similarity']:.3f}",
            "canonical (keep)" if member["doc_id"] == data["canonical"] else "drop",
        )
    return table


def report(data: Report) -> Panel:
    """One document's report."""
    title = Text(clean(data["doc_id"]), style="bold")
    if data["url"]:
        title.append("  " + clean(data["url"]), style="dim")
    flags = data["flags"]
    lines: list[Any] = [
        Text.assemble(
            ("paragraphs ", "dim"),
            str(data["paragraphs"]),
            ("   duplicate fraction ", "dim"),
            f"{data['duplicate_fraction']:.2f}",
            ("   flags ", "dim"),
            (", ".join(flags) if flags else "none", "bold red" if flags else "green"),
        )
    ]
    times = [
        ("fetched ", data["fetched_at"] or ""),
        ("indexed ", _utc(data["indexed_at"]) if data["indexed_at"] else ""),
    ]
    if any(shown for _, shown in times):
        line = Text()
        for label, shown in times:
            if shown:
                line.append(("   " if line else "") + label, style="dim").append(clean(shown))
        lines.append(line)
    excerpts = data["excerpts"]
    if data["internal_repeats"]:
        table = Table(title="repeated inside the document", title_justify="left", expand=True)
        table.add_column("paragraphs")
        table.add_column("appear again as")
        table.add_column("similarity", justify="right")
        table.add_column("begins with", ratio=1)
        for run in data["internal_repeats"]:
            first, again = run["first"], run["repeat"]
            table.add_row(
                f"{first[0]}-{first[1]}",
                f"{again[0]}-{again[1]}",
                f"{run['similarity']:.3f}",
                Text(_short(clean(excerpts.get(str(first[0]), ""))), style="italic"),
            )
        lines.append(table)
    if data["near_duplicates"]:
        table = Table(title="duplicates in the index", title_justify="left")
        table.add_column("document")
        table.add_column("similarity", justify="right")
        table.add_column("kind")
        for match in data["near_duplicates"]:
            table.add_row(
                Text(clean(match["doc_id"])),
                f"{match['similarity']:.3f}",
                "exact" if match["exact"] else "near",
            )
        lines.append(table)
    if data["boilerplate"]:
        shown = ", ".join(f"{b['paragraph']} ({b['documents']} docs)" for b in data["boilerplate"])
        lines.append(Text.assemble(("boilerplate paragraphs ", "dim"), shown))
    shared: dict[tuple[str, ...], list[int]] = {}
    for row in data["shared_paragraphs"]:
        shared.setdefault(tuple(row["with"]), []).append(row["paragraph"])
    for others, paragraphs in shared.items():
        label = "paragraph " if len(paragraphs) == 1 else "paragraphs "
        lines.append(
            Text.assemble(
                (label, "dim"),
                _ranges(paragraphs),
                (" also in ", "dim"),
                clean(", ".join(others)),
            )
        )
    if data["near_paragraphs"]:
        table = Table(title="paragraphs copied in other documents", title_justify="left")
        table.add_column("paragraph", justify="right")
        table.add_column("document")
        table.add_column("its paragraph", justify="right")
        table.add_column("similarity", justify="right")
        table.add_column("kind")
        for near in data["near_paragraphs"]:
            for copy in near["copies"]:
                table.add_row(
                    str(near["paragraph"]),
                    Text(clean(copy["doc_id"])),
                    str(copy["paragraph"]),
                    f"{copy['similarity']:.3f}",
                    "exact" if copy["exact"] else "edited",
                )
        lines.append(table)
    for excerpt in data["shared_excerpts"]:
        count = len(excerpt["paragraphs"])
        lines.append(
            Text.assemble(
                ("reuses ", "dim"),
                f"{count} paragraph{'s' if count != 1 else ''} ",
                ("of ", "dim"),
                clean(excerpt["doc_id"]),
                (" (containment ", "dim"),
                f"{excerpt['containment']:.2f}",
                ("): ", "dim"),
                _ranges(excerpt["paragraphs"]),
            )
        )
    if data["group"]:
        canonical = data["canonical"] == data["doc_id"]
        lines.append(
            Text.assemble(
                ("group ", "dim"),
                clean(data["group"]),
                ("   canonical copy ", "dim"),
                "this document" if canonical else clean(data["canonical"]),
            )
        )
    if len(lines) == 1 and not flags:
        lines.append(Text("no duplicate content found", style="green"))
    return Panel(Group(*lines), title=title, title_align="left")


def _short(text: str, limit: int = 72) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _ranges(numbers: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` as ``0-2, 5, 7-8``."""
    parts: list[str] = []
    for number in sorted(numbers):
        if parts and int(parts[-1].split("-")[-1]) == number - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{number}"
        else:
            parts.append(str(number))
    return ", ".join(parts)


def listing(rows: list[Listed]) -> Table:
    """Documents, newest first."""
    table = Table()
    table.add_column("document")
    table.add_column("url")
    table.add_column("paragraphs", justify="right")
    table.add_column("flags")
    for row in rows:
        table.add_row(
            Text(clean(row["doc_id"])),
            Text(clean(row["url"] or "")),
            str(row["paragraphs"]),
            ", ".join(row["flags"]),
        )
    return table


def stats(data: Stats) -> Table:
    """Totals of the index and the queue."""
    table = Table(show_header=False)
    table.add_column(style="dim")
    table.add_column(justify="right")
    counts = (
        ("documents", data["documents"]),
        ("paragraphs", data["paragraphs"]),
        ("distinct paragraphs", data["distinct_paragraphs"]),
        ("queued", data["queued"]),
        ("failed", data["failed"]),
        ("workers", data["workers"]),
    )
    for label, count in counts:
        table.add_row(label, f"{count:,}")
    for name, count in data["flags"].items():
        table.add_row(f"flag {name}", f"{count:,}")
    table.add_row("redis", Text(clean(data["redis"])))
    return table


def console(stderr: bool = False) -> Console:
    """A console; plain text when not a terminal."""
    return Console(stderr=stderr, highlight=False, soft_wrap=False)
