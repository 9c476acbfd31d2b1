"""How a write announces a new version before it knows its paragraphs' counts, one server and
a cluster: the boilerplate it guesses, the digest its id entry keeps, and id entries written
before the digest existed."""

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


@pytest.mark.parametrize("guess", ["all", "none"])
def test_a_wrong_guess_of_boilerplate_stores_what_a_right_one_does(
    index_client: IndexClient, settings: Settings, guess: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that guesses every paragraph boilerplate, or none, corrects its records and
    bands and ends with the index of a writer that guesses from what it has seen."""
    documents = _documents()
    clock = iter(range(1_000, 2_000))

    def tick() -> float:
        return float(next(clock))

    right = Store(index_client, settings.replace(namespace="right"), clock=tick)
    _index_one_by_one(right, documents)

    clock = iter(range(1_000, 2_000))
    wrong = Store(index_client, settings.replace(namespace=f"wrong-{guess}"), clock=tick)
    every = guess == "all"
    monkeypatch.setattr(
        wrong._seen,
        "guess",
        lambda keys, pieces: frozenset(range(len(keys))) if every else frozenset(),
    )
    corrected = _corrections(monkeypatch)
    _index_one_by_one(wrong, documents)

    assert corrected, "no guess was wrong"
    assert {} == intents_left(index_client, wrong.keys)
    assert _state(right, documents) == _state(wrong, documents)
    assert_consistent(index_client, wrong.settings, documents)
    assert_flags_match_reports(wrong)


def test_a_writer_guesses_from_the_counts_it_has_seen(
    index_client: IndexClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer new to a paragraph that other writers made boilerplate guesses wrong once;
    from then on it knows: the correction is paid while it learns, not for every page."""
    pages = [Document(f"p{n}", as_html([*article(300 + n, 4), FOOTER])) for n in range(12)]
    _index_one_by_one(Store(index_client, settings), pages[:6])  # another worker
    corrected = _corrections(monkeypatch)
    store = Store(index_client, settings)
    _index_one_by_one(store, pages[6:])
    assert 1 == len(corrected)
    assert all("boilerplate" in store.report(p.doc_id)["flags"] for p in pages)


def _corrections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The calls replacing intents of versions whose boilerplate was guessed wrong, from now."""
    corrected: list[Any] = []
    real = versions.replace_intents

    def replace(*args: Any) -> Any:
        corrected.append(args)
        return real(*args)

    monkeypatch.setattr(versions, "replace_intents", replace)
    return corrected


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
    group = store.keys.groups.of_id("page")
    taken = index_client.hget(store.keys.counters(group), "serial")
    sizes = _round_trips(monkeypatch)
    [again] = store.index([analyse(page, settings)])
    assert not again.changed
    assert [1] == sizes
    assert taken == index_client.hget(store.keys.counters(group), "serial")


def test_the_announcing_script_answers_only_the_intents_its_writer_must_handle(
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
    group = keys.groups.of(current)
    now = time.time()
    stale = now - layout.INTENT_LEASE - 1

    def serial(n: int) -> int:
        return n * keys.groups.count + group

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
    # The document's version unchanged: nothing announced, its current version read.
    again = versions.Writing(layout.id_entry("page"), records.record_digest(record), b"")
    call = versions.begin(keys, group, [again], token="mine", cutoff=now - layout.INTENT_LEASE)
    [announced] = scripts.run(index_client, [call])
    assert [(versions.SAME, current)] == [(b.serial, b.current) for b in announced.began]
    assert answered == announced.intents
