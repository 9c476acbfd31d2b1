"""Reports: what is stored when a document is indexed, and what is shown when it is read.

The stored part is what only the document itself decides (its paragraphs and internal
repeats). Everything that depends on the rest of the corpus (near duplicates, boilerplate,
shared paragraphs) is computed when the report is read, so a report always shows the
duplicates known at that moment, including documents that arrived later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dedup.index.keys import FLAGS
from dedup.index.layout import Record

if TYPE_CHECKING:
    from dedup.pipeline.analysis import Analysis

EXCERPT_CHARS = 160


def _excerpt(paragraph: str) -> str:
    return paragraph if len(paragraph) <= EXCERPT_CHARS else paragraph[: EXCERPT_CHARS - 1] + "…"


def stored_report(analysis: Analysis) -> dict[str, Any]:
    """The part of a report that depends on the document alone."""
    repeats = analysis.repeats
    excerpts = {
        str(run.first[0]): _excerpt(analysis.paragraphs[run.first[0]]) for run in repeats.runs
    }
    return {
        "doc_id": analysis.document.doc_id,
        "url": analysis.document.url,
        "fetched_at": analysis.document.fetched_at,
        "paragraphs": len(analysis.paragraphs),
        "internal_repeats": [
            {"first": list(run.first), "repeat": list(run.repeat), "similarity": run.similarity}
            for run in repeats.runs
        ],
        "duplicate_fraction": repeats.duplicate_fraction,
        "doubled_body": repeats.doubled_body,
        "excerpts": excerpts,
    }


def record_extra(analysis: Analysis) -> dict[str, Any]:
    """The stored report fields that most documents do not have, kept in their record."""
    stored = stored_report(analysis)
    extra: dict[str, Any] = {}
    if stored["internal_repeats"]:
        for name in ("internal_repeats", "duplicate_fraction", "excerpts"):
            extra[name] = stored[name]
    if stored["fetched_at"] is not None:
        extra["fetched_at"] = stored["fetched_at"]
    return extra


def stored_from_record(record: Record) -> dict[str, Any]:
    """The stored part of a report, from the record the store keeps."""
    return {
        "doc_id": record.doc_id,
        "url": record.url,
        "fetched_at": record.extra.get("fetched_at"),
        "paragraphs": record.paragraphs,
        "internal_repeats": record.extra.get("internal_repeats", []),
        "duplicate_fraction": record.extra.get("duplicate_fraction", 0.0),
        "doubled_body": record.doubled_body,
        "excerpts": record.extra.get("excerpts", {}),
    }


def _flags(stored: dict[str, Any], exact: bool, near: bool, boilerplate: bool) -> list[str]:
    raised = {
        "doubled_body": bool(stored.get("doubled_body")),
        "internal_repeat": bool(stored.get("internal_repeats")),
        "exact_duplicate": exact,
        "near_duplicate": near,
        "boilerplate": boilerplate,
    }
    return [name for name in FLAGS if raised[name]]


def local_report(analysis: Analysis) -> dict[str, Any]:
    """The report of a document analysed alone, against no index (``check --no-store``)."""
    stored = stored_report(analysis)
    return _finish(stored, exact=[], near=[], boilerplate=[], shared=[], indexed_at=None)


def full_report(
    stored: dict[str, Any],
    *,
    fingerprints: list[int],
    counts: dict[int, int],
    exact: list[str],
    near: list[tuple[str, float]],
    shared: dict[int, list[str]],
    boilerplate_min: int,
    indexed_at: float | None,
) -> dict[str, Any]:
    """The report as read: the stored part plus what the index knows now."""
    boilerplate = [
        {"paragraph": i, "documents": counts.get(fp, 0)}
        for i, fp in enumerate(fingerprints)
        if counts.get(fp, 0) >= boilerplate_min
    ]
    shared_rows = [
        {"paragraph": i, "documents": counts.get(fp, 0), "with": shared[fp]}
        for i, fp in enumerate(fingerprints)
        if shared.get(fp)
    ]
    near_rows = [{"doc_id": doc, "similarity": 1.0, "exact": True} for doc in exact] + [
        {"doc_id": doc, "similarity": round(score, 3), "exact": False} for doc, score in near
    ]
    return _finish(stored, exact, near_rows, boilerplate, shared_rows, indexed_at)


def _finish(
    stored: dict[str, Any],
    exact: list[str],
    near: list[dict[str, Any]],
    boilerplate: list[dict[str, Any]],
    shared: list[dict[str, Any]],
    indexed_at: float | None,
) -> dict[str, Any]:
    return {
        "doc_id": stored["doc_id"],
        "url": stored.get("url"),
        "paragraphs": stored["paragraphs"],
        "flags": _flags(stored, bool(exact), any(not n["exact"] for n in near), bool(boilerplate)),
        "internal_repeats": stored["internal_repeats"],
        "duplicate_fraction": stored["duplicate_fraction"],
        "near_duplicates": near,
        "boilerplate": boilerplate,
        "shared_paragraphs": shared,
        "exact_duplicates": exact,
        "excerpts": stored.get("excerpts", {}),
        "indexed_at": indexed_at,
        "fetched_at": stored.get("fetched_at"),
    }
