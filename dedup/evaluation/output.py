"""The evaluation for people (rich tables), for machines (JSON) and as a picture (PNG).

The plot needs matplotlib, an optional extra (``pip install 'dedup[eval]'``); the rest of the
evaluation does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from dedup.errors import ConfigError
from dedup.evaluation.metrics import RECALL_AT, TOLERANCE


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _met(met: bool | None) -> Text:
    if met is None:
        return Text("n/a", style="dim")
    return Text("met", style="green") if met else Text("missed", style="bold red")


def _of(data: dict[str, Any], part: str, whole: str) -> str:
    return f"{data[part]} of {data[whole]}"


def _with(data: dict[str, Any], name: str, whole: str | None = None) -> str:
    """A count with selection, of a whole, and the count without selection."""
    total = f" of {data[whole]}" if whole else ""
    return f"{data[name]}{total} ({data[name + '_without_selection']} without selection)"


def _groups(data: dict[str, Any]) -> str:
    return f"{data['groups']}, {data['members']}"


def tables(result: dict[str, Any]) -> Group:
    """Every table of the evaluation, targets first."""
    run = result["run"]
    header = Text.assemble(
        ("dedup eval ", "bold"),
        f"{run['corpus']}: {run['articles']} articles, {run['documents']} documents, ",
        f"seed {run['seed']}, {run['date']}, {run['seconds']} s",
    )
    targets = Table(title="Targets", title_justify="left")
    for column in ("target", "value", "wanted", ""):
        targets.add_column(column)
    for row in result["targets"]:
        targets.add_row(row["target"], _number(row["value"]), row["wanted"], _met(row["met"]))

    internal = Table(title="Documents: flags raised per case kind", title_justify="left")
    for column in ("kind", "documents", "expected", "doubled_body", "internal_repeat", "recall"):
        internal.add_column(column, justify="left" if column in ("kind", "expected") else "right")
    for row in result["internal"]["rows"]:
        internal.add_row(
            row["kind"],
            str(row["documents"]),
            row["expected"],
            str(row["doubled_body"]),
            str(row["internal_repeat"]),
            _number(row.get("recall")),
        )
    near = result["near"]
    pairs = Table(
        title=f"Pairs of one story: recall at Jaccard >= {RECALL_AT}, similarity error",
        title_justify="left",
    )
    for column in ("pair kind", "pairs", "mean Jaccard", f">= {RECALL_AT}", "recall"):
        pairs.add_column(column, justify="left" if column == "pair kind" else "right")
    pairs.add_column("flagged", justify="right")
    pairs.add_column(f"within {TOLERANCE}", justify="right")
    pairs.add_column("of article", justify="right")
    for row in [*near["rows"], {"kind": "all", **near}]:
        pairs.add_row(
            row["kind"],
            str(row["pairs"]),
            _number(row["mean_measured"]),
            str(row["high"]),
            _number(row["recall"]),
            str(row["flagged"]),
            _number(row["within_tolerance"]),
            _number(row["within_tolerance_of_article"]),
        )
    boilerplate = result["boilerplate"]
    extraction = result["extraction"]
    summary = Table(title="Cross-document, boilerplate, whole pages", title_justify="left")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    unrelated = near["unrelated"]
    pages = result["internal"]["pages_like_bodies"]
    for name, value in (
        ("near duplicates: precision", near["precision"]),
        ("unrelated pairs (flagged)", f"{unrelated['pairs']} ({unrelated['flagged']})"),
        (
            "boilerplate: inserted, reported",
            f"{boilerplate['inserted']}, {boilerplate['reported']}",
        ),
        ("boilerplate: other paragraphs reported", boilerplate["other_reported"]),
        ("boilerplate group: unrelated pairs flagged", boilerplate["unrelated"]["flagged"]),
        ("whole pages flagged like their body", f"{pages['same']} of {pages['pages']}"),
        (
            "whole pages rejected (no report)",
            _of(result["internal"]["pages_rejected"], "rejected", "pages"),
        ),
        ("pages judged (capture holds the body)", _of(extraction, "judged_pages", "pages")),
        ("body paragraphs kept", _with(extraction, "body_kept", "body_paragraphs")),
        ("template paragraphs kept", _with(extraction, "template_kept")),
        ("pages with Jaccard >= 0.8 to their body", _with(extraction, "pages_similarity_0.8")),
        (
            f"excerpts: edited paragraphs at Jaccard >= {RECALL_AT}, source found",
            _of(result["excerpt"], "found", "high"),
        ),
        (
            "excerpts: listed once with their source",
            _of(result["excerpt"], "excerpts_found", "excerpts"),
        ),
        (
            "excerpts: paragraph links, to another story",
            _of(result["excerpt"], "wrong_links", "links"),
        ),
        (
            "excerpts: varying template line reported",
            _of(result["excerpt"], "template_reported", "template_lines"),
        ),
        ("duplicate groups (near group), documents in them", _groups(result["groups"])),
        (
            f"stories with copies at Jaccard >= {RECALL_AT}: in one group",
            _of(result["groups"], "together", "stories"),
        ),
        (
            "  of those: canonical is the original",
            _of(result["groups"], "canonical_right", "together"),
        ),
        ("groups mixing two stories", _of(result["groups"], "mixed", "groups")),
    ):
        summary.add_row(name, _number(value))
    parts: list[Any] = [header, targets, internal, pairs, summary, *_beyond(result)]
    for reason, count in result["skipped"].items():
        parts.append(Text(f"skipped {count}: {reason}", style="dim"))
    for group, ids in result["rejected"].items():
        parts.append(Text(f"not indexed ({group}): {', '.join(ids)}", style="dim"))
    for group, reasons in result["failures"].items():
        parts.extend(Text(f"failed job ({group}): {reason}", style="dim") for reason in reasons)
    return Group(*parts)


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    """Rows of one dictionary each, a column per key (the first one left-aligned)."""
    table = Table(title=title, title_justify="left")
    columns = list(rows[0]) if rows else []
    for n, column in enumerate(columns):
        table.add_column(column.replace("_", " "), justify="left" if n == 0 else "right")
    for row in rows:
        table.add_row(*(_number(row[column]) for column in columns))
    return table


def _beyond(result: dict[str, Any]) -> list[Table]:
    """The tables of the short texts, structured pages and other languages."""
    if "short" not in result:
        return []
    short = result["short"]
    unrelated = short["unrelated"]
    return [
        _table(
            f"Short texts and their edited copies: recall; unrelated pairs linked "
            f"{unrelated['flagged']} of {unrelated['pairs']}",
            short["rows"],
        ),
        _table("Structured pages: doubled_body must stay off", result["structured"]["rows"]),
        _table("Other languages and scripts", result["languages"]["rows"]),
    ]


def plot(result: dict[str, Any], path: Path) -> None:
    """The similarity curve: reported against measured similarity, and flagged share per tenth."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'dedup[eval]'") from None
    curve = result["near"]["curve"]
    threshold = result["run"]["settings"]["near_duplicate_threshold"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
    flagged = [p for p in curve["points"] if p[2] is not None]
    left.scatter([p[1] for p in flagged], [p[2] for p in flagged], s=6, alpha=0.5,
                 label="flagged: reported against the documents' text")  # fmt: skip
    left.scatter([p[0] for p in flagged], [p[2] for p in flagged], s=6, alpha=0.3, marker="x",
                 color="purple", label="flagged: reported against the article's text")  # fmt: skip
    missed = [p for p in curve["points"] if p[2] is None]
    left.scatter([p[0] for p in missed], [threshold - 0.02] * len(missed), s=6, marker="|",
                 color="red", alpha=0.5, label="not flagged (under the threshold)")  # fmt: skip
    left.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    for offset in (-TOLERANCE, TOLERANCE):
        left.plot([0, 1], [offset, 1 + offset], color="grey", linewidth=0.5, linestyle=":")
    left.axhline(threshold, color="orange", linewidth=0.8)
    left.set(xlabel="measured Jaccard (3-word shingles)", ylabel="reported similarity",
             xlim=(0, 1.02), ylim=(0, 1.02), title="Pairs of one story")  # fmt: skip
    left.legend(loc="upper left", fontsize=8)
    buckets = [b for b in curve["buckets"] if b["pairs"]]
    right.bar([b["low"] + 0.05 for b in buckets], [b["flagged"] / b["pairs"] for b in buckets],
              width=0.09, color="steelblue")  # fmt: skip
    for b in buckets:
        right.text(b["low"] + 0.05, 1.01, str(b["pairs"]), ha="center", fontsize=7)
    right.axvline(threshold, color="orange", linewidth=0.8)
    right.set(xlabel="measured Jaccard", ylabel="share flagged near_duplicate", xlim=(0, 1),
              ylim=(0, 1.08), title="Threshold curve (pairs per bar on top)")  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
