"""How a write starts, one server and a cluster: the boilerplate its signature leaves out, the
digest its id entry keeps, and the intents it is answered."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from dedup.index import layout, records, scripts, versions
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.servers.connection import IndexClient
from dedup.settings import Settings
from tests.consistency import assert_consistent, assert_flags_match_reports, intents_left
from tests.helpers import article, as_html, edit_words

FOOTER = "Subscribe to our newsletter for the stories of the day delivered to your inbox daily."
BANNER = "All rights reserved by the publisher of this site and its many partners worldwide."


def _documents() -> list[Document]:
    """Pages sharing a footer and a banner (boilerplate from the third page on, with the
    threshold of :func:`settings`), with near copies among them."""
    rng = random.Random(5)
    documents = []
    for n in range(8):
        body = article(200 + n, 4)
        template = [FOOTER] if n % 4 else [FOOTER, BANNER]
        documents.append(Document(f"page{n}", as_html([*body, *template])))
        if n % 3 == 0:
            copy = [edit_words(p, rng, 1) for p in body]
            documents.append(Document(f"copy{n}", as_html([*copy, *template])))
    return documents


@pytest.fixture
def settings(index_settings: Settings) -> Settings:
    """A low boilerplate threshold, so that a few pages make a paragraph boilerplate."""
    return index_settings.replace(boilerplate_min_documents=3)


def _index_one_by_one(store: Store, documents: list[Document]) -> None:
    for document in documents:
        store.index([analyse(document, store.settings)])


def _state(store: Store, documents: list[Document]) -> dict[str, Any]:
    """What readers see of the index, and each document's stored record."""
    return {
        "reports": {d.doc_id: store.report(d.doc_id) for d in documents},
        "records": {d.doc_id: store.resolve(d.doc_id)[1] for d in documents},
        "stats": store.stats(),
    }


def test_a_paragraph_boilerplate_before_the_batch_is_left_out_of_the_signature(
    index_client: IndexClient, settings: Settings
) -> None:
    """The third page holding the footer (the threshold) leaves it out of its signature; the
    second does not, nor does the second indexed again with a new body: its own earlier
    version does not count."""
    store = Store(index_client, settings)
    pages = [as_html([*article(500 + n, 4), FOOTER]) for n in range(3)]
    for n in (0, 1):
        store.index([analyse(Document(f"p{n}", pages[n]), settings)])
    again = analyse(Document("p1", as_html([*article(600, 4), FOOTER])), settings)
    third = analyse(Document("p2", pages[2]), settings)
    store.index([again])
    store.index([third])
    wide = settings.lsh_bands * settings.lsh_rows
    footer = len(third.paragraphs) - 1

    def stored(doc_id: str) -> bytes:
        record = store.resolve(doc_id)[1]
        assert record is not None
        return record.signature

    def signature(analysis: Any, left_out: frozenset[int]) -> bytes:
        return layout.reduce_signature(analysis.document_signature(left_out), wide)

    assert signature(again, frozenset()) == stored("p1")
    assert signature(third, frozenset({footer})) == stored("p2")
    assert signature(third, frozenset()) != stored("p2")
    assert "boilerplate" in store.report("p2")["flags"]
    assert_consistent(
        index_client, settings, [Document("p0", pages[0]), again.document, third.document]
    )


def test_boilerplate_is_the_same_written_one_by_one_or_by_several_writers(
    index_client: IndexClient, settings: Settings
) -> None:
    """Pages sharing a footer and a banner, written one at a time by one writer or by two
    writers taking turns, end the same: records, reports and stats."""
    documents = _documents()

    def clocked() -> Any:
        clock = iter(range(1_000, 2_000))
        return lambda: float(next(clock))

    one = Store(index_client, settings.replace(namespace="one"), clock=clocked())
    _index_one_by_one(one, documents)
    tick = clocked()
    two = [Store(index_client, settings.replace(namespace="two"), clock=tick) for _ in "ab"]
    for n, document in enumerate(documents):
        two[n % 2].index([analyse(document, settings)])
    assert {} == intents_left(index_client, two[0].keys)
    assert _state(one, documents) == _state(two[0], documents)
    assert_flags_match_reports(two[0])


def _round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of calls of each round trip sent from now."""
    sizes: list[int] = []
    real = scripts.run

    def counting(client: IndexClient, calls: Any) -> list[Any]:
        if calls:
            sizes.append(len(calls))
        return real(client, calls)

    monkeypatch.setattr(scripts, "run", counting)
    return sizes


def test_an_unchanged_page_costs_one_round_trip_and_no_serial(
    index_client: IndexClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id entry's digest tells the announcing script that the version is indexed
    already: nothing is written, no position taken."""
    store = Store(index_client, settings)
    page = Document("page", as_html(article(400, 5)), url="https://a.example/1")
    store.index([analyse(page, settings)])
    group = store.keys.shards.of_id("page")
    taken = index_client.hget(store.keys.counters(group), "serial")
    sizes = _round_trips(monkeypatch)
    [again] = store.index([analyse(page, settings)])
    assert not again.changed
    assert 1 == len(sizes)
    assert taken == index_client.hget(store.keys.counters(group), "serial")


def test_the_reading_script_answers_only_the_intents_its_writer_must_handle(
    index_client: IndexClient, settings: Settings
) -> None:
    """Every writer announces in the same groups (all of them in the one group of an index on
    one server): the intents of the others' writes in flight are not answered, only the
    writer's own, those whose lease is over, what the documents' current versions owe, and
    any it cannot read."""
    store = Store(index_client, settings)
    [done] = store.index([analyse(Document("page", as_html(article(300))), settings)])
    assert done.changed
    current, record = store.resolve("page")
    assert record is not None
    keys = store.keys
    group = keys.shards.of(current)
    now = time.time()
    stale = now - layout.INTENT_LEASE - 1

    def serial(n: int) -> int:
        return n * keys.shards.count + group

    def packed(kind: str, token: str, at: float) -> bytes:
        return records.pack_intent(records.Intent(kind, token, at))

    answered = {
        serial(1001): packed(records.WRITING, "mine", now),
        serial(1002): packed(records.WRITING, "other", stale),
        serial(1003): packed(records.OWED, "other", stale),
        current: packed(records.OWED, "other", now),
        serial(1004): b"unreadable",
        serial(1005): b"\x05\x00\x00\x00\x00\x00\x00\x00{...}",
    }
    not_answered = {
        serial(2001): packed(records.WRITING, "other", now),
        serial(2002): packed(records.OWED, "other", now),
        serial(2003): packed(records.WRITING, "mine2", now),
        serial(2004): packed(records.WRITING, 'mine","at":0,"', now),
        serial(2005): packed(records.WRITING, "mi\u00efne", now),
    }
    index_client.hset(keys.intents(group), mapping={**answered, **not_answered})
    # The document's version unchanged: its current version read, and that it is the same.
    again = (layout.id_entry("page"), records.record_digest(record))
    call = versions.peek(
        keys, store.depths, group, [again], token="mine", cutoff=now - layout.INTENT_LEASE
    )
    [peeked] = scripts.run(index_client, [call])
    assert [(current, True)] == peeked.current
    assert answered == peeked.intents
