"""Every Redis key dedup writes, named in one place under a configurable namespace.

Keys of the index carry the hash tag of their shard (:class:`dedup.index.layout.Shards`):
on a Redis Cluster every key one script touches is in one slot, and the scripts are handed
every key they touch, named here; none is built in Lua. The layout of what the keys hold is
described in :mod:`dedup.index.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from dedup.index.layout import RECORDS_PER_BUCKET, Family, Shards

FLAGS = ("doubled_body", "internal_repeat", "exact_duplicate", "near_duplicate", "boilerplate")
"""The flag vocabulary of reports, in the order reports list them."""


METRIC_PARTS = 16
"""Parts the workers' figures are kept in (fewer when the index has fewer shards)."""


def _escaped(text: str) -> str:
    """Text with the glob characters of SCAN patterns escaped."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True)
class Keys:
    """Key names for one namespace, cut into ``shards``."""

    namespace: str
    shards: Shards = field(default_factory=Shards)

    @property
    def pattern(self) -> str:
        """SCAN pattern of every key of the namespace (glob characters in its name escaped)."""
        return f"{_escaped(self.namespace)}:*"

    def family_pattern(self, family: Family) -> str:
        """SCAN pattern of the entry hashes and overflow sets of one family."""
        return f"{_escaped(self.namespace)}:{{*}}:{family.name}.*"

    @property
    def meta(self) -> str:
        """Hash: the signature settings the index was built with (read once per process)."""
        return f"{self.namespace}:meta"

    def _shard(self, shard: int) -> str:
        return _shard_prefixes(self.namespace, self.shards.count)[shard]

    def counters(self, shard: int) -> str:
        """Hash: a shard's running totals (documents, paragraphs, distinct paragraphs), the
        last position given to a version, and the lowest that may still hold a record (a
        purge raises it)."""
        return f"{self._shard(shard)}:counters"

    def intents(self, shard: int) -> str:
        """Hash: serial → the intent of a write in flight or owing work, in one shard."""
        return f"{self._shard(shard)}:w"

    def reply(self, shard: int, call: str) -> str:
        """String, expiring: the reply of one call of a writing script in a shard, kept so
        that the call sent again after a lost reply answers the same and changes nothing
        (:func:`dedup.index.scripts.script_call`)."""
        return f"{self._shard(shard)}:once:{call}"

    def records(self, serial: int) -> str:
        """Hash: serial → packed record, for :data:`RECORDS_PER_BUCKET` consecutive
        positions of the serial's shard."""
        position = self.shards.position(serial)
        return f"{self._shard(self.shards.of(serial))}:r:{position // RECORDS_PER_BUCKET}"

    def flag(self, name: str, shard: int) -> str:
        """Bitmap: bit ``position`` is set when that version of the shard carries the flag."""
        return f"{self._shard(shard)}:flag:{name}"

    def entry(self, family: Family, shard: int, bucket: int) -> str:
        """Hash: one bucket of a family of index entries (LSH bands, paragraphs...) in a
        shard, numbered as :func:`dedup.index.splits.address` numbers them."""
        return self.entry_prefixes(family)[shard] + str(bucket)

    def entry_prefixes(self, family: Family) -> tuple[str, ...]:
        """By shard, what the entry hashes of a family start with: :meth:`entry` is the
        prefix of the bucket's shard followed by the bucket's number (for code that names
        thousands of entries a batch)."""
        return _entry_prefixes(self.namespace, family.name, self.shards.count)

    def overflow(self, family: Family, key: int) -> str:
        """Set: the serials of an entry held by many documents (same slot as its hash),
        named by the entry's key, so that it stays where it is when its bucket splits."""
        shard = self.shards.of_key(family, key)
        return f"{self.entry_prefixes(family)[shard]}o:{family.prefix(key):x}"

    @staticmethod
    def depth_fields(family: Family) -> tuple[str, str, str]:
        """The fields of a shard's counters that say how far a family's hashes have split
        (:class:`dedup.index.splits.Depth`) and how many fields they hold."""
        return f"{family.name}.depth", f"{family.name}.split", f"{family.name}.fields"

    def text(self, doc_id: str) -> str:
        """String, expiring: a document's paragraphs for review (:mod:`dedup.index.texts`)."""
        return f"{self.namespace}:text:{doc_id}"

    def worker_metrics(self, part: int) -> str:
        """Hash: one part of the workers' running counts and latency buckets
        (:mod:`dedup.queue.metrics`), in the first index shard of the part's share of them:
        every job writes one part, so no key is written by every job."""
        step = self.shards.count // self.metric_parts
        return f"{self._shard(part * step)}:worker-metrics"

    @property
    def metric_parts(self) -> int:
        """How many parts the workers' figures are kept in."""
        return min(METRIC_PARTS, self.shards.count)

    @property
    def legacy_worker_metrics(self) -> str:
        """Hash: the workers' figures as one key kept them before the parts (still read)."""
        return f"{self.namespace}:worker-metrics"


@cache
def _shard_prefixes(namespace: str, shards: int) -> tuple[str, ...]:
    return tuple(f"{namespace}:{{{tag}}}" for tag in Shards(shards).tags)


@cache
def _entry_prefixes(namespace: str, family: str, shards: int) -> tuple[str, ...]:
    return tuple(f"{namespace}:{{{tag}}}:{family}." for tag in Shards(shards).tags)
