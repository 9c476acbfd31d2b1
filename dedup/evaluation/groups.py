"""Duplicate groups scored on the near cases: each story's copies in one group, its original
the canonical copy, no group holding two stories.

``dedup groups`` turns pairs into decisions (keep the canonical, drop the rest), so a pair
found is not enough: the copies must land in the group of their original, and the original
must be the one kept. The cases say what is right:

- a story's *original* is the body of its first article; it is fetched before every other
  document of the story (:mod:`.cases`), so the ``earliest`` rule must make it the canonical;
- its *copies* are the documents of the story whose article text is at least ``at`` alike
  (Jaccard of 3-word shingles) to the original's: the pairs the pair recall counts, each of
  which a user wants dropped in favour of the original;
- a group whose members come from two stories is wrong whatever else holds.

Documents of a story under ``at`` may join its group or stay out: either is right.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dedup.evaluation.cases import Case
from dedup.evaluation.corpus import jaccard, shingles
from dedup.evaluation.runner import GroupRun
from dedup.report import Group

EXAMPLES = 10
"""Stories or groups listed per kind of miss in the JSON."""


def _originals(cases: list[Case]) -> dict[int, Case]:
    """Each story's original: the body of its first article."""
    originals: dict[int, Case] = {}
    for case in cases:
        if case.kind != "original":
            continue
        known = originals.get(case.story)
        if known is None or case.article < known.article:
            originals[case.story] = case
    return originals


def _copies(cases: list[Case], originals: dict[int, Case], at: float) -> dict[int, list[str]]:
    """Per story, the documents at least ``at`` alike to its original (by article text)."""
    texts = {story: shingles(c.content) for story, c in originals.items()}
    copies: dict[int, list[str]] = defaultdict(list)
    for case in cases:
        original = originals.get(case.story)
        if original is None or case is original:
            continue
        if jaccard(shingles(case.content), texts[case.story]) >= at:
            copies[case.story].append(case.doc_id)
    return dict(copies)


def score(cases: list[Case], run: GroupRun, at: float) -> dict[str, Any]:
    """How the groups of the near cases' namespace hold their stories.

    Args:
        cases: the near cases.
        run: their run, with the groups read as ``dedup groups`` reads them.
        at: the article-text Jaccard from which a document must be in its original's group.
    """
    indexed = [c for c in cases if c.doc_id in run.reports]
    story_of = {c.doc_id: c.story for c in indexed}
    originals = _originals(indexed)
    copies = _copies(indexed, originals, at)
    group_of: dict[str, Group] = {m["doc_id"]: g for g in run.groups for m in g["members"]}
    together = right = 0
    split: list[dict[str, Any]] = []
    wrong: list[dict[str, Any]] = []
    for story, docs in sorted(copies.items()):
        original = originals[story].doc_id
        group = group_of.get(original)
        outside = [d for d in docs if group is None or group_of.get(d) is not group]
        if group is None or outside:
            if len(split) < EXAMPLES:
                split.append({"original": original, "copies": len(docs), "outside": outside})
            continue
        together += 1
        if group["canonical"] == original:
            right += 1
        elif len(wrong) < EXAMPLES:
            wrong.append({"original": original, "canonical": group["canonical"]})
    mixed = [
        g for g in run.groups if len({story_of.get(m["doc_id"], -1) for m in g["members"]}) > 1
    ]
    return {
        "at": at,
        "groups": len(run.groups),
        "members": sum(len(g["members"]) for g in run.groups),
        "stories": len(copies),
        "copies": sum(len(d) for d in copies.values()),
        "together": together,
        "together_share": _ratio(together, len(copies)),
        "split": split,
        "canonical_right": right,
        "canonical_share": _ratio(right, together),
        "wrong_canonical": wrong,
        "mixed": len(mixed),
        "mixed_examples": [
            {"group": g["group"], "members": [m["doc_id"] for m in g["members"]]}
            for g in mixed[:EXAMPLES]
        ],
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
