"""Checks that an index holds each document exactly once, whatever happened on the way."""

from __future__ import annotations

import struct
import uuid
from collections import Counter

from dedup.index.keys import FLAGS, Keys
from dedup.index.layout import BANDS, CONTENT, IDS, PARAGRAPHS, PIECES, Family, id_serial
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.servers.connection import IndexClient
from dedup.settings import Settings


def entry_serials(client: IndexClient, keys: Keys, family: Family) -> Counter[int]:
    """How many entries of a family name each serial (inline fields and overflow sets)."""
    counted: Counter[int] = Counter()
    for key in client.scan_iter(match=keys.family_pattern(family), count=1000):
        if client.type(key) == b"set":
            counted.update(int(m) for m in client.smembers(key))
            continue
        if family == IDS:  # the serial of the current version, then its digest
            counted.update(id_serial(value) for value in client.hvals(key))
            continue
        for value in client.hvals(key):
            if len(value) % 4:  # in its overflow set: its first holders are in the set too
                continue
            counted.update(x for (x,) in struct.iter_unpack("<I", value))
    return counted


def stored(client: IndexClient) -> dict[bytes, bytes | None]:
    """Every key and its value, but the replies writing calls keep for a call sent again
    (:func:`dedup.index.scripts.script_call`), which come and go with round trips."""
    return {k: client.dump(k) for k in client.keys("*") if b":once:" not in k}


def intents_left(client: IndexClient, keys: Keys) -> dict[int, list[int]]:
    """The intents kept in each group: none once every write has finished."""
    pipe = client.pipeline(transaction=False)
    for group in range(keys.shards.count):
        pipe.hkeys(keys.intents(group))
    found = pipe.execute()
    return {g: [int(k) for k in serials] for g, serials in enumerate(found) if serials}


def assert_consistent(client: IndexClient, settings: Settings, documents: list[Document]) -> None:
    """The index equals one built from scratch from the same documents, in one batch."""
    store = Store(client, settings)
    assert {} == intents_left(client, store.keys), "a write left its intent"
    expected_ids = {d.doc_id for d in documents}
    rows = store.list_documents(None, 10**6)
    assert expected_ids == {row["doc_id"] for row in rows}
    assert len(rows) == len(expected_ids), "a document is listed twice"
    suffix = uuid.uuid4().hex[:8]
    reference = Store(client, settings.replace(namespace=f"{settings.namespace}-ref-{suffix}"))
    reference.index([analyse(d, settings) for d in documents])
    assert reference.stats() == store.stats(), (reference.stats(), store.stats())
    ours = {row["doc_id"]: row["flags"] for row in rows}
    theirs = {row["doc_id"]: row["flags"] for row in reference.list_documents(None, 10**6)}
    assert theirs == ours
    serials = {}
    for doc_id in expected_ids:
        serial, record = store.resolve(doc_id)
        assert record is not None
        serials[serial] = record
    paragraphs = entry_serials(client, store.keys, PARAGRAPHS)
    for serial, record in serials.items():
        assert paragraphs[serial] == len(set(record.fingerprints)), "paragraph entries differ"
    for family in (BANDS, CONTENT, IDS):
        assert set(entry_serials(client, store.keys, family)) <= set(serials), (
            f"an entry of {family.name} names a version that is not indexed"
        )
    assert set(paragraphs) == set(serials), "a paragraph entry names a version not indexed"
    pieces = entry_serials(client, store.keys, PIECES)
    for serial, record in serials.items():
        held = {k for p in record.near or () for k in p.pieces}
        assert pieces[serial] == len(held), "piece entries differ"
    assert set(pieces) <= set(serials), "a piece entry names a version not indexed"
    assert store.report(documents[0].doc_id)["paragraphs"] > 0


def assert_flags_match_reports(store: Store) -> None:
    """Every document's flag bits (what lists and stats read) are the flags of its report."""
    rows = store.list_documents(None, 10**6)
    reports = {row["doc_id"]: store.report(row["doc_id"])["flags"] for row in rows}
    differ = {
        row["doc_id"]: {"bits": row["flags"], "report": reports[row["doc_id"]]}
        for row in rows
        if row["flags"] != reports[row["doc_id"]]
    }
    assert not differ, f"flag bits differ from reports: {differ}"
    counted = {name: sum(name in flags for flags in reports.values()) for name in FLAGS}
    assert counted == store.stats()["flags"], "stats count other flags than reports"
    for name in FLAGS:
        listed = {row["doc_id"] for row in store.list_documents(name, 10**6)}
        flagged = {doc for doc, flags in reports.items() if name in flags}
        assert flagged == listed, f"list --flag {name} differs from reports"
