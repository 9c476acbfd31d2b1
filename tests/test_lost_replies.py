"""Replies lost after Redis ran a command: the client sends it again, and the index ends as
one built without faults, every report field, the stats and the duplicate groups.

A proxy (:mod:`tests.replies`) sits between the writers and Redis and cuts the connection
instead of passing a reply on, so the command has run and its writer never heard: the
writer's retry policy sends the round trip again, as it would after a network blip or a
failover.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from dedup.client import Client
from dedup.index import groups
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.servers.connection import IndexClient, connect
from dedup.settings import Settings
from tests.consistency import assert_consistent, assert_flags_match_reports, intents_left
from tests.helpers import article, as_html, corpus, edit_words, rewrite_corpus, start_worker
from tests.replies import AtRandom, Counted, EveryNth, ReplyCutter, cutting_cluster

VOLATILE = ("indexed_at",)
"""Report fields that say when a write happened, not what it left."""


class Lossy:
    """Where the writers of a test lose replies: clients through the proxies, one rule for
    all of them, and a client for readers that loses nothing."""

    def __init__(self, writer: Callable[[], IndexClient], reader: IndexClient, steps: int) -> None:
        self.writer = writer
        self.reader = reader
        self.rule: Counted = Counted()
        self.steps = steps
        """Lose the reply of one call in ``steps`` (the cluster sends many more calls)."""

    def lose(self, rule: Counted) -> None:
        self.rule = rule


@pytest.fixture(params=["server", pytest.param("cluster", marks=pytest.mark.cluster)])
def lossy(
    request: pytest.FixtureRequest, redis_url: str, redis_client: redis.Redis
) -> Iterator[Lossy]:
    """One server behind a reply-cutting proxy, then a 3-master cluster behind one proxy per
    master; the rule in force is ``lossy.rule`` (none lost until a test sets one)."""
    holder: list[Lossy] = []

    def rule(words: list[bytes]) -> bool:
        return holder[0].rule(words)

    if request.param == "server":
        with ReplyCutter(redis_url, rule) as proxy:
            holder.append(Lossy(lambda: connect(proxy.url), redis_client, 1))
            yield holder[0]
        return
    cluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    with cutting_cluster(cluster, rule) as writer:
        holder.append(Lossy(writer, cluster.client(), 12))
        yield holder[0]


@pytest.fixture
def writer_settings(tmp_path: Path) -> Settings:
    """Settings with a low boilerplate threshold, so the batches move boilerplate flags
    (stores are given their clients)."""
    return Settings(data_dir=tmp_path / "data", boilerplate_min_documents=3)


def index_view(store: Store, doc_ids: Sequence[str], *, any_order: bool = False) -> dict[str, Any]:
    """What readers see of an index: every report, the stats, the duplicate groups. With
    ``any_order``, what does not depend on the order documents were written in: the
    canonical copy of a group is the earliest indexed one where the rule finds them equal."""
    left_out = (*VOLATILE, "group", "canonical") if any_order else VOLATILE
    reports = {}
    for doc_id in sorted(doc_ids):
        report = store.report(doc_id)
        reports[doc_id] = {k: v for k, v in report.items() if k not in left_out}
    found = groups.read_groups(store, groups.options_for(store))
    if any_order:
        listed = sorted(json.dumps(sorted(m["doc_id"] for m in g["members"])) for g in found)
    else:
        listed = sorted(json.dumps(g, sort_keys=True) for g in found)
    return {"reports": reports, "stats": store.stats(), "groups": listed}


def _write(client: IndexClient, settings: Settings, batches: Sequence[list[Document]]) -> Store:
    """Each batch written by a writer of its own (the later ones meet what the first left),
    with a job's token each."""
    store = Store(client, settings)
    for number, batch in enumerate(batches):
        store = Store(client, settings)
        store.index([analyse(d, settings) for d in batch], token=f"job-{number}")
    return store


def _points(lossy: Lossy, seen: int) -> range:
    """The calls whose replies are lost in turn."""
    return range(1, seen + 1, lossy.steps)


def test_a_reply_lost_at_each_writing_call_leaves_the_index_as_without_faults(
    lossy: Lossy, writer_settings: Settings
) -> None:
    """For every call of a writing script in two batches' writes in turn (announce, entries,
    corrections, commit, flags), its reply is lost once: the index ends as without faults."""
    first, second = rewrite_corpus()
    final = list({d.doc_id: d for d in [*first, *second]}.values())
    # The scripts loaded first (a server's first call of each answers NOSCRIPT), then counted.
    _write(lossy.writer(), writer_settings.replace(namespace="warm"), [first, second])
    counting = Counted()
    lossy.lose(counting)
    clean = _write(lossy.writer(), writer_settings.replace(namespace="clean"), [first, second])
    expected = index_view(clean, [d.doc_id for d in final])
    assert counting.seen >= 6, counting.seen
    for n in _points(lossy, counting.seen):
        settings = writer_settings.replace(namespace=f"lost{n}")
        rule = EveryNth(n)
        lossy.lose(rule)
        store = _write(lossy.writer(), settings, [first, second])
        assert 1 == len(rule.lost), f"call {n}: no reply was lost"
        reader = Store(lossy.reader, settings)
        assert {} == intents_left(lossy.reader, store.keys), n
        assert expected == index_view(reader, [d.doc_id for d in final]), n
        assert_consistent(lossy.reader, settings, final)
        assert_flags_match_reports(reader)


