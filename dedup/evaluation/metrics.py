"""Score the reports against what each case is: precision, recall and counts per case kind.

Document cases (``internal`` group) are judged by their flags. Cross-document cases are judged
per pair of documents: two documents of one story should be near duplicates when the article
text they carry is alike (the measured Jaccard similarity of its 3-word shingles), two of
different stories never. The reported similarity of a flagged pair is compared with the
measured one, which is what it estimates. The duplicate groups of the near cases are scored
by :mod:`dedup.evaluation.groups`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from dedup.evaluation import groups as duplicate_groups
from dedup.evaluation.cases import (
    BOILERPLATE,
    CLEAN_KINDS,
    DOUBLED_KINDS,
    EXCERPT,
    INTERNAL,
    NEAR,
    Case,
    CaseSet,
)
from dedup.evaluation.corpus import Shingle, jaccard, shingles
from dedup.evaluation.runner import GroupRun
from dedup.pipeline.extract import extract_paragraphs
from dedup.report import Report

RECALL_AT = 0.8
"""Measured similarity from which every pair of one story must be found."""
TOLERANCE = 0.05
SAME_TEXT = 0.5
"""Word Jaccard from which a linked paragraph of another story is a copy all the same (the
corpus holds some lines in articles of several stories)."""
"""How far a reported similarity may be from the measured one."""


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _internal(cases: list[Case], run: GroupRun) -> dict[str, Any]:
    rows = []
    found: dict[str, list[tuple[Case, Report]]] = defaultdict(list)
    for case in cases:
        if case.doc_id in run.reports:
            found[case.kind].append((case, run.reports[case.doc_id]))
    totals = {"tp": 0, "fp": 0, "fn": 0, "repeat_tp": 0, "repeat_fp": 0}
    body_kinds = [k for k in DOUBLED_KINDS if k != "doubled_page"]
    for kind, items in found.items():
        doubled = sum("doubled_body" in r["flags"] for _, r in items)
        repeat = sum("internal_repeat" in r["flags"] for _, r in items)
        row = {"kind": kind, "documents": len(items), "doubled_body": doubled}
        row["internal_repeat"] = repeat
        if kind in DOUBLED_KINDS:
            row["expected"] = "doubled_body"
            row["recall"] = ratio(doubled, len(items))
            if kind in body_kinds:
                totals["tp"] += doubled
                totals["fn"] += len(items) - doubled
        elif kind == "partial_repeat":
            row["expected"] = "internal_repeat"
            row["recall"] = ratio(repeat, len(items))
            row["span_exact"] = sum(_span_exact(c, r) for c, r in items)
            totals["fp"] += doubled
            totals["repeat_tp"] += repeat
        else:
            row["expected"] = "no flag"
            totals["fp"] += doubled
            totals["repeat_fp"] += repeat
        rows.append(row)
    order = [*CLEAN_KINDS, *DOUBLED_KINDS, "partial_repeat"]
    rows.sort(key=lambda r: order.index(r["kind"]) if r["kind"] in order else len(order))
    doubled_tp, repeat_tp = totals["tp"], totals["repeat_tp"]
    return {
        "rows": rows,
        "pages_like_bodies": _pages_like_bodies(cases, run),
        "pages_rejected": _pages_rejected(cases, run),
        "doubled_body_precision": ratio(doubled_tp, doubled_tp + totals["fp"]),
        "doubled_body_recall": ratio(doubled_tp, doubled_tp + totals["fn"]),
        "internal_repeat_precision": ratio(repeat_tp, repeat_tp + totals["repeat_fp"]),
    }


def _pages_like_bodies(cases: list[Case], run: GroupRun) -> dict[str, Any]:
    """How many whole pages get the flags their body alone gets (doubled, internal repeat)."""
    flags: dict[tuple[int, str], tuple[bool, bool]] = {}
    for case in cases:
        report = run.reports.get(case.doc_id)
        if case.kind in CLEAN_KINDS and report is not None:
            raised = ("doubled_body" in report["flags"], "internal_repeat" in report["flags"])
            flags[(case.article, case.kind)] = raised
    pairs = [(flags[(a, k)], flags[(a, "clean_page")]) for a, k in flags if k == "clean_body"
             and (a, "clean_page") in flags]  # fmt: skip
    same = sum(body == page for body, page in pairs)
    return {"pages": len(pairs), "same": same, "share": ratio(same, len(pairs))}


def _pages_rejected(cases: list[Case], run: GroupRun) -> dict[str, Any]:
    """How many captured pages, sent whole, got no report (refused, e.g. as having no text)."""
    pages = [c.doc_id for c in cases if c.kind == "clean_page"]
    rejected = [doc_id for doc_id in pages if doc_id not in run.reports]
    return {"pages": len(pages), "rejected": len(rejected), "ids": rejected}


def _span_exact(case: Case, report: Report) -> bool:
    """Whether the report names exactly the appended paragraphs as the copy of the last ones."""
    count = report["paragraphs"] - case.repeated
    want = {
        "first": [count - case.repeated, count - 1],
        "repeat": [count, report["paragraphs"] - 1],
    }
    return any(r["first"] == want["first"] and r["repeat"] == want["repeat"]
               for r in report["internal_repeats"])  # fmt: skip


def flagged_pairs(run: GroupRun) -> dict[frozenset[str], float]:
    pairs: dict[frozenset[str], float] = {}
    for doc_id, report in run.reports.items():
        for match in report["near_duplicates"]:
            pairs[frozenset((doc_id, match["doc_id"]))] = float(match["similarity"])
    return pairs


def _pair_kind(first: Case, second: Case) -> str:
    if first.article != second.article:
        return "capture"  # two captures of one article
    kinds = {first.kind, second.kind} - {"original"}
    if len(kinds) != 1 or first.kind == second.kind:
        return "between_variants"
    return kinds.pop().split("_0")[0]


def unrelated_pairs(cases: list[Case], flagged: dict[frozenset[str], float]) -> dict[str, Any]:
    story = {c.doc_id: c.story for c in cases}
    sizes: dict[int, int] = defaultdict(int)
    for case in cases:
        sizes[case.story] += 1
    same = sum(n * (n - 1) // 2 for n in sizes.values())
    wrong = sorted(
        (sorted(pair), similarity)
        for pair, similarity in flagged.items()
        if len(pair) == 2 and len({story.get(d, -1) for d in pair}) == 2
    )
    return {
        "pairs": len(cases) * (len(cases) - 1) // 2 - same,
        "flagged": len(wrong),
        "examples": [{"pair": p, "similarity": s} for p, s in wrong[:10]],
    }


def _near(cases: list[Case], run: GroupRun) -> dict[str, Any]:
    cases = [c for c in cases if c.doc_id in run.reports]
    flagged = flagged_pairs(run)
    article: dict[str, set[Shingle]] = {c.doc_id: shingles(c.content) for c in cases}
    extracted = {c.doc_id: shingles(extract_paragraphs(c.body, "html")) for c in cases}
    by_story: dict[int, list[Case]] = defaultdict(list)
    for case in cases:
        by_story[case.story].append(case)
    pairs = []
    for members in by_story.values():
        for one, two in combinations(members, 2):
            pairs.append(
                _Pair(
                    _pair_kind(one, two),
                    round(jaccard(article[one.doc_id], article[two.doc_id]), 4),
                    round(jaccard(extracted[one.doc_id], extracted[two.doc_id]), 4),
                    flagged.get(frozenset((one.doc_id, two.doc_id))),
                    (one.doc_id, two.doc_id),
                )
            )
    rows: dict[str, dict[str, Any]] = {}
    for kind in dict.fromkeys(p.kind for p in pairs):
        rows[kind] = {"kind": kind, **_pair_stats([p for p in pairs if p.kind == kind])}
    unrelated = unrelated_pairs(cases, flagged)
    total = _pair_stats(pairs)
    return {
        "rows": sorted(rows.values(), key=lambda r: -r["mean_measured"]),
        **total,
        "precision": ratio(total["flagged"], total["flagged"] + unrelated["flagged"]),
        "unrelated": unrelated,
        "curve": _curve(pairs),
    }


@dataclass(frozen=True)
class _Pair:
    """Two documents of one story: the Jaccard similarity of the article text they carry,
    of the text dedup reads in them (template left over included), and the reported one."""

    kind: str
    measured: float
    extracted: float
    reported: float | None
    ids: tuple[str, str]


def _pair_stats(pairs: list[_Pair]) -> dict[str, Any]:
    high = [p for p in pairs if p.measured >= RECALL_AT]
    flagged = [p for p in pairs if p.reported is not None]
    missed = [p for p in high if p.reported is None]
    return {
        "missed": [
            {"pair": list(p.ids), "measured": p.measured, "extracted": p.extracted}
            for p in missed[:5]
        ],
        "pairs": len(pairs),
        "mean_measured": round(sum(p.measured for p in pairs) / len(pairs), 3) if pairs else 0,
        "high": len(high),
        "found": sum(p.reported is not None for p in high),
        "recall": ratio(sum(p.reported is not None for p in high), len(high)),
        "flagged": len(flagged),
        "within_tolerance": ratio(
            sum(abs((p.reported or 0) - p.extracted) <= TOLERANCE for p in flagged), len(flagged)
        ),
        "within_tolerance_of_article": ratio(
            sum(abs((p.reported or 0) - p.measured) <= TOLERANCE for p in flagged), len(flagged)
        ),
    }


def _curve(pairs: list[_Pair]) -> dict[str, Any]:
    """Share of pairs flagged per tenth of measured similarity, and every pair.

    Points are ``[article Jaccard, extracted-text Jaccard, reported or null, pair kind]``.
    """
    buckets = []
    for tenth in range(10):
        low, high = tenth / 10, (tenth + 1) / 10
        inside = [p for p in pairs if low <= p.measured < high or (tenth == 9 and p.measured == 1)]
        flagged = sum(p.reported is not None for p in inside)
        buckets.append({"low": low, "high": high, "pairs": len(inside), "flagged": flagged})
    points = [[p.measured, p.extracted, p.reported, p.kind] for p in pairs]
    return {"buckets": buckets, "points": points}


def _boilerplate(cases: list[Case], run: GroupRun) -> dict[str, Any]:
    cases = [c for c in cases if c.doc_id in run.reports]
    inserted = [c for c in cases if c.inserted_at is not None]
    reported = 0
    other = 0
    for case in cases:
        paragraphs = {b["paragraph"] for b in run.reports[case.doc_id]["boilerplate"]}
        if case.inserted_at is not None and case.inserted_at in paragraphs:
            reported += 1
            paragraphs.discard(case.inserted_at)
        other += len(paragraphs)
    return {
        "documents": len(cases),
        "inserted": len(inserted),
        "reported": reported,
        "recall": ratio(reported, len(inserted)),
        "other_reported": other,
        "precision": ratio(reported, reported + other),
        "unrelated": unrelated_pairs(cases, flagged_pairs(run)),
    }


def _excerpt(cases: list[Case], run: GroupRun) -> dict[str, Any]:
    """Edited excerpts found with their source paragraph; links to another story's paragraph;
    the varying template line reported as boilerplate."""
    judged = {c.doc_id: c for c in cases if c.origins and c.doc_id in run.reports}
    sources = {c.article: c for c in cases if c.kind == "source"}
    paragraphs: list[tuple[float, bool]] = []
    missed: list[dict[str, Any]] = []
    excerpts = found_excerpts = 0
    for case in judged.values():
        if case.kind != "excerpt":
            continue
        report = run.reports[case.doc_id]
        source = sources[case.article]
        copies = {r["paragraph"]: r["copies"] for r in report["near_paragraphs"]}
        for position in case.copied:
            original = source.content[case.origins[position][1]]
            measured = jaccard(shingles([case.content[position]], 1), shingles([original], 1))
            found = any(
                (c["doc_id"], c["paragraph"]) == (source.doc_id, case.origins[position][1])
                for c in copies.get(position, [])
            )
            paragraphs.append((measured, found))
            if measured >= RECALL_AT and not found and len(missed) < 10:
                missed.append({"doc_id": case.doc_id, "paragraph": position, "measured": measured})
        excerpts += 1
        found_excerpts += any(e["doc_id"] == source.doc_id for e in report["shared_excerpts"])
    links = wrong = other_story = 0
    examples: list[dict[str, Any]] = []
    for doc_id, case in judged.items():
        for row in run.reports[doc_id]["near_paragraphs"]:
            for copy in row["copies"]:
                target = judged.get(copy["doc_id"])
                if target is None:
                    continue
                links += 1
                if target.origins[copy["paragraph"]][0] != case.origins[row["paragraph"]][0]:
                    other_story += 1
                    texts = case.content[row["paragraph"]], target.content[copy["paragraph"]]
                    alike = jaccard(shingles([texts[0]], 1), shingles([texts[1]], 1))
                    if alike < SAME_TEXT:  # not a copy: the corpus shares some lines itself
                        wrong += 1
                        if len(examples) < 10:
                            examples.append(
                                {"doc_id": doc_id, "paragraph": row["paragraph"], **copy}
                            )
    high = [found for measured, found in paragraphs if measured >= RECALL_AT]
    carrying = [c for c in judged.values() if c.inserted_at is not None]
    reported = sum(
        c.inserted_at in {b["paragraph"] for b in run.reports[c.doc_id]["boilerplate"]}
        for c in carrying
    )
    other = sum(
        len({b["paragraph"] for b in run.reports[c.doc_id]["boilerplate"]} - {c.inserted_at})
        for c in cases
        if c.doc_id in run.reports
    )
    return {
        "documents": len(cases),
        "judged": len(judged),
        "excerpts": excerpts,
        "excerpts_found": found_excerpts,
        "paragraphs": len(paragraphs),
        "mean_measured": round(sum(m for m, _ in paragraphs) / len(paragraphs), 3)
        if paragraphs
        else 0,
        "high": len(high),
        "found": sum(high),
        "recall": ratio(sum(high), len(high)),
        "found_below": sum(f for m, f in paragraphs if m < RECALL_AT),
        "missed": missed,
        "links": links,
        "other_story_links": other_story,
        "wrong_links": wrong,
        "wrong_examples": examples,
        "template_lines": len(carrying),
        "template_reported": reported,
        "template_recall": ratio(reported, len(carrying)),
        "other_boilerplate": other,
    }


def score(case_set: CaseSet, runs: dict[str, GroupRun]) -> dict[str, Any]:
    """Every number of the evaluation, and which targets are met."""
    groups: dict[str, list[Case]] = defaultdict(list)
    for case in case_set.cases:
        groups[case.group].append(case)
    internal = _internal(groups[INTERNAL], runs[INTERNAL])
    near = _near(groups[NEAR], runs[NEAR])
    boilerplate = _boilerplate(groups[BOILERPLATE], runs[BOILERPLATE])
    excerpt = _excerpt(groups[EXCERPT], runs[EXCERPT])
    grouped = duplicate_groups.score(groups[NEAR], runs[NEAR], RECALL_AT)
    rows = {r["kind"]: r for r in internal["rows"]}
    clean_flagged = sum(rows[k]["doubled_body"] for k in CLEAN_KINDS if k in rows)
    partial = rows.get("partial_repeat", {})
    capture = next((r for r in near["rows"] if r["kind"] == "capture"), None)
    pages_like = internal["pages_like_bodies"]
    page_pairs = [r for r in near["rows"] if r["kind"] in ("page", "transplant")]
    page_high = sum(r["high"] for r in page_pairs)
    page_found = sum(r["found"] for r in page_pairs)
    targets = [
        ("doubled_body recall, doubled body variants", internal["doubled_body_recall"], ">=", 1.0),
        ("clean bodies and pages flagged doubled_body", clean_flagged, "==", 0),
        ("partial repeats: internal_repeat recall", partial.get("recall"), ">=", 0.98),
        ("partial repeats flagged doubled_body", partial.get("doubled_body"), "==", 0),
        (f"near duplicates at Jaccard >= {RECALL_AT}: recall", near["recall"], ">=", 0.98),
        ("unrelated pairs flagged", near["unrelated"]["flagged"], "==", 0),
        (f"flagged pairs within {TOLERANCE} of measured", near["within_tolerance"], ">=", 0.95),
        ("inserted boilerplate reported", boilerplate["recall"], ">=", 1.0),
        ("unrelated pairs flagged, with boilerplate", boilerplate["unrelated"]["flagged"], "==", 0),
        ("captures of one article flagged", capture["recall"] if capture else None, ">=", 1.0),
        ("whole pages: flagged like their body alone", pages_like["share"], ">=", 1.0),
        ("whole pages: doubled block found", rows.get("doubled_page", {}).get("recall"), ">=", 1.0),
        ("whole pages: near duplicates of their body", ratio(page_found, page_high), ">=", 1.0),
        ("whole pages rejected (no report)", internal["pages_rejected"]["rejected"], "==", 0),
        (
            f"excerpts: source found at paragraph Jaccard >= {RECALL_AT}",
            excerpt["recall"],
            ">=",
            0.95,
        ),
        ("excerpts: paragraphs linked to one not alike", excerpt["wrong_links"], "==", 0),
        ("excerpts: varying template line boilerplate", excerpt["template_recall"], ">=", 1.0),
        (
            f"groups: a story's copies at Jaccard >= {RECALL_AT} in one group",
            grouped["together_share"],
            ">=",
            0.98,
        ),
        ("groups: canonical is the story's original", grouped["canonical_share"], ">=", 1.0),
        ("groups mixing two stories", grouped["mixed"], "==", 0),
    ]
    return {
        "internal": internal,
        "near": near,
        "boilerplate": boilerplate,
        "excerpt": excerpt,
        "groups": grouped,
        "targets": target_rows(targets),
        "rejected": {g: r.rejected for g, r in runs.items() if r.rejected},
        "failures": {g: r.failures for g, r in runs.items() if r.failures},
        "skipped": dict(case_set.skipped),
    }


def target_rows(targets: list[tuple[str, Any, str, float]]) -> list[dict[str, Any]]:
    """Targets as the JSON lists them: (name, value, operator, wanted) and whether met."""
    return [
        {"target": name, "value": value, "wanted": f"{op} {want}", "met": _met(value, op, want)}
        for name, value, op, want in targets
    ]


def _met(value: float | None, op: str, want: float) -> bool | None:
    if value is None:
        return None
    if op == "<=":
        return bool(value <= want)
    return value >= want if op == ">=" else value == want
