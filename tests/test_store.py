"""The index in a real Redis, one server and a cluster: near duplicates, boilerplate,
idempotence, settings."""

from __future__ import annotations

import random

import pytest
from redis import Redis

from dedup.errors import NotFoundError, SettingsMismatchError, StoreError
from dedup.index import layout, walks
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.servers.connection import IndexClient, redact
from dedup.settings import Settings
from tests.consistency import stored
from tests.helpers import article, as_html, edit_words


def index(store: Store, doc_id: str, html: str, url: str | None = None) -> None:
    """Analyse and index one document."""
    store.index([analyse(Document(doc_id, html, url), store.settings)])


@pytest.fixture
def store(index_settings: Settings, index_client: IndexClient) -> Store:
    """A store on an empty database."""
    return Store(index_client, index_settings)


def test_near_duplicate_is_reported_both_ways(store: Store) -> None:
    """A lightly edited copy and its original list each other, with a similarity."""
    rng = random.Random(1)
    body = article(10)
    index(store, "original", as_html(body))
    index(store, "copy", as_html([edit_words(p, rng, 1) for p in body[:-1]]))
    index(store, "other", as_html(article(11)))
    copy = store.report("copy")
    original = store.report("original")
    assert ["original"] == [m["doc_id"] for m in copy["near_duplicates"]]
    assert ["copy"] == [m["doc_id"] for m in original["near_duplicates"]]
    assert 0.7 <= copy["near_duplicates"][0]["similarity"] < 1.0
    assert "near_duplicate" in copy["flags"]
    assert [] == store.report("other")["near_duplicates"]


def test_exact_duplicate(store: Store) -> None:
    """The same content under two ids is an exact duplicate, whatever the markup."""
    body = article(12)
    index(store, "a", as_html(body))
    index(store, "b", "<div>" + "".join(f"<p>  {p.upper()} </p>" for p in body) + "</div>")
    report = store.report("b")
    assert ["a"] == report["exact_duplicates"]
    assert "exact_duplicate" in report["flags"]
    assert [{"doc_id": "a", "similarity": 1.0, "exact": True}] == report["near_duplicates"]


def test_resubmitting_changes_nothing(store: Store, index_client: IndexClient) -> None:
    """Indexing the same id and content again leaves every key as it was."""
    html = as_html(article(13))
    index(store, "a", html)
    before = stored(index_client)
    index(store, "a", html)
    assert before == stored(index_client)
    assert 1 == store.stats()["documents"]


def test_same_content_at_a_new_url_is_indexed_again(store: Store) -> None:
    """Only the same content, URL and fetch time count as the same version."""
    html = as_html(article(13))
    store.index([analyse(Document("a", html, "https://a.example/1"), store.settings)])
    again = store.index([analyse(Document("a", html, "https://a.example/1"), store.settings)])
    moved = store.index([analyse(Document("a", html, "https://a.example/2"), store.settings)])
    assert (False, True) == (again[0].changed, moved[0].changed)
    assert "https://a.example/2" == store.report("a")["url"]
    assert 1 == store.stats()["documents"]


def test_new_content_replaces_the_old_entry(store: Store) -> None:
    """A document indexed again with other content stops matching its old twin."""
    body = article(14)
    index(store, "a", as_html(body))
    index(store, "b", as_html(body))
    index(store, "b", as_html(article(15)))
    assert [] == store.report("a")["near_duplicates"]
    assert 24 == store.stats()["paragraphs"]
    assert 2 == store.stats()["documents"]


def test_boilerplate_is_counted_and_kept_out(
    index_settings: Settings, index_client: IndexClient
) -> None:
    """A paragraph in many documents is boilerplate and does not make them alike."""
    store = Store(index_client, index_settings.replace(boilerplate_min_documents=3))
    banner = "Sign up for our newsletter to get the best stories of the day delivered to you."
    for n in range(5):
        index(store, f"doc{n}", as_html([*article(20 + n, 3), banner]))
    report = store.report("doc4")
    assert [{"paragraph": 3, "documents": 5}] == report["boilerplate"]
    assert [] == report["near_duplicates"]
    assert "boilerplate" in report["flags"]
    flagged = {row["doc_id"] for row in store.list_documents("boilerplate", 10)}
    assert {f"doc{n}" for n in range(5)} == flagged


def test_shared_paragraph_names_its_source(store: Store) -> None:
    """A paragraph copied into one other document is reported with where it came from."""
    first, second = article(30), article(31)
    index(store, "source", as_html(first))
    index(store, "excerpt", as_html([*second, first[4]]))
    report = store.report("excerpt")
    assert [{"paragraph": 12, "documents": 2, "with": ["source"]}] == report["shared_paragraphs"]
    assert [] == report["near_duplicates"]


