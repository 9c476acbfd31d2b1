"""Content repeated inside one document: runs of paragraphs that appear again later.

Extractor and template bugs paste an article body twice into one page; a run of paragraphs
and its later copy are found by pairing similar paragraphs (equal fingerprints, or paragraph
signatures over a threshold) and chaining pairs that advance together. A chain may skip a
paragraph on either side, so a copy with a dropped or inserted paragraph is still one run.

Pages also repeat by design: a product grid's delivery line under every item, a schedule's
daily bulletins, a questionnaire's answer scale, a meal plan's headings for each plan. Such
repetition is a template around content of the page's own, and every run is reported, but
only a run of paragraphs that comes back whole counts towards ``doubled_body``
(:func:`_is_structure`).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from dedup.pipeline import kernel

MAX_GAP = 2
"""A run may step over this many paragraphs minus one on either side."""
MIN_RUN_WORDS = 10
"""A run whose matched paragraphs have fewer words is template noise ("Advertisement")."""
DOUBLED_SHARE = 0.5
"""``doubled_body`` when the repeated words are at least this share of the unique words."""
_GROUP_LIMIT = 32  # paragraphs sharing one fingerprint beyond this pair only with neighbours
_BAND_ROWS = 4
_BAND_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)
_BAND_SALT = np.uint64(0x9FB21C651E98DF25)


@dataclass(frozen=True)
class Repeat:
    """Paragraphs ``first`` (inclusive 0-based range) appear again as ``repeat``."""

    first: tuple[int, int]
    repeat: tuple[int, int]
    similarity: float


@dataclass(frozen=True)
class Repeats:
    """All repeats of one document and what they add up to."""

    runs: list[Repeat]
    duplicate_fraction: float
    doubled_body: bool


@dataclass
class _Run:
    i0: int
    j0: int
    i1: int
    j1: int
    sims: list[float] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)
    copies: list[int] = field(default_factory=list)
    """The paragraphs of the second range matched to ``matched``, in the same order."""
    dropped: list[int] = field(default_factory=list)
    """Paragraphs of the first range its copy left out (the run stepped over them alone)."""


def _similar_pairs(
    fingerprints: Sequence[int],
    signatures: npt.NDArray[np.uint32],
    signed: Sequence[bool],
    threshold: float,
) -> dict[tuple[int, int], float]:
    """Pairs ``(i, j)``, ``i < j``, of similar paragraphs with their similarity."""
    pairs: dict[tuple[int, int], float] = {}
    if len(set(fingerprints)) < len(fingerprints):
        groups: dict[int, list[int]] = defaultdict(list)
        for index, fp in enumerate(fingerprints):
            groups[fp].append(index)
        for members in groups.values():
            if len(members) > _GROUP_LIMIT:
                for i, j in itertools.pairwise(members):
                    pairs[(i, j)] = 1.0
                continue
            for n, i in enumerate(members):
                for j in members[n + 1 :]:
                    pairs[(i, j)] = 1.0
    # Near copies: candidates from in-memory LSH bands of the paragraph signatures. A
    # candidate with a different fingerprint cannot be in ``pairs`` yet, which holds exact
    # copies only.
    rows = np.flatnonzero(signed)
    if len(rows) < 2:
        return pairs
    first, second, scores = _near_pairs(fingerprints, signatures, rows, threshold)
    for i, j, score in zip(first.tolist(), second.tolist(), scores.tolist(), strict=True):
        pairs[(i, j)] = score
    return pairs


def _near_pairs(
    fingerprints: Sequence[int],
    signatures: npt.NDArray[np.uint32],
    rows: npt.NDArray[np.intp],
    threshold: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The near copies among the pairs the kernel's ``repeat_runs`` chains, with numpy: the
    pairs ``(i, j)`` of ``rows`` sharing a band key, with different fingerprints and a share
    of equal values of at least ``threshold``, sorted, and those shares."""
    none = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    # Each band folded into one 64-bit key, so that all bands of all paragraphs are grouped
    # by one sort.
    num_perm = signatures.shape[1]
    bands = num_perm // _BAND_ROWS
    block = signatures[rows].astype(np.uint64)
    keys = block[:, 0 : bands * _BAND_ROWS : _BAND_ROWS] * _BAND_MIX[0]
    for position in range(1, _BAND_ROWS):
        keys += block[:, position : bands * _BAND_ROWS : _BAND_ROWS] * _BAND_MIX[position]
    keys ^= np.arange(bands, dtype=np.uint64) * _BAND_SALT
    flat = keys.ravel()
    # Most documents repeat nothing: their bands are all distinct, and a sort tells so.
    sorted_keys = np.sort(flat)
    if not (sorted_keys[1:] == sorted_keys[:-1]).any():
        return none
    order = np.argsort(flat)  # the order inside a group does not matter: pairs are sorted
    owners = np.repeat(rows, bands)[order]
    sorted_keys = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    lengths = np.diff(np.append(starts, len(flat)))
    shared = (lengths >= 2) & (lengths <= _GROUP_LIMIT)
    if not shared.any():
        return none
    # A pair of similar paragraphs shares many bands: pairs of groups of two (nearly all) are
    # taken in one numpy pass, and each candidate is scored once.
    group_starts, group_lengths = starts[shared], lengths[shared]
    two = group_starts[group_lengths == 2]
    first = np.minimum(owners[two], owners[two + 1])
    second = np.maximum(owners[two], owners[two + 1])
    larger = group_lengths > 2
    if larger.any():
        larger_groups = {
            tuple(sorted(owners[start : start + length].tolist()))
            for start, length in zip(
                group_starts[larger].tolist(), group_lengths[larger].tolist(), strict=True
            )
        }
        more = [(i, j) for members in larger_groups for i, j in itertools.combinations(members, 2)]
        first = np.concatenate((first, np.array([i for i, _ in more], dtype=np.int64)))
        second = np.concatenate((second, np.array([j for _, j in more], dtype=np.int64)))
    prints = np.array(fingerprints, dtype=np.uint64)
    differ = prints[first] != prints[second]
    if not differ.any():
        return none
    count = len(fingerprints)
    first, second = np.divmod(np.unique(first[differ] * count + second[differ]), count)
    scores = np.count_nonzero(signatures[first] == signatures[second], axis=1) / num_perm
    close = scores >= threshold
    return first[close], second[close], scores[close]


