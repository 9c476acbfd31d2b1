"""The paragraphs of recently indexed documents, kept for people to review them.

The index keeps signatures and fingerprints, never text: a million documents must fit in
about a gigabyte. The review pages of ``dedup serve`` need the words, so where the setting
``review_text_days`` asks for it, each worker also keeps the paragraphs of what it indexes,
compressed, for that long; a page about another document shows its structure and excerpts
without the full text.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any, cast

import redis

from dedup.index.keys import Keys
from dedup.servers.connection import IndexClient


def keep(
    pipe: redis.client.Pipeline,
    keys: Keys,
    doc_id: str,
    paragraphs: Sequence[str],
    seconds: int,
) -> None:
    """Queue on ``pipe`` the write of a document's paragraphs (replacing an older version's)."""
    packed = zlib.compress(json.dumps(list(paragraphs), ensure_ascii=False).encode(), 6)
    pipe.set(keys.text(doc_id), packed, ex=seconds)


def paragraphs(client: IndexClient, keys: Keys, doc_id: str) -> list[str] | None:
    """The kept paragraphs of a document, or None when they are not (or no longer) kept."""
    raw = cast("bytes | None", client.get(keys.text(doc_id)))
    if raw is None:
        return None
    try:
        loaded: Any = json.loads(zlib.decompress(raw))
    except (zlib.error, ValueError):
        return None
    if not isinstance(loaded, list) or not all(isinstance(p, str) for p in loaded):
        return None
    return cast("list[str]", loaded)


def forget(client: IndexClient, keys: Keys, doc_ids: Sequence[str]) -> None:
    """Drop the kept paragraphs of deleted documents."""
    if doc_ids:
        client.delete(*(keys.text(doc_id) for doc_id in doc_ids))
