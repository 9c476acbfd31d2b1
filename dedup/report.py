"""Reports: the typed model of what ``dedup`` shows, stored when indexed and completed when read.

The stored part is what only the document itself decides (its paragraphs and internal
repeats). Everything that depends on the rest of the corpus (near duplicates, boilerplate,
shared paragraphs) is computed when the report is read, so a report always shows the
duplicates known at that moment, including documents that arrived later.

The JSON that scripts read is a contract (docs/CLI.md): its field names are declared here
once, as TypedDicts, and every view (JSON, terminal, CSV, JSON lines) reads these types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from dedup.index.keys import FLAGS

if TYPE_CHECKING:
    from dedup.index.records import Record
    from dedup.pipeline.analysis import Analysis

EXCERPT_CHARS = 160


class InternalRepeat(TypedDict):
    """Paragraphs ``first`` appear again as ``repeat`` (inclusive 0-based ranges)."""

    first: list[int]
    repeat: list[int]
    similarity: float


class NearDuplicate(TypedDict):
    """An indexed document alike to this one (``exact``: the same normalised content)."""

    doc_id: str
    similarity: float
    exact: bool


class BoilerplateParagraph(TypedDict):
    """A paragraph held by at least ``boilerplate_min_documents`` documents."""

    paragraph: int
    documents: int


SharedParagraph = TypedDict(
    "SharedParagraph", {"paragraph": int, "documents": int, "with": list[str]}
)
"""A paragraph other documents hold too (``with``: their ids); ``with`` is a Python keyword."""


class NearCopy(TypedDict):
    """A paragraph of another document that is a copy of this one's, exact or edited."""

    doc_id: str
    paragraph: int
    """Its number in that document."""
    similarity: float
    """Estimated Jaccard similarity of the two paragraphs' words (1.0 for an exact copy)."""
    exact: bool


class NearParagraph(TypedDict):
    """A paragraph of this document and its copies in other documents (``near_paragraphs``)."""

    paragraph: int
    copies: list[NearCopy]


class SharedExcerpt(TypedDict):
    """Several paragraphs of this document found, exact or edited, in one other document that
    is not a near duplicate of it as a whole."""

    doc_id: str
    paragraphs: list[int]
    """This document's paragraphs found there, in order."""
    containment: float
    """The share of this document's words those paragraphs hold."""
    similarity: float
    """The mean similarity of those paragraphs to their copies."""


class Stored(TypedDict):
    """The part of a report the document alone decides, kept when it is indexed."""

    doc_id: str
    url: str | None
    fetched_at: str | None
    paragraphs: int
    internal_repeats: list[InternalRepeat]
    duplicate_fraction: float
    doubled_body: bool
    excerpts: dict[str, str]


class Report(TypedDict):
    """One document's report (``report --json``, ``check --json``), fields in output order."""

    doc_id: str
    url: str | None
    paragraphs: int
    flags: list[str]
    internal_repeats: list[InternalRepeat]
    duplicate_fraction: float
    near_duplicates: list[NearDuplicate]
    boilerplate: list[BoilerplateParagraph]
    shared_paragraphs: list[SharedParagraph]
    exact_duplicates: list[str]
    exact_duplicates_total: int
    """Documents with exactly this content, all of them, where the list stops at a limit."""
    near_duplicates_total: int
    """Near duplicates, exact copies included: every exact copy, and the near copies among
    the candidates read (a sample of those of an entry held by very many documents)."""
    excerpts: dict[str, str]
    """The first words of each repeated run's first paragraph, by its number as text."""
    indexed_at: float | None
    fetched_at: str | None
    near_paragraphs: list[NearParagraph]
    """Paragraphs with copies in other documents, exact or edited (``near_paragraphs`` on)."""
    shared_excerpts: list[SharedExcerpt]
    """Other documents holding two paragraphs of this one or more (``near_paragraphs`` on)."""
    group: str | None
    """The duplicate group the document belongs to (``dedup groups``), None when in none."""
    canonical: str | None
    """The id of that group's canonical copy (the document itself when it is the one)."""


class GroupMember(TypedDict):
    """A document of a duplicate group and its similarity to the group's canonical copy."""

    doc_id: str
    similarity: float


