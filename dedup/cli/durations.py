"""Durations people type (``30m``, ``1h``, ``2d``) for ``--since``.

A scraper asks "what went wrong in the last run", not "since timestamp 1764286000": the
reading commands take a duration back from now and turn it into the cut-off time once, at
the edge.
"""

from __future__ import annotations

import re
import time

import click

from dedup.errors import InputError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
"""Seconds per unit letter."""
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in a duration like ``90s``, ``30m``, ``1h``, ``2d`` or ``1w``.

    Raises:
        InputError: the text is not a number followed by one of s, m, h, d, w.
    """
    match = _DURATION_RE.match(text)
    if not match:
        raise InputError(f"invalid duration {text!r}: use a number and s, m, h, d or w, like 1h")
    return float(match.group(1)) * UNITS[match.group(2).lower()]


def since(text: str, now: float | None = None) -> float:
    """The time (seconds since the epoch) a duration ago."""
    return (time.time() if now is None else now) - parse_duration(text)


def since_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Click callback of a ``--since`` option: the cut-off time, or a usage error."""
    if value is None:
        return None
    try:
        return since(value)
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
