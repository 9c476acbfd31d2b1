"""Every Redis key dedup writes, named in one place under a configurable namespace.

Keep all naming here: when the index moves to a Redis Cluster, hash tags are added in this
module alone. The layout of what the keys hold is described in :mod:`dedup.index.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dedup.index.layout import RECORDS_PER_BUCKET, Family

FLAGS = ("doubled_body", "internal_repeat", "exact_duplicate", "near_duplicate", "boilerplate")
"""The flag vocabulary of reports, in the order reports list them."""


@dataclass(frozen=True)
class Keys:
    """Key names for one namespace."""

    namespace: str

    @property
    def pattern(self) -> str:
        """SCAN pattern of every key of the namespace (glob characters in its name escaped)."""
        escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.namespace)
        return f"{escaped}:*"

    @property
    def meta(self) -> str:
        """Hash: the signature settings the index was built with."""
        return f"{self.namespace}:meta"

    @property
    def counters(self) -> str:
        """Hash: running totals (documents, paragraphs, distinct paragraphs, last serial)."""
        return f"{self.namespace}:counters"

    @property
    def record_prefix(self) -> str:
        """Prefix of the hashes of records; the scripts append the bucket number."""
        return f"{self.namespace}:r:"

    def records(self, serial: int) -> str:
        """Hash: serial → packed record, for :data:`RECORDS_PER_BUCKET` consecutive serials."""
        return f"{self.record_prefix}{serial // RECORDS_PER_BUCKET}"

    def entry_prefix(self, family: Family) -> str:
        """Prefix of the hashes of one family of index entries (LSH bands, paragraphs...).

        ``<prefix><bucket>`` is a hash of entries; ``<prefix><bucket>:<field in hex>`` the
        set of serials of an entry held by many documents.
        """
        return f"{self.namespace}:{family.name}:"

    def text(self, doc_id: str) -> str:
        """String, expiring: a document's paragraphs for review (:mod:`dedup.index.texts`)."""
        return f"{self.namespace}:text:{doc_id}"

    @property
    def worker_metrics(self) -> str:
        """Hash: the workers' running counts and latency buckets (:mod:`dedup.queue.metrics`)."""
        return f"{self.namespace}:worker-metrics"

    def flag(self, name: str) -> str:
        """Bitmap: bit ``serial`` is set when that document version carries this flag."""
        return f"{self.namespace}:flag:{name}"