def _chain(pairs: dict[tuple[int, int], float]) -> list[_Run]:
    """Chain pairs that advance together on both sides into runs."""
    runs: list[_Run] = []
    ends: dict[tuple[int, int], _Run] = {}
    for (i, j), score in sorted(pairs.items()):
        best: _Run | None = None
        for di in range(1, MAX_GAP + 1):
            for dj in range(1, MAX_GAP + 1):
                run = ends.get((i - di, j - dj))
                if (
                    run is not None
                    and i < run.j0
                    and (best is None or len(run.sims) > len(best.sims))
                ):
                    best = run
        if best is None:
            best = _Run(i, j, i, j)
            runs.append(best)
        else:
            del ends[(best.i1, best.j1)]
            if i - best.i1 == 2 and j - best.j1 == 1:
                best.dropped.append(i - 1)
            best.i1, best.j1 = i, j
        best.sims.append(score)
        best.matched.append(i)
        best.copies.append(j)
        ends[(i, j)] = best
    return runs


@dataclass(frozen=True)
class _Claims:
    """What the chosen runs of a document hold together, made once for all of them."""

    claimed: set[int]
    """The paragraphs a chosen run matches, copies or counts as left out."""
    copies: Counter[int]
    """How many chosen runs match each paragraph."""
    inside_copies: set[int]
    """The paragraphs inside the copy of a chosen run."""

    @classmethod
    def of(cls, chosen: list[_Run]) -> _Claims:
        return cls(
            {k for other in chosen for k in other.matched + other.copies + other.dropped},
            Counter(i for other in chosen for i in other.matched),
            {k for other in chosen for k in range(other.j0, other.j1 + 1)},
        )


def _is_structure(run: _Run, claims: _Claims, word_counts: Sequence[int]) -> bool:
    """Whether a run is the page's template filled with content of its own rather than a body
    (or part of one) that comes back whole.

    Content of its own is the words of paragraphs that no chosen run matches, on either side,
    nor counts as left out. A run is template when

    - inside its two ranges, such paragraphs (stepped over on both sides) hold at least as
      many words as the paragraphs it matches: sections that repeat their labels around text
      of their own (a questionnaire's answer scale, a meal plan's headings); or
    - it comes back more than once (most of its matched words have two copies or more) with
      such paragraphs between its first range and its copy: a template line recurring around
      items of their own (a grid's delivery line, a schedule's daily bulletins). A body
      pasted two or three times has nothing of its own between its copies.
    """
    claimed = claims.claimed
    shared = sum(word_counts[i] for i in run.matched)
    spans = itertools.chain(range(run.i0, run.i1 + 1), range(run.j0, run.j1 + 1))
    if sum(word_counts[k] for k in spans if k not in claimed) >= shared:
        return True
    if 2 * sum(word_counts[i] for i in run.matched if claims.copies[i] > 1) < shared:
        return False
    # the paragraphs between that another copy steps over are part of that copy
    between = range(run.i1 + 1, run.j0)
    return any(
        word_counts[k] for k in between if k not in claimed and k not in claims.inside_copies
    )


