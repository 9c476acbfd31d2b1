"""Every Redis key dedup writes, named in one place under a configurable namespace.

Keys of the index carry the hash tag of their group (:func:`dedup.index.layout.group_tags`):
on a Redis Cluster every key one script touches is in one slot, and the scripts are handed
every key they touch, named here; none is built in Lua. The layout of what the keys hold is
described in :mod:`dedup.index.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dedup.index.layout import (
    RECORDS_PER_BUCKET,
    Family,
    group_of,
    group_tags,
    position_of,
)

FLAGS = ("doubled_body", "internal_repeat", "exact_duplicate", "near_duplicate", "boilerplate")
"""The flag vocabulary of reports, in the order reports list them."""


def _escaped(text: str) -> str:
    """Text with the glob characters of SCAN patterns escaped."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True)
class Keys:
    """Key names for one namespace."""

    namespace: str

    @property
    def pattern(self) -> str:
        """SCAN pattern of every key of the namespace (glob characters in its name escaped)."""
        return f"{_escaped(self.namespace)}:*"

    def family_pattern(self, family: Family) -> str:
        """SCAN pattern of the entry hashes and overflow sets of one family."""
        return f"{_escaped(self.namespace)}:{{*}}:{family.name}:*"

    @property
    def meta(self) -> str:
        """Hash: the signature settings the index was built with (read once per process)."""
        return f"{self.namespace}:meta"

    def _group(self, group: int) -> str:
        return f"{self.namespace}:{{{group_tags()[group]}}}"

    def counters(self, group: int) -> str:
        """Hash: a group's running totals (documents, paragraphs, distinct paragraphs, and
        the last position given to a version)."""
        return f"{self._group(group)}:counters"

    def intents(self, group: int) -> str:
        """Hash: serial → the intent of a write in flight or owing work, in one group."""
        return f"{self._group(group)}:w"

    def records(self, serial: int) -> str:
        """Hash: serial → packed record, for :data:`RECORDS_PER_BUCKET` consecutive
        positions of the serial's group."""
        group = group_of(serial)
        return f"{self._group(group)}:r:{position_of(serial) // RECORDS_PER_BUCKET}"

    def flag(self, name: str, group: int) -> str:
        """Bitmap: bit ``position`` is set when that version of the group carries the flag."""
        return f"{self._group(group)}:flag:{name}"

    def entry(self, family: Family, bucket: int) -> str:
        """Hash: one bucket of a family of index entries (LSH bands, paragraphs...)."""
        return f"{self._group(family.group(bucket))}:{family.name}:{bucket}"

    def overflow(self, family: Family, bucket: int, field: bytes) -> str:
        """Set: the serials of an entry held by many documents (same slot as its hash)."""
        return f"{self.entry(family, bucket)}:{field.hex()}"

    def text(self, doc_id: str) -> str:
        """String, expiring: a document's paragraphs for review (:mod:`dedup.index.texts`)."""
        return f"{self.namespace}:text:{doc_id}"

    @property
    def worker_metrics(self) -> str:
        """Hash: the workers' running counts and latency buckets (:mod:`dedup.queue.metrics`)."""
        return f"{self.namespace}:worker-metrics"
