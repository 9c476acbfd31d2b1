"""Writes interrupted or overtaken half-way: a crash before the flag refresh, a purge racing a
re-index. Each must end with the index a worker would build from scratch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dedup.analysis import analyse
from dedup.document import Document
from dedup.settings import Settings
from dedup.store import Store
from tests.consistency import assert_consistent
from tests.helpers import article, as_html

DAY = 86400.0


def test_purge_keeps_a_version_indexed_during_its_walk(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document indexed again after the purge read its old version keeps the new one."""
    old = [Document(f"old-{n}", as_html(article(100 + n))) for n in range(2)]
    long_ago = Store(redis_client, settings, clock=lambda: time.time() - 40 * DAY)
    long_ago.index([analyse(d, settings) for d in old])
    store = Store(redis_client, settings)
    fresh = Document("old-0", as_html(article(110)))
    real_walk = store.walk_records
    reindexed = []

    def walk_then_reindex(**kwargs: Any) -> Iterator[list[Any]]:
        for batch in real_walk(**kwargs):
            if not reindexed:  # a worker, between the walk and the delete
                reindexed.extend(store.index([analyse(fresh, settings)]))
            yield batch

    monkeypatch.setattr(store, "walk_records", walk_then_reindex)
    assert 1 == store.purge(30 * DAY)
    assert [True] == [r.changed for r in reindexed]
    assert_consistent(redis_client, settings, [fresh])