def find_repeats(
    fingerprints: Sequence[int] | npt.NDArray[np.uint64],
    signatures: npt.NDArray[np.uint32],
    signed: Sequence[bool] | npt.NDArray[np.bool_],
    word_counts: Sequence[int],
    threshold: float,
) -> Repeats:
    """Find the runs of paragraphs that reappear later in the same document.

    Args:
        fingerprints: exact fingerprint of each paragraph.
        signatures: one paragraph signature per row (rows with ``signed`` false are ignored).
        signed: whether each paragraph is long enough to have a signature.
        word_counts: words in each paragraph.
        threshold: paragraph similarity from which two paragraphs are the same.

    Returns:
        The runs, largest first claim on each repeated paragraph; the share of paragraphs
        that are repeats; whether the body (or most of it) appears twice.
    """
    total = len(fingerprints)
    if total < 2:
        return Repeats([], 0.0, False)
    compiled = kernel.compiled
    if compiled is None:
        prints, rows = np.asarray(fingerprints).tolist(), np.asarray(signed).tolist()
        chosen, claimed = _chosen_runs(
            _chain(_similar_pairs(prints, signatures, rows, threshold)), word_counts
        )
    else:
        claimed, found = compiled.repeat_runs(
            np.ascontiguousarray(signatures, dtype=np.uint32),
            signatures.shape[1],
            np.flatnonzero(signed).astype(np.int64, copy=False),
            np.asarray(fingerprints, dtype=np.uint64),
            np.array(word_counts, dtype=np.int64),
            _BAND_MIX,
            int(_BAND_SALT),
            _GROUP_LIMIT,
            threshold,
            MAX_GAP,
            MIN_RUN_WORDS,
        )
        chosen = [_Run(*run) for run in found]
    if not chosen:  # most documents: nothing claimed, nothing to weigh
        return Repeats([], 0.0, False)
    chosen.sort(key=lambda r: (r.j0, r.i0))
    result = [
        Repeat(
            first=(run.i0, run.i1),
            repeat=(run.j0, run.j1),
            similarity=round(sum(run.sims) / max(run.i1 - run.i0 + 1, run.j1 - run.j0 + 1), 3),
        )
        for run in chosen
    ]
    # Only paragraphs that found their copy, or that the copy left out, count: paragraphs a
    # run steps over on both sides are not copies (a questionnaire repeats its questions, not
    # the answers between them). Runs that are the page's template count not at all.
    claims = _Claims.of(chosen)
    counted = [run for run in chosen if not _is_structure(run, claims, word_counts)]
    repeated_words = sum(word_counts[i] for run in counted for i in run.matched + run.dropped)
    unique_words = sum(word_counts) - repeated_words
    doubled = repeated_words >= DOUBLED_SHARE * max(unique_words, 1)
    return Repeats(result, round(float(claimed) / total, 4), doubled)


def _chosen_runs(runs: list[_Run], word_counts: Sequence[int]) -> tuple[list[_Run], int]:
    """The runs that claim the paragraphs of their copy, longest first, and how many
    paragraphs they claim: a run whose matched words are template noise claims nothing, nor
    one whose copy is claimed already or whose first range is all copies."""
    runs.sort(key=lambda r: (-len(r.sims), r.i0, r.j0))
    taken = np.zeros(len(word_counts), dtype=bool)
    chosen: list[_Run] = []
    for run in runs:
        if sum(word_counts[i] for i in run.matched) < MIN_RUN_WORDS:
            continue
        if taken[run.j0 : run.j1 + 1].any() or taken[run.i0 : run.i1 + 1].all():
            continue
        taken[run.j0 : run.j1 + 1] = True
        chosen.append(run)
    return chosen, int(taken.sum())
