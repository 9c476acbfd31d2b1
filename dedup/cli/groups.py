"""``dedup groups``: documents that duplicate one another, each group with the copy to keep.

A report lists pairs; a crawl or a dataset needs one step more: which copy to keep and which
to drop. Each group has a canonical copy (the settings' ``canonical_rule``, or
``--canonical``) and every member is a duplicate of it at the threshold in force
(:mod:`dedup.pipeline.grouping` says what happens to chains of copies).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dedup.cli import render
from dedup.cli.context import pass_settings
from dedup.cli.durations import since_option
from dedup.cli.thresholds import (
    canonical_options,
    threshold_option,
    with_canonical,
    with_threshold,
)
from dedup.settings import Settings

if TYPE_CHECKING:
    from dedup.report import Group

GROUP_FLAGS = ("near_duplicate", "exact_duplicate")


def read_groups(
    settings: Settings,
    *,
    flag: str = "near_duplicate",
    since: float | None = None,
    threshold: float | None = None,
    canonical: str | None = None,
    hosts: str | None = None,
    show_progress: bool = False,
) -> Iterator[Group]:
    """The groups of the index as the options ask, with a progress bar on stderr when asked
    (and stderr is a terminal)."""
    from dedup.cli.context import index_reads
    from dedup.index import groups
    from dedup.index.reads import Reads

    indexed = settings.near_duplicate_threshold
    base = index_reads(settings)
    asked = with_threshold(settings, threshold, base.lsh)
    reads = Reads(base.client, with_canonical(asked, canonical, hosts))
    options = groups.options_for(reads, exact_only=flag == "exact_duplicate")
    with Progress(
        TextColumn("grouping"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=render.console(stderr=True),
        transient=True,
        disable=not (show_progress and sys.stderr.isatty()),
    ) as progress:
        task = progress.add_task("groups", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        found = list(
            groups.read_groups(
                reads, options, since=since, indexed_threshold=indexed, progress=advance
            )
        )
    yield from found


@click.command()
@click.option(
    "--flag",
    type=click.Choice(GROUP_FLAGS),
    default="near_duplicate",
    show_default=True,
    help="near_duplicate: near and exact copies; exact_duplicate: exact copies only.",
)
@click.option(
    "--since",
    metavar="AGE",
    callback=since_option,
    help="Only groups with a document indexed in the last AGE (30m, 1h, 2d), whole.",
)
@click.option("--min-size", type=click.IntRange(2), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per group and line.")
@threshold_option
@canonical_options
@pass_settings
def groups(
    settings: Settings,
    flag: str,
    since: float | None,
    min_size: int,
    as_json: bool,
    threshold: float | None,
    canonical: str | None,
    hosts: str | None,
) -> None:
    """Groups of duplicates, each with its canonical copy (to keep) and the others (to drop)."""
    found = read_groups(
        settings,
        flag=flag,
        since=since,
        threshold=threshold,
        canonical=canonical,
        hosts=hosts,
        show_progress=True,
    )
    out = None if as_json else render.console()
    count = members = 0
    for group in found:
        if len(group["members"]) < min_size:
            continue
        count += 1
        members += len(group["members"])
        if out is None:
            click.echo(json.dumps(group, ensure_ascii=False))
        else:
            out.print(render.group(group))
    if out is not None:
        out.print(f"{count:,} group(s), {members - count:,} document(s) to drop")
