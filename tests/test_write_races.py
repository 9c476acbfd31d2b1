"""Writes interrupted or overtaken half-way: a crash before the flag refresh, a purge racing a
re-index. Each must end with the index a worker would build from scratch."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dedup.index import scripts
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.settings import Settings
from tests.consistency import assert_consistent, assert_flags_match_reports, intents_left
from tests.helpers import article, as_html, edit_words

DAY = 86400.0


BANNER = "Sign up for our newsletter to get the best stories of the day delivered to you."


class WorkerDied(Exception):
    """What a worker killed at a given point leaves behind: the rest is not run."""


def _edited_after_a_crash(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> tuple[Store, list[Document], list[Document]]:
    """An index with exact and near duplicates and boilerplate; then a job editing one of each
    whose worker died after its writes, before it refreshed the flags of the others."""
    settings = settings.replace(boilerplate_min_documents=3)
    store = Store(redis_client, settings)
    rng = random.Random(5)
    twin, story = article(80), article(81)
    documents = [
        Document("a", as_html(twin)),
        Document("b", as_html(twin)),  # exact duplicate of a
        Document("c", as_html(story)),
        Document("d", as_html([edit_words(p, rng, 1) for p in story])),  # near duplicate of c
        *(Document(f"e{n}", as_html([*article(82 + n, 3), BANNER])) for n in range(3)),
    ]
    store.index([analyse(d, settings) for d in documents])
    assert_flags_match_reports(store)
    edits = [
        Document("b", as_html(article(90))),
        Document("d", as_html(article(91))),
        Document("e2", as_html(article(84, 3))),  # the banner drops below boilerplate
    ]
    real_refresh = store.refresh_flags

    def die(serials: set[int]) -> None:
        monkeypatch.setattr(store, "refresh_flags", real_refresh)
        raise WorkerDied

    monkeypatch.setattr(store, "refresh_flags", die)
    with pytest.raises(WorkerDied):
        store.index([analyse(d, settings) for d in edits])
    assert _refreshes_owed(redis_client, store)
    return store, documents, edits


def _refreshes_owed(client: redis.Redis, store: Store) -> dict[int, list[int]]:
    """The intents left in the groups (none once every write has finished)."""
    return intents_left(client, store.keys)


def test_retry_after_a_crash_before_the_flag_refresh_repairs_the_flags(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job that died between its writes and the flag refresh of the other documents, run
    again, leaves lists and stats agreeing with reports, though its documents are unchanged."""
    store, documents, edits = _edited_after_a_crash(settings, redis_client, monkeypatch)
    retried = store.index([analyse(d, store.settings) for d in edits])  # the job's retry
    assert [False, False, False] == [r.changed for r in retried]
    assert_flags_match_reports(store)
    assert {} == _refreshes_owed(redis_client, store)
    kept = {d.doc_id: d for d in documents} | {d.doc_id: d for d in edits}
    assert_consistent(redis_client, store.settings, list(kept.values()))


def test_a_refresh_owed_passes_to_the_next_version(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a document is indexed again with other content before the retry, or deleted, the
    new write refreshes what the crashed one owed."""
    store, documents, _ = _edited_after_a_crash(settings, redis_client, monkeypatch)
    later = [Document("b", as_html(article(92))), Document("d", as_html(article(93)))]
    assert [True, True] == [
        r.changed for r in store.index([analyse(d, store.settings) for d in later])
    ]
    assert 1 == store.delete(["e2"])
    assert_flags_match_reports(store)
    assert {} == _refreshes_owed(redis_client, store)
    kept = {d.doc_id: d for d in documents} | {d.doc_id: d for d in later}
    del kept["e2"]
    assert_consistent(redis_client, store.settings, list(kept.values()))


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


@pytest.mark.parametrize("index_shards", [1, 128])
def test_a_near_duplicate_committed_while_the_other_is_written_flags_both(
    settings: Settings, redis_client: redis.Redis, index_shards: int
) -> None:
    """Two workers write near duplicates at the same moment: the first adds its bands, the
    second then writes all the way through, finding the first's intent and raising the flag
    on it before the first commits. The first's commit keeps what was raised on it."""
    settings = settings.replace(index_shards=index_shards)
    rng = random.Random(7)
    body = article(120)
    first = Document("first", as_html(body))
    second = Document("second", as_html([edit_words(p, rng, 1) for p in body]))
    early, late = Store(redis_client, settings), Store(redis_client, settings)
    real_run = scripts.run
    overtaken: list[Any] = []
    started = []

    def run(client: Any, calls: Any) -> list[Any]:
        if not started and any(c.script and c.script.name == "commit.lua" for c in calls):
            started.append(True)
            overtaken.extend(late.index([analyse(second, settings)]))  # before the commit
        return real_run(client, calls)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scripts, "run", run)
        [written] = early.index([analyse(first, settings)])
    assert [] == written.near, "the first did not see the second"
    assert [("first", overtaken[0].near[0][1])] == overtaken[0].near
    assert {"first", "second"} == {
        row["doc_id"] for row in early.list_documents("near_duplicate", 10)
    }
    assert_flags_match_reports(early)
    assert {} == intents_left(redis_client, early.keys)
