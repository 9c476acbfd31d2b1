"""What the review pages show, computed from a report and the kept text: pure functions.

Paragraph roles (first copy of a repeated run, its repeat, boilerplate, shared, unique),
the word differences of two documents side by side, and the hourly counts of the chart.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from dedup.report import Listed, Report

MAX_DIFF_WORDS = 20_000
"""Words compared per document side by side; the rest is shown without highlighting."""
BREAK = "\x00"
"""Token marking a paragraph boundary in the side-by-side comparison."""


@dataclass
class Paragraph:
    """One paragraph of a report page."""

    number: int
    text: str | None
    role: str = "unique"
    """``first`` (of a repeated run), ``repeat``, ``boilerplate``, ``shared`` or ``unique``."""
    twin: int | None = None
    """The paragraph this one repeats, or that repeats it."""
    similarity: float | None = None
    documents: int | None = None
    """Documents holding this paragraph (boilerplate, shared)."""
    shared_with: list[str] = field(default_factory=list)


def _twin(number: int, source: list[int], target: list[int]) -> int:
    return min(target[1], target[0] + number - source[0])


def paragraphs(report: Report, kept: Sequence[str] | None) -> list[Paragraph]:
    """The paragraphs of a report with their roles; text only when kept for this version."""
    if kept is not None and len(kept) != report["paragraphs"]:
        kept = None  # kept for another version of the document
    rows = [
        Paragraph(n, kept[n] if kept is not None else report["excerpts"].get(str(n)))
        for n in range(report["paragraphs"])
    ]
    for row in report["boilerplate"]:
        if row["paragraph"] < len(rows):
            rows[row["paragraph"]].role = "boilerplate"
            rows[row["paragraph"]].documents = row["documents"]
    for shared in report["shared_paragraphs"]:
        row_ = rows[shared["paragraph"]] if shared["paragraph"] < len(rows) else None
        if row_ is not None:
            row_.shared_with = list(shared["with"])
            row_.documents = shared["documents"]
            if row_.role == "unique":
                row_.role = "shared"
    for run in report["internal_repeats"]:
        first, repeat = run["first"], run["repeat"]
        for number in range(first[0], min(first[1], len(rows) - 1) + 1):
            rows[number].role = "first"
            rows[number].twin = _twin(number, first, repeat)
            rows[number].similarity = run["similarity"]
        for number in range(repeat[0], min(repeat[1], len(rows) - 1) + 1):
            rows[number].role = "repeat"
            rows[number].twin = _twin(number, repeat, first)
            rows[number].similarity = run["similarity"]
    return rows


@dataclass
class Segment:
    """A stretch of words on one side of a comparison."""

    text: str
    changed: bool


def _tokens(paragraphs_: Sequence[str]) -> list[str]:
    tokens: list[str] = []
    for paragraph in paragraphs_:
        if tokens:
            tokens.append(BREAK)
        tokens.extend(paragraph.split())
    return tokens


def _segments(tokens: list[str], changed: bool) -> list[list[Segment]]:
    """Segments split into paragraphs at the break tokens."""
    out: list[list[Segment]] = [[]]
    words: list[str] = []
    for token in tokens:
        if token == BREAK:
            if words:
                out[-1].append(Segment(" ".join(words), changed))
                words = []
            out.append([])
        else:
            words.append(token)
    if words:
        out[-1].append(Segment(" ".join(words), changed))
    return out


def _join(into: list[list[Segment]], more: list[list[Segment]]) -> None:
    into[-1].extend(more[0])
    into.extend(more[1:])


def compare(left: Sequence[str], right: Sequence[str]) -> tuple[list[list[Segment]], ...]:
    """Both documents as paragraphs of segments, the words that differ marked ``changed``."""
    a, b = _tokens(left), _tokens(right)
    a_head, a_tail = a[:MAX_DIFF_WORDS], a[MAX_DIFF_WORDS:]
    b_head, b_tail = b[:MAX_DIFF_WORDS], b[MAX_DIFF_WORDS:]
    matcher = difflib.SequenceMatcher(None, a_head, b_head, autojunk=False)
    out_a: list[list[Segment]] = [[]]
    out_b: list[list[Segment]] = [[]]
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        same = tag == "equal"
        _join(out_a, _segments(a_head[i1:i2], not same))
        _join(out_b, _segments(b_head[j1:j2], not same))
    _join(out_a, _segments(a_tail, False))
    _join(out_b, _segments(b_tail, False))
    return out_a, out_b


@dataclass
class Bar:
    """One hour of the flags chart."""

    label: str
    counts: dict[str, int]
    total: int


def hourly(rows: Sequence[Listed], now: float, hours: int = 24) -> list[Bar]:
    """Flagged documents per hour over the last ``hours``, oldest first."""
    import time as _time

    bars = []
    for back in range(hours - 1, -1, -1):
        end = now - back * 3600
        start = end - 3600
        counts: dict[str, int] = {}
        for row in rows:
            if start <= row["indexed_at"] < end:
                for flag in row["flags"]:
                    counts[flag] = counts.get(flag, 0) + 1
        label = _time.strftime("%H:00", _time.gmtime(start + 1800))
        bars.append(
            Bar(
                label, counts, sum(1 for r in rows if start <= r["indexed_at"] < end and r["flags"])
            )
        )
    return bars
