"""Every Redis key dedup writes, named in one place under a configurable namespace.

Keep all naming here: when the index moves to a Redis Cluster, hash tags are added in this
module alone.
"""

from __future__ import annotations

from dataclasses import dataclass

FLAGS = ("doubled_body", "internal_repeat", "exact_duplicate", "near_duplicate", "boilerplate")
"""The flag vocabulary of reports, in the order reports list them."""


@dataclass(frozen=True)
class Keys:
    """Key names for one namespace."""

    namespace: str

    @property
    def meta(self) -> str:
        """Hash: the signature settings the index was built with."""
        return f"{self.namespace}:meta"

    @property
    def counters(self) -> str:
        """Hash: running totals (paragraphs, distinct paragraphs)."""
        return f"{self.namespace}:counters"

    @property
    def documents(self) -> str:
        """Sorted set: document id → time it was (last) indexed."""
        return f"{self.namespace}:docs"

    @property
    def document_prefix(self) -> str:
        """Prefix of the per-document hashes (used by the Lua script)."""
        return f"{self.namespace}:doc:"

    def document(self, doc_id: str) -> str:
        """Hash: one document's signature, fingerprints, URL and stored report."""
        return f"{self.document_prefix}{doc_id}"

    def band(self, band: int, digest: str) -> str:
        """Set: ids of the documents whose signature has this digest in this LSH band."""
        return f"{self.namespace}:lsh:{band}:{digest}"

    def paragraph(self, fingerprint: int) -> str:
        """Set: ids of the documents that contain a paragraph with this fingerprint."""
        return f"{self.namespace}:para:{fingerprint:016x}"

    def content(self, content_hash: str) -> str:
        """Set: ids of the documents with exactly this normalised content."""
        return f"{self.namespace}:content:{content_hash}"

    def flag(self, name: str) -> str:
        """Sorted set: ids of the documents carrying this flag → when it was raised."""
        return f"{self.namespace}:flag:{name}"
