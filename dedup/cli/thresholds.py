"""``--threshold T`` of the reading commands, and the canonical rule's flags.

The index keeps every document's signature, so the similarity from which two documents are
duplicates is chosen when reading; the band shape the index was built with bounds how low it
can usefully go: below :func:`~dedup.pipeline.grouping.threshold_floor` a pair at the
threshold shares no LSH band (and is never compared) more and more often.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dedup.cli import render
from dedup.pipeline.grouping import RULES, candidate_probability, threshold_floor
from dedup.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def threshold_option(command: F) -> F:
    """The ``--threshold T`` option (a float in (0, 1])."""
    return click.option(
        "--threshold",
        type=click.FloatRange(0, 1, min_open=True),
        metavar="T",
        help="Similarity from which documents are duplicates (default: the settings'); "
        "re-scored from the stored signatures, no re-indexing.",
    )(command)


def canonical_options(command: F) -> F:
    """``--canonical RULE`` and ``--hosts LIST``: which copy of a group is kept."""
    command = click.option(
        "--hosts",
        metavar="LIST",
        help="Host priority list of the hosts rule, comma-separated (publisher first).",
    )(command)
    return click.option(
        "--canonical",
        type=click.Choice(RULES),
        help="Canonical rule (default: the settings' canonical_rule).",
    )(command)


def with_threshold(settings: Settings, threshold: float | None, lsh: tuple[int, int]) -> Settings:
    """The settings with the threshold asked for; a warning on stderr when it is below what
    the index's band shape (``lsh``: bands and rows) can find reliably."""
    if threshold is None:
        return settings
    bands, rows = lsh
    floor = threshold_floor(bands, rows)
    if threshold < floor:
        chance = candidate_probability(threshold, bands, rows)
        render.warning(
            f"threshold {threshold:g} is below {floor:g}, the lowest this index's bands "
            f"({bands} of {rows} rows) serve: a pair at {threshold:g} is compared at all "
            f"with probability {chance:.2f}, so groups and matches will miss copies"
        )
    return settings.replace(near_duplicate_threshold=threshold)


def with_canonical(settings: Settings, rule: str | None, hosts: str | None) -> Settings:
    """The settings with the canonical rule and hosts asked for."""
    changes: dict[str, Any] = {}
    if rule is not None:
        changes["canonical_rule"] = rule
    if hosts is not None:
        changes["canonical_hosts"] = hosts
    return settings.replace(**changes) if changes else settings