class Group(TypedDict):
    """A line of ``groups --json``: documents that duplicate one canonical copy.

    The canonical is among the members, at similarity 1.0, first.
    """

    group: str
    canonical: str
    members: list[GroupMember]


class Decision(TypedDict):
    """A line of ``export --keep`` or ``--drop``: a document, what to do with it and why.

    ``reason``: ``canonical`` (kept: the copy its group keeps), ``unique`` (kept: in no
    group) or ``duplicate`` (dropped: a copy of ``canonical`` at ``similarity``).
    """

    doc_id: str
    url: str | None
    action: str
    reason: str
    group: str | None
    canonical: str | None
    similarity: float | None


class Listed(TypedDict):
    """A row of ``list --json``: a document without its matches."""

    doc_id: str
    url: str | None
    flags: list[str]
    paragraphs: int
    indexed_at: float


class Exported(TypedDict):
    """A row of ``export``: the report fields a scraper acts on, in column order."""

    doc_id: str
    url: str | None
    fetched_at: str | None
    indexed_at: float | None
    flags: list[str]
    paragraphs: int
    duplicate_fraction: float
    internal_repeats: list[InternalRepeat]
    near_duplicates: list[NearDuplicate]
    group: str | None
    canonical: str | None


EXPORTED_FIELDS: tuple[str, ...] = tuple(Exported.__annotations__)
"""Names of the exported fields in column order: the JSON lines keys and the CSV header."""


class IndexCounts(TypedDict):
    """What the index counts: documents, paragraphs, documents per flag."""

    documents: int
    paragraphs: int
    distinct_paragraphs: int
    flags: dict[str, int]


class Stats(IndexCounts):
    """``stats --json``: the index counts, the queue's and where Redis is."""

    queued: int
    failed: int
    workers: int
    redis: str
    """Where the queue and the index are, never with a password: one location when they
    share it, else ``queue <location>, index <location>``."""
    queue_redis: str
    """The Redis of the queue."""
    index_redis: str
    """The Redis of the index (a server or a cluster)."""


def _excerpt(paragraph: str) -> str:
    return paragraph if len(paragraph) <= EXCERPT_CHARS else paragraph[: EXCERPT_CHARS - 1] + "…"


def stored_report(analysis: Analysis) -> Stored:
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
        extra["internal_repeats"] = stored["internal_repeats"]
        extra["duplicate_fraction"] = stored["duplicate_fraction"]
        extra["excerpts"] = stored["excerpts"]
    if stored["fetched_at"] is not None:
        extra["fetched_at"] = stored["fetched_at"]
    extra["words"] = sum(analysis.word_counts)  # the "longest" canonical rule reads it
    return extra


def stored_from_record(record: Record) -> Stored:
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


def _flags(stored: Stored, exact: bool, near: bool, boilerplate: bool) -> list[str]:
    raised = {
        "doubled_body": stored["doubled_body"],
        "internal_repeat": bool(stored["internal_repeats"]),
        "exact_duplicate": exact,
        "near_duplicate": near,
        "boilerplate": boilerplate,
    }
    return [name for name in FLAGS if raised[name]]


def local_report(analysis: Analysis) -> Report:
    """The report of a document analysed alone, against no index (``check --no-store``)."""
    stored = stored_report(analysis)
    return _finish(stored, exact=[], near=[], boilerplate=[], shared=[], indexed_at=None)