def test_report_of_unknown_document(store: Store) -> None:
    """Asking for a document that was never indexed says so."""
    with pytest.raises(NotFoundError):
        store.report("nope")


def test_other_signature_settings_are_refused(
    index_settings: Settings, index_client: IndexClient
) -> None:
    """A writer with different signature settings may not write into the same namespace."""
    index(Store(index_client, index_settings), "a", as_html(article(40)))
    other = Store(index_client, index_settings.replace(num_perm=64))
    with pytest.raises(SettingsMismatchError, match="num_perm"):
        index(other, "b", as_html(article(41)))
    assert 1 == Store(index_client, index_settings).stats()["documents"]


def test_a_new_index_has_the_groups_that_suit_where_it_is(
    index_settings: Settings, index_client: IndexClient
) -> None:
    """One group on one server, where groups spread nothing; 128 on a cluster, spread over
    its masters; what the setting says when it is set."""
    store = Store(index_client, index_settings)
    index(store, "a", as_html(article(44)))
    expected = layout.SERVER_SHARDS if isinstance(index_client, Redis) else layout.CLUSTER_SHARDS
    assert expected == store.keys.shards.count
    assert expected == Store(index_client, index_settings).keys.shards.count
    chosen = Store(index_client, index_settings.replace(namespace="chosen", index_shards=16))
    index(chosen, "a", as_html(article(44)))
    assert 16 == Store(index_client, chosen.settings.replace(index_shards=None)).keys.shards.count


def test_namespaces_are_separate(index_settings: Settings, index_client: IndexClient) -> None:
    """Two namespaces in one Redis do not see each other's documents."""
    body = as_html(article(50))
    index(Store(index_client, index_settings), "a", body)
    other = Store(index_client, index_settings.replace(namespace="other"))
    index(other, "b", body)
    assert [] == other.report("b")["exact_duplicates"]


def test_dropping_a_namespace_leaves_the_others(
    index_settings: Settings, index_client: IndexClient
) -> None:
    """A dropped namespace loses every key; namespaces its name would match as a glob stay."""
    body = as_html(article(51))
    dropped = Store(index_client, index_settings.replace(namespace="eval[1]*"))
    index(dropped, "a", body)
    kept = [
        Store(index_client, index_settings.replace(namespace=n)) for n in ("eval1x", "eval[1]*2")
    ]
    for store in kept:
        index(store, "a", body)
    assert dropped.drop() > 0
    assert [] == list(index_client.scan_iter(match=dropped.keys.pattern))
    assert [1, 1] == [store.stats()["documents"] for store in kept]
    index(dropped, "b", body)  # the store starts again in the emptied namespace
    assert 1 == dropped.stats()["documents"]


def test_batch_with_the_same_id_twice(store: Store) -> None:
    """Two versions of one id in a batch: the later one wins, counted once."""
    first = analyse(Document("a", as_html(article(60))), store.settings)
    second = analyse(Document("a", as_html(article(61))), store.settings)
    store.index([first, second])
    assert 1 == store.stats()["documents"]
    assert 12 == store.stats()["paragraphs"]


def test_list_and_stats(store: Store, seed_text: str) -> None:
    """Flags are listed newest first and counted."""
    index(store, "seed", seed_text, url="https://example.com/seed")
    index(store, "plain", as_html(article(70)))
    rows = store.list_documents("doubled_body", 10)
    assert [("seed", "https://example.com/seed")] == [(r["doc_id"], r["url"]) for r in rows]
    assert ["doubled_body", "internal_repeat"] == rows[0]["flags"]
    stats = store.stats()
    assert 2 == stats["documents"]
    assert 1 == stats["flags"]["doubled_body"]


def test_redact_hides_passwords() -> None:
    """Passwords never appear in messages."""
    assert "rediss://user:***@host:6380/0" == redact("rediss://user:secret@host:6380/0")
    assert "redis://localhost:6379" == redact("redis://localhost:6379")


def test_scripts_lost_by_the_server_are_loaded_again(
    store: Store, index_client: IndexClient
) -> None:
    """After a restart empties Redis's script cache, the next batch loads the scripts again."""
    index(store, "before", as_html(article(30)))
    index_client.script_flush()
    index(store, "after", as_html(article(31)))
    index_client.script_flush()
    assert "after" == store.report("after")["doc_id"]
    assert 2 == store.stats()["documents"]


def test_an_edited_version_does_not_count_its_old_self(
    index_settings: Settings, index_client: IndexClient
) -> None:
    """A paragraph the old version held is not one document more common in the new version."""
    store = Store(index_client, index_settings.replace(boilerplate_min_documents=3))
    shared = article(95, 1)[0]
    index(store, "x", as_html([*article(96, 4), shared]))
    index(store, "y", as_html([*article(97, 4), shared]))
    edited = analyse(Document("x", as_html([*article(98, 4), shared])), store.settings)
    store.index([edited])
    assert [] == store.report("x")["boilerplate"]
    signature = edited.document_signature()  # every paragraph: none is boilerplate
    assert signature is not None
    _, record = store.resolve("x")
    assert record is not None
    assert layout.reduce_signature(signature, store.wide) == record.signature


