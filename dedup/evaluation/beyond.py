"""Beyond English news articles: short texts, structured pages, other languages and scripts.

Three more groups of cases, each in a namespace of its own like the others: ``short``
(:mod:`.short`), ``structured`` (:mod:`.structured`) and ``languages`` (:mod:`.languages`),
made from the files of ``data/``, whatever corpus is evaluated.
They are scored here, per length and number of edits, per page kind and per language, with
targets of their own.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from dedup.evaluation import edits, languages, short, structured
from dedup.evaluation.cases import Case
from dedup.evaluation.metrics import flagged_pairs, ratio, unrelated_pairs
from dedup.evaluation.runner import GroupRun
from dedup.pipeline.analysis import split_words
from dedup.settings import Settings

GROUPS = (short.SHORT, structured.STRUCTURED, languages.LANGUAGES)
SENTENCE_WORDS = (8, 30)
"""Words of the sentences that structured pages take as their own text."""
UNRELATED_SHORT = 0.001
"""Share of unrelated pairs of short texts that may be linked at most."""


def build(seed: int) -> list[Case]:
    """The cases of the three groups, made from the data files alone: no corpus page
    (news, extraction benchmarks' test pages) goes into them."""
    texts = short.paragraphs()
    low, high = SENTENCE_WORDS
    sentences = sorted(
        {s for p in texts for s in edits.sentences(p) if low <= len(edits.words(s)) <= high}
    )
    return short.build(texts, seed) + structured.build(sentences, seed) + languages.build(seed)


def _short(cases: list[Case], run: GroupRun) -> dict[str, Any]:
    cases = [c for c in cases if c.doc_id in run.reports]
    flagged = flagged_pairs(run)
    by_story: dict[int, list[Case]] = defaultdict(list)
    for case in cases:
        by_story[case.story].append(case)
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    similarities = []
    missed: list[dict[str, Any]] = []
    for members in by_story.values():
        if len(members) != 2:
            continue
        source, copy = sorted(members, key=lambda c: c.kind != "source")
        count = len(edits.words(source.content[0]))
        found = frozenset((source.doc_id, copy.doc_id)) in flagged
        if found:
            similarities.append(flagged[frozenset((source.doc_id, copy.doc_id))])
        else:
            missed.append({"source": source.doc_id, "words": count, "edits": copy.edits})
        lengths = next(f"{a}-{b} words" for a, b in short.LENGTHS if a <= count <= b)
        for key in ("all", lengths, f"{len(copy.edits)} edit(s)", *sorted(set(copy.edits))):
            rows[key][0] += 1
            rows[key][1] += found
    unrelated = unrelated_pairs(cases, flagged)
    return {
        "rows": [
            {"kind": key, "pairs": n, "found": k, "recall": ratio(k, n)}
            for key, (n, k) in sorted(rows.items(), key=lambda item: item[0] != "all")
        ],
        "recall": ratio(rows["all"][1], rows["all"][0]),
        "missed": missed[:10],
        "mean_similarity": round(sum(similarities) / len(similarities), 3)
        if similarities
        else None,
        "unrelated": unrelated,
        "unrelated_share": ratio(unrelated["flagged"], unrelated["pairs"]),
    }


def _flags(cases: list[Case], run: GroupRun, key: str) -> dict[str, dict[str, Any]]:
    """Per value of ``key`` (the page kind or the language), per case kind: documents and
    how many were flagged ``doubled_body``."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for case in cases:
        report = run.reports.get(case.doc_id)
        if report is None:
            continue
        counts = out[getattr(case, key)][case.kind]
        counts[0] += 1
        counts[1] += "doubled_body" in report["flags"]
        counts[2] += "internal_repeat" in report["flags"]
    return out


def _structured(cases: list[Case], run: GroupRun) -> dict[str, Any]:
    rows = []
    for kind, counts in _flags(cases, run, "language").items():
        pages, doubled = counts["page"], counts["doubled"]
        rows.append(
            {
                "kind": kind,
                "pages": pages[0],
                "doubled_body": pages[1],
                "internal_repeat": pages[2],
                "pasted_twice": doubled[0],
                "pasted_twice_found": doubled[1],
            }
        )
    return {
        "rows": rows,
        "flagged": sum(r["doubled_body"] for r in rows),
        "pages": sum(r["pages"] for r in rows),
        "doubled_recall": ratio(
            sum(r["pasted_twice_found"] for r in rows), sum(r["pasted_twice"] for r in rows)
        ),
    }


def _unrelated_paragraphs(cases: list[Case], settings: Settings) -> tuple[float, float]:
    """The mean and highest word Jaccard (single words, as paragraph signatures take them)
    of two paragraphs of different texts: how far a word rule keeps unrelated paragraphs
    below ``repeat_threshold``. Splitting a word into pieces, or taking letters for words,
    makes unrelated paragraphs share most of their words."""
    sets = [
        (case.story, set(words))
        for case in cases
        for words in split_words(case.content, settings)
        if words
    ]
    scores = [len(a & b) / len(a | b) for (s, a), (t, b) in combinations(sets, 2) if s != t]
    if not scores:
        return 0.0, 0.0
    return round(sum(scores) / len(scores), 3), round(max(scores), 3)


def _languages(cases: list[Case], run: GroupRun, settings: Settings) -> dict[str, Any]:
    flagged = flagged_pairs(run)
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_story: dict[int, dict[str, str]] = defaultdict(dict)
    for case in cases:
        if case.doc_id in run.reports:
            by_story[case.story][case.kind] = case.doc_id
    language = {c.story: c.language for c in cases}
    similarity: dict[str, list[float]] = defaultdict(list)
    for story, kinds in by_story.items():
        if "original" in kinds and "near_copy" in kinds:
            pair = frozenset((kinds["original"], kinds["near_copy"]))
            found[language[story]][0] += 1
            found[language[story]][1] += pair in flagged
            if pair in flagged:
                similarity[language[story]].append(flagged[pair])
    rows = []
    for code, counts in _flags(cases, run, "language").items():
        single = [counts[k] for k in ("original", "near_copy")]
        doubled = [counts[k] for k in ("doubled", "doubled_edited")]
        mine = [c for c in cases if c.language == code and c.doc_id in run.reports]
        originals = [c for c in cases if c.language == code and c.kind == "original"]
        mean, highest = _unrelated_paragraphs(originals, settings)
        near = similarity[code]
        rows.append(
            {
                "language": code,
                "texts": counts["original"][0],
                "near_recall": ratio(found[code][1], found[code][0]),
                "near_similarity": round(sum(near) / len(near), 3) if near else None,
                "doubled_recall": ratio(sum(d[1] for d in doubled), sum(d[0] for d in doubled)),
                "single_flagged_doubled": sum(s[1] for s in single),
                "single_internal_repeat": sum(s[2] for s in single),
                "unrelated_flagged": unrelated_pairs(mine, flagged)["flagged"],
                "unrelated_paragraphs_mean": mean,
                "unrelated_paragraphs_highest": highest,
            }
        )
    return {
        "rows": rows,
        "near_recall_lowest": min((r["near_recall"] or 0.0 for r in rows), default=None),
        "doubled_recall_lowest": min((r["doubled_recall"] or 0.0 for r in rows), default=None),
        "single_flagged_doubled": sum(r["single_flagged_doubled"] for r in rows),
        "unrelated_flagged": unrelated_pairs(cases, flagged)["flagged"],
        "languages": len(rows),
    }


def score(cases: list[Case], runs: dict[str, GroupRun], settings: Settings) -> dict[str, Any]:
    """The numbers of the three groups, and their targets as :func:`.metrics.score` gives
    them (name, value, operator, wanted)."""
    groups: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        groups[case.group].append(case)
    shorts = _short(groups[short.SHORT], runs[short.SHORT])
    pages = _structured(groups[structured.STRUCTURED], runs[structured.STRUCTURED])
    scripts = _languages(groups[languages.LANGUAGES], runs[languages.LANGUAGES], settings)
    targets = [
        ("short near copies (8-60 words, 1-3 edits): recall", shorts["recall"], ">=", 0.95),
        ("short unrelated pairs linked (share)", shorts["unrelated_share"], "<=", UNRELATED_SHORT),
        ("structured pages flagged doubled_body", pages["flagged"], "==", 0),
        ("structured pages pasted twice: doubled_body recall", pages["doubled_recall"], ">=", 1.0),
        ("languages: near-copy recall, lowest", scripts["near_recall_lowest"], ">=", 0.95),
        ("languages: doubled_body recall, lowest", scripts["doubled_recall_lowest"], ">=", 1.0),
        (
            "languages: single texts flagged doubled_body",
            scripts["single_flagged_doubled"],
            "==",
            0,
        ),
        ("languages: unrelated pairs flagged", scripts["unrelated_flagged"], "==", 0),
    ]
    return {"short": shorts, "structured": pages, "languages": scripts, "targets": targets}
