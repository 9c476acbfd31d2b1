"""Text kept for the review pages: only when asked for, only as long as asked, gone on delete."""

from __future__ import annotations

import redis

from dedup.index import texts
from dedup.index.store import Store
from dedup.settings import Settings
from tests.helpers import article, as_html


def index_through_the_job(settings: Settings, doc_id: str) -> None:
    """Index one document with the worker's own job function."""
    from workers import jobs

    jobs.prepare(settings)
    result = jobs.analyse_documents([{"id": doc_id, "html": as_html(article(41, 5))}])
    assert [doc_id] == result["documents"]


def test_no_text_is_kept_by_default(settings: Settings, redis_client: redis.Redis) -> None:
    """The index holds no words unless review_text_days asks for them."""
    index_through_the_job(settings, "quiet")
    store = Store(redis_client, settings)
    assert None is texts.paragraphs(redis_client, store.keys, "quiet")
    assert not redis_client.exists(store.keys.text("quiet"))


def test_text_kept_for_the_days_asked_and_dropped_with_its_document(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Kept text expires after review_text_days, and delete and purge take it away at once."""
    settings = settings.replace(review_text_days=2)
    store = Store(redis_client, settings)
    for doc_id in ("kept", "purged"):
        index_through_the_job(settings, doc_id)
        assert article(41, 5) == texts.paragraphs(redis_client, store.keys, doc_id)
        assert 2 * 86400 - 60 < redis_client.ttl(store.keys.text(doc_id)) <= 2 * 86400
    assert 1 == store.delete(["kept"])
    assert not redis_client.exists(store.keys.text("kept"))
    assert 1 == store.purge(older_than=-3600)  # everything indexed before an hour from now
    assert not redis_client.exists(store.keys.text("purged"))
