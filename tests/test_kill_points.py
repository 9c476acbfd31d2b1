"""A writer killed at every point of a batch write, on one server and on a cluster: the retry
of its job leaves the index equal to one built from scratch, and replaying it changes nothing.

The write of a batch is a few round trips (:mod:`dedup.index.store`); each kill point lets the
first calls of one round trip reach Redis and stops the writer there, as a worker killed with
SIGKILL would be: what was sent is applied (on a cluster, some nodes' shares and not
others'), nothing after it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from dedup.index import scripts
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.servers.connection import IndexClient
from dedup.settings import Settings
from tests.consistency import assert_consistent, assert_flags_match_reports, intents_left
from tests.helpers import rewrite_corpus


class Killed(Exception):
    """The writer stopped here; what it had sent stays applied."""


def _calls(store: Store, batch: list[Document]) -> tuple[list[int], int]:
    """How many calls each round trip of a clean write of ``batch`` sends, and how many round
    trips sent operations on entries' overflow sets."""
    sizes: list[int] = []
    held = [0]
    real = scripts.run

    def counting(client: IndexClient, calls: Sequence[scripts.Call[Any]]) -> list[Any]:
        sizes.append(len(calls))
        held[0] += any(
            c.script is not None
            and c.script.name in ("entries.lua", "update.lua")
            # whether the sets are given comes before the depths (and the reply's keeping)
            and c.command[-3 if c.reply_key else -2] == "1"
            for c in calls
        )
        return real(client, calls)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scripts, "run", counting)
        store.index([analyse(d, store.settings) for d in batch], token="job-1")
    return sizes, held[0]


@pytest.fixture
def writer_settings(index_settings: Settings) -> Settings:
    """Settings with a low boilerplate threshold, so the batches move boilerplate flags."""
    return index_settings.replace(boilerplate_min_documents=3)


def _killing(trip: int, sent: int) -> Any:
    """A ``scripts.run`` that lets round trip ``trip`` send its first ``sent`` calls, then
    stops the writer."""
    real = scripts.run
    count = [0]

    def run(client: IndexClient, calls: Sequence[scripts.Call[Any]]) -> list[Any]:
        count[0] += 1
        if count[0] - 1 < trip:
            return real(client, calls)
        real(client, list(calls)[:sent])
        raise Killed

    return run


@pytest.mark.slow
@pytest.mark.cluster  # half a minute a backend: with the cluster tests (make test-cluster, CI)
def test_every_kill_point_of_a_batch_is_repaired_by_its_retry(
    index_client: IndexClient, writer_settings: Settings
) -> None:
    """For each round trip of the second batch's write, and a kill before, in the middle of
    and after its calls: the job's retry leaves the index as one built from scratch."""
    first, second = rewrite_corpus()
    final = list({d.doc_id: d for d in [*first, *second]}.values())
    probe = Store(index_client, writer_settings.replace(namespace="probe"))
    probe.index([analyse(d, probe.settings) for d in first])
    # The second batch is written by another worker; the banner and the footer are held by
    # many documents, in overflow sets.
    sizes, held = _calls(Store(index_client, probe.settings), second)
    assert len(sizes) >= 6, sizes
    assert held >= 2, "operations on overflow sets are counted, added and taken out"
    points = [(t, sent) for t, n in enumerate(sizes) for sent in sorted({0, n // 2, n})]
    for number, (trip, sent) in enumerate(points):
        settings = writer_settings.replace(namespace=f"kill{number}")
        store = Store(index_client, settings)
        store.index([analyse(d, settings) for d in first])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(scripts, "run", _killing(trip, sent))
            with pytest.raises(Killed):
                Store(index_client, settings).index(
                    [analyse(d, settings) for d in second], token="job-1"
                )
        retried = Store(index_client, settings)  # another worker takes the job again
        retried.index([analyse(d, settings) for d in second], token="job-1")
        assert {} == intents_left(index_client, retried.keys), (trip, sent)
        assert_consistent(index_client, settings, final)
        assert_flags_match_reports(retried)
        before = retried.stats()
        again = retried.index([analyse(d, settings) for d in second], token="job-2")
        assert [False] * len(second) == [r.changed for r in again], "a replay changed nothing"
        assert before == retried.stats()
        retried.drop()