def full_report(
    stored: Stored,
    *,
    fingerprints: list[int],
    counts: dict[int, int],
    exact: list[str],
    near: list[tuple[str, float]],
    shared: dict[int, list[str]],
    boilerplate_min: int,
    indexed_at: float | None,
    near_counts: list[int] | None = None,
    copies: dict[int, list[NearCopy]] | None = None,
    words: list[int] | None = None,
    exact_total: int = 0,
    limit: int | None = None,
) -> Report:
    """The report as read: the stored part plus what the index knows now.

    ``exact_total`` counts the exact copies where ``exact`` lists some of them; ``limit``
    cuts the lists of duplicates, best first (their totals say how many there are).

    ``near_counts`` (documents holding a piece of each paragraph), ``copies`` (each
    paragraph's copies in other documents) and ``words`` (each paragraph's word count) come
    from an index that keeps near copies of paragraphs.
    """
    held = [
        max(counts.get(fp, 0), near_counts[i] if near_counts else 0)
        for i, fp in enumerate(fingerprints)
    ]
    boilerplate: list[BoilerplateParagraph] = [
        {"paragraph": i, "documents": n} for i, n in enumerate(held) if n >= boilerplate_min
    ]
    shared_rows: list[SharedParagraph] = [
        {"paragraph": i, "documents": counts.get(fp, 0), "with": shared[fp]}
        for i, fp in enumerate(fingerprints)
        if shared.get(fp)
    ]
    near_rows: list[NearDuplicate] = [
        {"doc_id": doc, "similarity": 1.0, "exact": True} for doc in exact
    ]
    near_rows += [
        {"doc_id": doc, "similarity": round(score, 3), "exact": False} for doc, score in near
    ]
    exact_total = max(exact_total, len(exact))
    near_total = exact_total + len(near)
    report = _finish(stored, exact[:limit], near_rows[:limit], boilerplate, shared_rows, indexed_at)
    report["exact_duplicates_total"] = exact_total
    report["near_duplicates_total"] = near_total
    if copies is not None and words is not None:
        report["near_paragraphs"] = [
            {"paragraph": i, "copies": copies[i]} for i in sorted(copies) if copies[i]
        ]
        whole = {n["doc_id"] for n in near_rows}
        report["shared_excerpts"] = _excerpts(copies, shared, fingerprints, words, whole)
    return report


def _excerpts(
    copies: dict[int, list[NearCopy]],
    shared: dict[int, list[str]],
    fingerprints: list[int],
    words: list[int],
    whole: set[str],
) -> list[SharedExcerpt]:
    """One row per other document holding two of this document's paragraphs or more, unless
    it is a near duplicate of the whole document; the largest share first."""
    found: dict[str, dict[int, float]] = {}
    for i, fp in enumerate(fingerprints):
        for doc in shared.get(fp, []):
            found.setdefault(doc, {})[i] = 1.0
    for i, rows in copies.items():
        for row in rows:
            found.setdefault(row["doc_id"], {}).setdefault(i, row["similarity"])
    total = sum(words) or 1
    out: list[SharedExcerpt] = [
        {
            "doc_id": doc,
            "paragraphs": sorted(held),
            "containment": round(sum(words[i] for i in held) / total, 3),
            "similarity": round(sum(held.values()) / len(held), 3),
        }
        for doc, held in found.items()
        if len(held) >= 2 and doc not in whole
    ]
    return sorted(out, key=lambda x: (-x["containment"], x["doc_id"]))


def _finish(
    stored: Stored,
    exact: list[str],
    near: list[NearDuplicate],
    boilerplate: list[BoilerplateParagraph],
    shared: list[SharedParagraph],
    indexed_at: float | None,
) -> Report:
    return {
        "doc_id": stored["doc_id"],
        "url": stored["url"],
        "paragraphs": stored["paragraphs"],
        "flags": _flags(stored, bool(exact), any(not n["exact"] for n in near), bool(boilerplate)),
        "internal_repeats": stored["internal_repeats"],
        "duplicate_fraction": stored["duplicate_fraction"],
        "near_duplicates": near,
        "boilerplate": boilerplate,
        "shared_paragraphs": shared,
        "exact_duplicates": exact,
        "exact_duplicates_total": len(exact),
        "near_duplicates_total": len(near),
        "excerpts": stored["excerpts"],
        "indexed_at": indexed_at,
        "fetched_at": stored["fetched_at"],
        "near_paragraphs": [],
        "shared_excerpts": [],
        "group": None,
        "canonical": None,
    }


def exported(report: Report) -> Exported:
    """The export row of a report."""
    return {
        "doc_id": report["doc_id"],
        "url": report["url"],
        "fetched_at": report["fetched_at"],
        "indexed_at": report["indexed_at"],
        "flags": report["flags"],
        "paragraphs": report["paragraphs"],
        "duplicate_fraction": report["duplicate_fraction"],
        "internal_repeats": report["internal_repeats"],
        "near_duplicates": report["near_duplicates"],
        "group": report["group"],
        "canonical": report["canonical"],
    }
