"""Every Redis key dedup writes, named in one place under a configurable namespace.

Keys of the index carry the hash tag of their group (:class:`dedup.index.layout.Groups`):
on a Redis Cluster every key one script touches is in one slot, and the scripts are handed
every key they touch, named here; none is built in Lua. The layout of what the keys hold is
described in :mod:`dedup.index.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from dedup.index.layout import RECORDS_PER_BUCKET, Family, Groups

FLAGS = ("doubled_body", "internal_repeat", "exact_duplicate", "near_duplicate", "boilerplate")
"""The flag vocabulary of reports, in the order reports list them."""


METRIC_SHARDS = 16
"""Shards of the workers' figures (fewer when the index has fewer groups)."""


def _escaped(text: str) -> str:
    """Text with the glob characters of SCAN patterns escaped."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True)
class Keys:
    """Key names for one namespace, cut into ``groups``."""

    namespace: str
    groups: Groups = field(default_factory=Groups)

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
        return _group_prefixes(self.namespace, self.groups.count)[group]

    def counters(self, group: int) -> str:
        """Hash: a group's running totals (documents, paragraphs, distinct paragraphs), the
        last position given to a version, and the lowest that may still hold a record (a
        purge raises it)."""
        return f"{self._group(group)}:counters"

    def intents(self, group: int) -> str:
        """Hash: serial → the intent of a write in flight or owing work, in one group."""
        return f"{self._group(group)}:w"

    def reply(self, group: int, call: str) -> str:
        """String, expiring: the reply of one call of a writing script in a group, kept so
        that the call sent again after a lost reply answers the same and changes nothing
        (:func:`dedup.index.scripts.script_call`)."""
        return f"{self._group(group)}:once:{call}"

    def records(self, serial: int) -> str:
        """Hash: serial → packed record, for :data:`RECORDS_PER_BUCKET` consecutive
        positions of the serial's group."""
        position = self.groups.position(serial)
        return f"{self._group(self.groups.of(serial))}:r:{position // RECORDS_PER_BUCKET}"

    def flag(self, name: str, group: int) -> str:
        """Bitmap: bit ``position`` is set when that version of the group carries the flag."""
        return f"{self._group(group)}:flag:{name}"

    def entry(self, family: Family, bucket: int) -> str:
        """Hash: one bucket of a family of index entries (LSH bands, paragraphs...)."""
        return self.entry_prefixes(family)[self.groups.of_bucket(family, bucket)] + str(bucket)

    def entry_prefixes(self, family: Family) -> tuple[str, ...]:
        """By group, what the entry hashes of a family start with: :meth:`entry` is the
        prefix of the bucket's group followed by the bucket's number (for code that names
        thousands of entries a batch)."""
        return _entry_prefixes(self.namespace, family.name, self.groups.count)

    def overflow(self, family: Family, bucket: int, field: bytes) -> str:
        """Set: the serials of an entry held by many documents (same slot as its hash)."""
        return overflow_of(self.entry(family, bucket), field)

    def text(self, doc_id: str) -> str:
        """String, expiring: a document's paragraphs for review (:mod:`dedup.index.texts`)."""
        return f"{self.namespace}:text:{doc_id}"

    def worker_metrics(self, shard: int) -> str:
        """Hash: one shard of the workers' running counts and latency buckets
        (:mod:`dedup.queue.metrics`), in the group that starts the shard's share of the
        groups: every job writes one shard, so no key is written by every job."""
        step = self.groups.count // self.metric_shards
        return f"{self._group(shard * step)}:worker-metrics"

    @property
    def metric_shards(self) -> int:
        """How many shards the workers' figures are kept in."""
        return min(METRIC_SHARDS, self.groups.count)

    @property
    def legacy_worker_metrics(self) -> str:
        """Hash: the workers' figures as one key kept them before the shards (still read)."""
        return f"{self.namespace}:worker-metrics"


@cache
def _group_prefixes(namespace: str, groups: int) -> tuple[str, ...]:
    return tuple(f"{namespace}:{{{tag}}}" for tag in Groups(groups).tags)


@cache
def _entry_prefixes(namespace: str, family: str, groups: int) -> tuple[str, ...]:
    return tuple(f"{namespace}:{{{tag}}}:{family}:" for tag in Groups(groups).tags)


def overflow_of(entry: str, field: bytes) -> str:
    """The overflow set of the entry ``field`` of the entry hash named ``entry``."""
    return f"{entry}:{field.hex()}"