def test_replies_lost_during_deletes_and_purges_leave_the_index_as_without_faults(
    lossy: Lossy, writer_settings: Settings
) -> None:
    """Deleting documents and purging old ones, with the reply of each writing call lost in
    turn: the index ends as the same deletes and purge leave it without faults."""
    first, second = rewrite_corpus()
    final = {d.doc_id: d for d in [*first, *second]}
    gone = ["a", "c", "k3", "e1"]
    kept = [d for d in final if d not in gone]

    def build(settings: Settings) -> Store:
        client = lossy.reader
        Store(client, settings, clock=lambda: 1000.0).index([analyse(d, settings) for d in first])
        Store(client, settings, clock=lambda: 2000.0).index([analyse(d, settings) for d in second])
        return Store(lossy.writer(), settings, clock=lambda: 2000.0)

    def change(store: Store) -> None:
        assert len(gone) == store.delete(gone)
        store.purge(older_than=500.0)  # the first batch's versions

    change(build(writer_settings.replace(namespace="warm")))
    clean_settings = writer_settings.replace(namespace="clean")
    clean = build(clean_settings)
    counting = Counted()
    lossy.lose(counting)
    change(clean)
    left = [d for d in kept if Store(lossy.reader, clean_settings).exists(d)]
    assert set(left) == {d.doc_id for d in second} - set(gone)
    expected = index_view(Store(lossy.reader, clean_settings), left)
    assert_flags_match_reports(Store(lossy.reader, clean_settings))
    assert counting.seen >= 2, counting.seen
    for n in _points(lossy, counting.seen):
        settings = writer_settings.replace(namespace=f"lost{n}")
        lossy.lose(Counted())
        store = build(settings)
        rule = EveryNth(n)
        lossy.lose(rule)
        change(store)
        assert 1 == len(rule.lost), f"call {n}: no reply was lost"
        assert {} == intents_left(lossy.reader, store.keys), n
        reader = Store(lossy.reader, settings)
        assert left == [d for d in kept if reader.exists(d)], n
        assert expected == index_view(reader, left), n
        assert_flags_match_reports(reader)


def test_a_fifth_of_replies_lost_at_random_leaves_the_index_as_without_faults(
    lossy: Lossy, writer_settings: Settings
) -> None:
    """Batches of every size with exact copies, near copies, edits and resubmissions, a
    fifth of the writing calls' replies lost: the index ends as without faults."""
    first, second = rewrite_corpus()
    final = list({d.doc_id: d for d in [*first, *second]}.values())
    clean = _write(lossy.writer(), writer_settings.replace(namespace="clean"), [first, second])
    expected = index_view(clean, [d.doc_id for d in final])
    lost = 0
    for seed in range(8):
        settings = writer_settings.replace(namespace=f"random{seed}")
        rule = AtRandom(0.2, seed)
        lossy.lose(rule)
        store = _write(lossy.writer(), settings, [first, second])
        lost += len(rule.lost)
        assert {} == intents_left(lossy.reader, store.keys), seed
        reader = Store(lossy.reader, settings)
        assert expected == index_view(reader, [d.doc_id for d in final]), seed
    assert lost >= 8, lost


def _submit_in_jobs_of_every_size(settings: Settings, documents: list[Document]) -> None:
    """One document per job, then a few, then bulk, in turn."""
    client, at, sizes = Client(settings), 0, [1, 1, 3, 10, 40]
    while at < len(documents):
        size = sizes[at % len(sizes)]
        client.submit_many(documents[at : at + size], batch_size=size)
        at += size


def _run_workers(settings: Settings, count: int = 2) -> None:
    """Burst workers until the queue is empty, ``count`` at a time."""
    workers = [start_worker(settings, "--burst") for _ in range(count)]
    for worker in workers:
        assert 0 == worker.wait(timeout=600)


@pytest.mark.soak  # a minute and a half of real workers: with the cluster tests (CI too)
def test_workers_losing_a_fifth_of_their_replies_index_as_without_faults(
    redis_client: redis.Redis, redis_url: str, settings: Settings
) -> None:
    """Two real workers write 2,000 documents (exact copies, near copies, edits and
    resubmissions) in jobs of every size through the proxy, which loses a fifth of the
    writing calls' replies: the index ends as one written without faults."""
    rng = random.Random(5)
    originals = corpus(1600, seed=23)  # every fifth a near copy of the one before
    copies = [Document(f"copy-{n}", d.body) for n, d in enumerate(rng.sample(originals, 300))]
    changed = rng.sample(originals, 200)
    edits = [
        Document(d.doc_id, as_html([edit_words(p, rng, 2) for p in article(900 + n, 10)]))
        for n, d in enumerate(changed[:100])
    ]
    again = changed[100:]  # submitted again unchanged
    first = originals + copies
    rng.shuffle(first)
    second = edits + again
    final = list({d.doc_id: d for d in [*first, *second]}.values())
    assert len(first) + len(second) >= 2000
    rule = AtRandom(0.2, seed=7)
    with ReplyCutter(redis_url, rule) as cutter:
        writers = settings.replace(namespace="lossy", index_url=cutter.url, queue_url=redis_url)
        for phase in (first, second):
            _submit_in_jobs_of_every_size(writers, phase)
            _run_workers(writers)
    assert len(rule.lost) >= 100, len(rule.lost)
    reference = Store(redis_client, settings.replace(namespace="reference"))
    for phase in (first, second):
        reference.index([analyse(d, reference.settings) for d in phase])
    ids = [d.doc_id for d in final]
    lossy = Store(redis_client, settings.replace(namespace="lossy"))
    assert {} == intents_left(redis_client, lossy.keys)
    assert index_view(reference, ids, any_order=True) == index_view(lossy, ids, any_order=True)
    assert_flags_match_reports(lossy)
