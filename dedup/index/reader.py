"""The read side of the index below duplicate groups: records, reports without their group,
lists and counts. :class:`dedup.index.reads.Reads` adds each report's group, which
:mod:`dedup.index.groups` finds by reading through this class."""

from __future__ import annotations

from dedup.index.lists import Lists
from dedup.index.reports import Reports


class Reader(Reports, Lists):
    """What :mod:`dedup.index.groups` and :mod:`dedup.index.matching` read through: settings,
    key names and records (:class:`dedup.index.access.Access`), reports
    (:class:`dedup.index.reports.Reports`), lists and counts
    (:class:`dedup.index.lists.Lists`)."""
