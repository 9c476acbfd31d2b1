"""Checks that an index holds each document exactly once, whatever happened on the way."""

from __future__ import annotations

import uuid

import numpy as np
import redis

from dedup.analysis import analyse
from dedup.document import Document
from dedup.settings import Settings
from dedup.store import Store


def assert_consistent(client: redis.Redis, settings: Settings, documents: list[Document]) -> None:
    """The index equals one built from scratch from the same documents, in one batch."""
    store = Store(client, settings)
    expected_ids = {d.doc_id for d in documents}
    assert expected_ids == {x.decode() for x in client.zrange(store.keys.documents, 0, -1)}
    suffix = uuid.uuid4().hex[:8]
    reference = Store(client, settings.replace(namespace=f"{settings.namespace}-ref-{suffix}"))
    reference.index([analyse(d, settings) for d in documents])
    assert reference.stats() == store.stats()
    ours = {row["doc_id"]: row["flags"] for row in store.list_documents(None, 10**6)}
    theirs = {row["doc_id"]: row["flags"] for row in reference.list_documents(None, 10**6)}
    assert theirs == ours
    memberships = 0
    for doc_id in expected_ids:
        fps = client.hget(store.keys.document(doc_id), "fps") or b""
        distinct = set(np.frombuffer(fps, dtype="<u8").tolist())
        memberships += len(distinct)
        for fp in distinct:
            assert client.sismember(store.keys.paragraph(int(fp)), doc_id)
    total = sum(client.scard(key) for key in client.scan_iter(match=f"{settings.namespace}:para:*"))
    assert memberships == total, "a document is counted in a paragraph it does not hold"
    assert store.report(documents[0].doc_id)["paragraphs"] > 0