def test_entries_that_move_to_their_sets_keep_the_order_of_a_batch(store: Store) -> None:
    """Operations on an entry that moves to its overflow set mid-batch (past
    ``layout.INLINE`` holders) are sent again with the set, after the others and in the order
    they came: every answer is the one the batch's order gives, and the entry ends up right."""
    batch = store._batch()
    key, other = 0x1234 << 48, 0x4321 << 48  # a paragraph entry, and one of another group
    serials = list(range(1, 2 * layout.INLINE + 1))
    added = [batch.update(layout.PARAGRAPHS, key, "p", s) for s in serials]
    beside = batch.update(layout.PARAGRAPHS, other, "p", 99)
    gone = batch.update(layout.PARAGRAPHS, key, "x", 3)
    again = batch.update(layout.PARAGRAPHS, key, "p", 3)
    answers = batch.send(store.client)
    assert serials == [answers[t].count for t in added]
    assert [1] * len(serials) == [answers[t].changed for t in added]
    assert (1, len(serials) - 1, len(serials)) == (
        answers[beside].count,
        answers[gone].count,
        answers[again].count,
    )
    asked = store._batch()
    counted = asked.lookup(layout.PARAGRAPHS, key, "m")
    one = asked.lookup(layout.PARAGRAPHS, other, "m")
    found = asked.send(store.client)
    assert (sorted(serials), [99]) == (sorted(found[counted].serials), found[one].serials)
    # Taken out again one by one, the entry leaves its set and then the index.
    out = store._batch()
    tickets = [out.update(layout.PARAGRAPHS, key, "x", s) for s in serials]
    out.update(layout.PARAGRAPHS, other, "x", 99)
    left = out.send(store.client)
    assert list(range(len(serials) - 1, -1, -1)) == [left[t].count for t in tickets]
    assert [] == store.client.keys(f"{store.keys.namespace}:*:p:*")


def test_serials_never_wrap(store: Store, index_client: IndexClient) -> None:
    """A group whose next serial would not fit its four bytes refuses to write, saying so,
    rather than wrapping onto the serials of old versions."""
    store.check_settings()
    group = store.keys.shards.of_id("late")
    last = (2**32 - 1 - group) // store.keys.shards.count
    index_client.hset(store.keys.counters(group), "serial", last)
    with pytest.raises(StoreError, match="used every serial"):
        index(store, "late", as_html(article(14)))
    assert str(last) == index_client.hget(store.keys.counters(group), "serial").decode()
    assert not store.exists("late")


def test_purge_resumes_where_it_stopped(
    index_settings: Settings, index_client: IndexClient
) -> None:
    """A purge keeps where each group's remaining records start, so the next one, and every
    walk from the oldest, reads none of the positions it emptied."""
    old = Store(index_client, index_settings, clock=lambda: 1000.0)
    old.index(
        [analyse(Document(f"old{n}", as_html(article(n, 2))), old.settings) for n in range(40)]
    )
    new = Store(index_client, index_settings, clock=lambda: 3000.0)
    new.index(
        [analyse(Document(f"new{n}", as_html(article(50 + n, 2))), new.settings) for n in range(5)]
    )
    assert 40 == new.purge(older_than=1000.0)
    bounds = walks.bounds(index_client, new.keys)
    assert 5 == sum(top - low + 1 for low, top in bounds), bounds
    assert 0 == new.purge(older_than=1000.0)
    assert [f"new{n}" for n in range(5)] == sorted(
        r["doc_id"] for r in new.list_documents(None, 100)
    )


def test_a_page_crawled_again_with_a_new_fetch_time_stays_one_version(
    store: Store, index_client: IndexClient
) -> None:
    """Pages crawled again a hundred times with the same content and a new fetch time leave
    every key as one crawl left it: no new version, no serial spent, nothing grows."""
    pages = [(f"p{n}", as_html(article(30 + n, 4)), f"https://site.example/{n}") for n in range(5)]

    def crawl(day: int) -> None:
        fetched = (
            "2024-01-01T00:00:00Z"
            if day == 0
            else f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}T06:00:00Z"
        )
        docs = [Document(i, html, url, fetched_at=fetched) for i, html, url in pages]
        store.index([analyse(d, store.settings) for d in docs])

    crawl(0)
    before = stored(index_client)
    for day in range(1, 101):
        crawl(day)
    assert before == stored(index_client)
    assert "2024-01-01T00:00:00Z" == store.report("p3")["fetched_at"]
