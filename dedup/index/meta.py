"""The signature settings an index records at its first write, which every writer must share."""

from __future__ import annotations

import json
from importlib import metadata
from typing import cast

import redis

from dedup.errors import SettingsMismatchError
from dedup.index import layout
from dedup.index.access import SHARDS_FIELD, check_format, recorded_shards, store_error
from dedup.pipeline import signature
from dedup.servers.connection import IndexClient
from dedup.settings import Settings


def signature_settings(settings: Settings, shards: int) -> dict[str, str]:
    """What a stored signature depends on: writers with other values must not mix in.

    ``near_paragraphs`` and ``script_words`` are named only when on, and
    ``short_document_words`` only when not 0, so an index built before such a setting
    existed (or with it off) has the same settings as a writer with it off.
    """
    recorded = {
        "format": layout.FORMAT_VERSION,
        "scheme": signature.SCHEME,
        "hash": "xxh64-words-combined",
        "signature_bits": str(layout.SIGNATURE_BITS),
        "num_perm": str(settings.num_perm),
        "seed": str(settings.seed),
        "shingle_words": str(settings.shingle_words),
        "paragraph_shingle_words": str(settings.paragraph_shingle_words),
        "min_paragraph_words": str(settings.min_paragraph_words),
        "lsh_bands": str(settings.lsh_bands),
        "lsh_rows": str(settings.lsh_rows),
    }
    if settings.near_paragraphs:
        recorded["near_paragraphs"] = "true"
    if settings.short_document_words:
        recorded["short_document_words"] = str(settings.short_document_words)
    if settings.script_words:
        recorded["script_words"] = "true"
    recorded[SHARDS_FIELD] = str(shards)
    return recorded


_SETTING_NAMES = {SHARDS_FIELD: "index_shards"}
"""Recorded signature settings whose setting has another name."""
_BEFORE = {"short_document_words": "0", "script_words": "false", "near_paragraphs": "false"}
"""What an index that names no value of a signature setting was built with."""


def _versions() -> dict[str, str]:
    return {
        "datasketch_version": metadata.version("datasketch"),
        "dedup_version": metadata.version("dedup"),
    }


def check(client: IndexClient, meta_key: str, settings: Settings, new_shards: int) -> int:
    """Record ``settings`` in an empty index (with ``new_shards``), or refuse to mix with
    others; returns the index's shards.

    The index's shards are the writer's unless ``index_shards`` is set: then they must agree.
    """
    try:
        stored = client.hget(meta_key, "signature")
        if stored is None:
            new = json.dumps(signature_settings(settings, new_shards), sort_keys=True)
            client.hsetnx(meta_key, "signature", new)
            stored = client.hget(meta_key, "signature")
    except redis.RedisError as exc:
        raise store_error(exc) from None
    have = json.loads(cast("bytes", stored))
    check_format(have, settings.namespace)
    shards = settings.index_shards or recorded_shards(have)
    wanted = signature_settings(settings, shards)
    if have != wanted:
        diff = ", ".join(
            f"{_SETTING_NAMES.get(k, k)}={have.get(k, _BEFORE.get(k))} "
            f"(ours {wanted.get(k, _BEFORE.get(k))})"
            for k in sorted(set(have) | set(wanted))
            if have.get(k) != wanted.get(k)
        )
        raise SettingsMismatchError(
            f"namespace {settings.namespace!r} was built with other signature "
            f"settings: {diff}; use another namespace or the same settings"
        )
    client.hset(meta_key, items=[x for pair in _versions().items() for x in pair])
    return shards
