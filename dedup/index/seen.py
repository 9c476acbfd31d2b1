"""What a writer remembers of how many documents hold an entry, to guess a new version's
boilerplate before Redis tells.

A document's signature leaves out its boilerplate paragraphs, and which those are depends on
how many documents hold each paragraph (or a near-copy piece of it): known only once the
write adds the version to those entries (a batch leaves out what was boilerplate before it).
The version is announced before that (its intent names its record, and so its LSH bands,
before any entry names it), so the writer guesses from the counts the entries answered its
earlier writes. A wrong guess costs the batch two more round trips (the intent replaced,
the bands moved: :meth:`dedup.index.writes.Writes._correct`); what is stored is the same
either way. Only counts near the threshold or past it are kept: below, a paragraph cannot be
boilerplate without being seen again on the way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

LIMIT = 1 << 16
"""Entries remembered at most (the oldest forgotten first): the paragraphs a site's pages
share are few, and a guess is only a guess."""


class Seen:
    """Counts of paragraph and piece entries as their last update answered them."""

    def __init__(self, threshold: int, limit: int = LIMIT) -> None:
        self.threshold = threshold
        self.limit = limit
        self.floor = max(1, threshold // 2)
        """Counts below this are not kept."""
        self._counts: dict[int, int] = {}

    def saw(self, key: int, count: int) -> None:
        """What an update of the entry ``key`` answered: ``count`` documents hold it."""
        if count < self.floor:
            self._counts.pop(key, None)
            return
        if key not in self._counts and len(self._counts) >= self.limit:
            del self._counts[next(iter(self._counts))]
        self._counts[key] = count

    def guess(self, keys: Sequence[int], pieces: Sequence[Iterable[int]]) -> frozenset[int]:
        """The paragraphs (by position) likely to be boilerplate for a new version: a
        paragraph's count as last seen (what the batch starts from), plus this version,
        reaches the threshold; or one of its pieces'."""
        at = self.threshold - 1
        counts = self._counts
        if not counts:  # a new writer: nothing is known
            return frozenset()
        return frozenset(
            i
            for i, key in enumerate(keys)
            if counts.get(key, 0) >= at
            or (pieces[i] and any(counts.get(k, 0) >= at for k in pieces[i]))
        )
