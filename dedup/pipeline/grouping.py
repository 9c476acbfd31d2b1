"""Duplicate groups: which copy to keep, which to drop. Pure and deterministic.

Near duplicates do not form equivalence classes: A may be like B and B like C while C is
unlike A (a story edited twice over). Joining every pair that matches (connected
components) would pull A and C into one group and call one of them a copy of the other.
Here every member of a group is a duplicate *of the group's canonical* at the threshold in
force:

1. Documents are ranked by the canonical rule (:func:`rank`), the document id last, so the
   order is total and depends on the documents alone, never on the order of a walk.
2. Going down that ranking, the first document not yet in a group becomes a canonical; its
   group is every document not yet in a group whose similarity to it is at least the
   threshold.
3. A document like a member but not like its canonical (C above) is left for later: it
   becomes the canonical of a group of its own when something else is like it, else it stays
   alone, is in no group, and is kept.

The same documents, similarities and rule give the same groups whatever order the documents
were indexed or read in; only the rule "earliest indexed" looks at indexing times, and only
for documents fetched at the same time (or without a fetch time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

RULES = ("earliest", "hosts", "longest")
"""Canonical rules: the earliest fetched (then earliest indexed) copy; the copy from the
first host of a priority list (the publisher before the aggregators), then the earliest;
the copy with the most words, then the earliest."""

FLOOR_PROBABILITY = 0.9
"""A threshold is useful while a pair at exactly that similarity shares an LSH band (and
is compared at all) with at least this probability."""


@dataclass(frozen=True)
class Candidate:
    """What the canonical rules read of a document."""

    doc_id: str
    url: str | None
    fetched_at: str | None
    indexed_at: float
    words: int


def _epoch(fetched_at: str | None) -> float:
    """A fetch time in seconds; documents without one (or with an unreadable one) last."""
    if not fetched_at:
        return math.inf
    try:
        return datetime.fromisoformat(fetched_at).timestamp()
    except ValueError:
        return math.inf


def host_rank(url: str | None, hosts: Sequence[str]) -> int:
    """The place of the URL's host in the priority list (a subdomain counts as its host);
    hosts not listed come after all listed ones."""
    host = (urlsplit(url).hostname or "") if url else ""
    for place, wanted in enumerate(hosts):
        if host == wanted or host.endswith("." + wanted):
            return place
    return len(hosts)


Key = tuple[float, float, float, str]
"""A rank: first what the rule prefers, then fetch time, indexing time, id (lowest wins)."""


def rank(candidate: Candidate, rule: str = "earliest", hosts: Sequence[str] = ()) -> Key:
    """The sort key of the canonical rule: the lowest key is the canonical copy."""
    first: float
    if rule == "hosts":
        first = host_rank(candidate.url, hosts)
    elif rule == "longest":
        first = -candidate.words
    elif rule == "earliest":
        first = 0
    else:
        raise ValueError(f"canonical rule must be one of {', '.join(RULES)}, not {rule!r}")
    return (first, _epoch(candidate.fetched_at), candidate.indexed_at, candidate.doc_id)


def parse_hosts(text: str | Iterable[str]) -> tuple[str, ...]:
    """A host priority list from ``"a.com, b.org"`` (or a list), lower case, in order."""
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    return tuple(h.strip().lower().rstrip(".") for h in items if h.strip())


def groups(
    candidates: Iterable[Candidate],
    similar: Mapping[str, Mapping[str, float]],
    threshold: float,
    rule: str = "earliest",
    hosts: Sequence[str] = (),
    copies: Mapping[str, Sequence[str]] | None = None,
    score: Callable[[str, str], float | None] | None = None,
) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """Groups of at least two documents: the canonical's id and the members (the canonical
    first, at 1.0, then by similarity and id), canonicals in rank order.

    Args:
        candidates: the documents to group.
        similar: for each document, the others it was compared with and their similarity,
            both ways (``similar[a][b] == similar[b][a]``); documents not among
            ``candidates`` are ignored.
        threshold: the similarity from which a document is a duplicate of a canonical.
        copies: for a candidate, the documents with exactly its content (ranked after it):
            they go wherever it goes, at its similarity, so that ten thousand copies of a
            page are ranked and compared as one.
        score: the similarity of two documents not in ``similar`` (None when unknown).
            A canonical that takes a document with copies is scored against the documents
            alike to that document and not taken yet, and takes those at the threshold:
            the matches of a page copied thousands of times are read from samples of its
            holders, so a near copy of it is compared with the page's copies but seldom
            with another near copy that happens to rank first.
    """
    known = {c.doc_id: c for c in candidates}
    order = sorted(known.values(), key=lambda c: rank(c, rule, hosts))
    taken: set[str] = set()
    empty: Mapping[str, float] = {}
    same = copies or {}
    for canonical in order:
        if canonical.doc_id in taken:
            continue
        taken.add(canonical.doc_id)
        members = [
            (other, score)
            for other, score in similar.get(canonical.doc_id, empty).items()
            if score >= threshold and other in known and other not in taken
        ]
        taken.update(doc for doc, _ in members)
        if score is not None:
            members += _through_copies(
                canonical.doc_id, members, similar, same, known, taken, threshold, score
            )
        members += [(doc, 1.0) for doc in same.get(canonical.doc_id, ())]
        members += [(doc, score) for other, score in list(members) for doc in same.get(other, ())]
        if members:
            members.sort(key=lambda m: (-m[1], m[0]))
            yield canonical.doc_id, [(canonical.doc_id, 1.0), *members]


def _through_copies(
    canonical: str,
    members: list[tuple[str, float]],
    similar: Mapping[str, Mapping[str, float]],
    same: Mapping[str, Sequence[str]],
    known: Mapping[str, Candidate],
    taken: set[str],
    threshold: float,
    score: Callable[[str, str], float | None],
) -> list[tuple[str, float]]:
    """The documents alike to a member with copies, not taken yet, that are alike to the
    canonical itself; they are taken."""
    found, tried = [], set()
    for member, _ in members:
        if not same.get(member):
            continue
        for other in similar.get(member, {}):
            if other in known and other not in taken and other not in tried:
                tried.add(other)
                alike = score(canonical, other)
                if alike is not None and alike >= threshold:
                    found.append((other, alike))
                    taken.add(other)
    return found


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """The probability that a pair at this Jaccard similarity shares at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def threshold_floor(bands: int, rows: int, probability: float = FLOOR_PROBABILITY) -> float:
    """The lowest threshold (to 0.01) at which the band shape still compares a pair at that
    similarity with ``probability``: below it, groups miss more and more of their copies."""
    for step in range(1, 101):
        if candidate_probability(step / 100, bands, rows) >= probability:
            return step / 100
    return 1.0
