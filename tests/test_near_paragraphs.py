"""Edited copies of paragraphs across documents (``near_paragraphs``), in a real Redis."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from dedup.client import Client
from dedup.errors import SettingsMismatchError
from dedup.index import layout, records
from dedup.index.store import Store
from dedup.pipeline import analysis, kernel
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.settings import Settings, load_settings
from tests.consistency import assert_consistent, assert_flags_match_reports, intents_left
from tests.helpers import (
    article,
    as_html,
    command,
    edit_words,
    invoke,
    start_worker,
    worker_env,
)
from tests.test_faults import recover_abandoned


@pytest.fixture
def near(settings: Settings) -> Settings:
    """Settings that keep near copies of paragraphs (the default)."""
    return settings.replace(near_paragraphs=True)


@pytest.fixture
def store(near: Settings, redis_client: redis.Redis) -> Store:
    """A store keeping near copies, on an empty database."""
    return Store(redis_client, near)


def index(store: Store, doc_id: str, paragraphs: list[str]) -> None:
    """Analyse and index one document."""
    store.index([analyse(Document(doc_id, as_html(paragraphs)), store.settings)])


def excerpt_case(seed: int) -> tuple[list[str], list[str]]:
    """A story, and another article holding three of its paragraphs with a word changed in
    each (two in the middle one)."""
    rng = random.Random(seed)
    story, host = article(seed, 10), article(seed + 100, 10)
    copied = [edit_words(p, rng, n) for p, n in zip(story[3:6], (1, 2, 1), strict=True)]
    return story, host[:5] + copied + host[5:]


def test_edited_paragraphs_are_found_with_their_source(store: Store) -> None:
    """Each edited paragraph lists its original, and the excerpt is reported once."""
    story, holder = excerpt_case(1)
    index(store, "story", story)
    index(store, "holder", holder)
    index(store, "unrelated", article(77, 10))
    report = store.report("holder")
    assert [5, 6, 7] == [row["paragraph"] for row in report["near_paragraphs"]]
    for offset, row in enumerate(report["near_paragraphs"]):
        [copy] = row["copies"]
        assert ("story", 3 + offset, False) == (copy["doc_id"], copy["paragraph"], copy["exact"])
        assert 0.75 <= copy["similarity"] < 1.0
    [excerpt] = report["shared_excerpts"]
    assert ("story", [5, 6, 7]) == (excerpt["doc_id"], excerpt["paragraphs"])
    assert 0.2 < excerpt["containment"] < 0.4
    assert [] == report["shared_paragraphs"], "no exact copy: the old field stays as it was"
    assert ["holder"] == [e["doc_id"] for e in store.report("story")["shared_excerpts"]]
    assert [] == store.report("unrelated")["near_paragraphs"]


def _pieces_of(text: str, settings: Settings) -> tuple[int, ...]:
    """The pieces the index keeps of one paragraph."""
    [kept] = analyse(Document("one", as_html([text])), settings).pieces or [()]
    return kept


def _without_kept_pieces(text: str, settings: Settings) -> str:
    """The paragraph with two words replaced, one in each of two of its thirds, so that it
    keeps no piece of the original's."""
    words = text.split()
    size = len(words) // 3
    for first, second in ((0, 2), (0, 1), (1, 2)):
        edited = list(words)
        edited[first * size + 1] = "quorumx"
        edited[second * size + 1] = "zephyrx"
        copy = " ".join(edited)
        if set(_pieces_of(text, settings)).isdisjoint(_pieces_of(copy, settings)):
            return copy
    raise AssertionError("every choice left a kept piece whole")


def test_two_of_three_pieces_are_kept_the_smallest(near: Settings) -> None:
    """A signed paragraph keeps the two of its head, middle and tail keys that are smallest,
    and a word changed in one third leaves one of them on both sides."""
    text = article(11, 1)[0]
    kept = _pieces_of(text, near)
    assert 2 == len(kept) and list(kept) == sorted(kept)
    words = text.split()
    for at in range(0, len(words), 5):
        edited = " ".join([*words[:at], "quorumx", *words[at + 1 :]])
        assert not set(kept).isdisjoint(_pieces_of(edited, near)), at


@pytest.mark.usefixtures("compiled_kernel")
@given(
    counts=st.lists(st.integers(0, 70), max_size=12),
    min_words=st.integers(3, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_kernel_keeps_the_pieces_python_keeps(
    counts: list[int], min_words: int, seed: int
) -> None:
    """The compiled pieces of a document's paragraphs are Python's, short paragraphs (whose
    word count is hashed in) and those at the signing threshold included."""
    sizes = np.array(counts, dtype=np.int64)
    hashes = np.random.default_rng(seed).integers(0, 2**64, sum(counts), dtype=np.uint64)
    signed = (sizes >= min_words).tolist()
    compiled = analysis.all_pieces(hashes, sizes, min_words)
    with mock.patch.object(kernel, "compiled", None):
        assert analysis.all_pieces(hashes, sizes, min_words) == compiled
    assert [bool(k) for k in compiled] == signed


def test_a_paragraph_next_to_a_found_one_is_found_without_a_piece(store: Store) -> None:
    """In an excerpt, a paragraph sharing no kept piece with its original is found from its
    neighbour on both sides; an unrelated neighbour is not linked."""
    rng = random.Random(12)
    story, host = article(12, 8), article(112, 6)
    middle = _without_kept_pieces(story[3], store.settings)
    copied = [edit_words(story[2], rng, 1), middle, edit_words(story[4], rng, 1)]
    index(store, "story", story)
    index(store, "holder", host[:3] + copied + host[3:])
    rows = {r["paragraph"]: r["copies"] for r in store.report("holder")["near_paragraphs"]}
    assert [3, 4, 5] == sorted(rows)
    assert [("story", 3)] == [(c["doc_id"], c["paragraph"]) for c in rows[4]]
    assert 0.6 <= rows[4][0]["similarity"] < 1.0


def test_exact_copies_keep_their_old_field_too(store: Store) -> None:
    """An exact copy is in ``shared_paragraphs`` as before and in ``near_paragraphs``."""
    story = article(3, 8)
    index(store, "story", story)
    index(store, "holder", [*article(4, 8), story[2]])
    report = store.report("holder")
    assert [8] == [row["paragraph"] for row in report["shared_paragraphs"]]
    [row] = report["near_paragraphs"]
    assert {"doc_id": "story", "paragraph": 2, "similarity": 1.0, "exact": True} == (
        row["copies"][0]
    )
    assert [] == report["shared_excerpts"], "one paragraph is not an excerpt"


def test_a_near_duplicate_is_not_an_excerpt(store: Store) -> None:
    """A document alike as a whole is a near duplicate, not a second excerpt line."""
    rng = random.Random(5)
    story = article(5, 10)
    index(store, "story", story)
    index(store, "copy", [edit_words(p, rng, 1) for p in story])
    report = store.report("copy")
    assert ["story"] == [n["doc_id"] for n in report["near_duplicates"]]
    assert [] == report["shared_excerpts"]
    assert 10 == len(report["near_paragraphs"])


def test_a_varying_template_line_is_boilerplate(store: Store) -> None:
    """A line whose year changes between documents still counts as boilerplate, and stays
    out of the document signature."""
    threshold = store.settings.boilerplate_min_documents
    for n in range(threshold):
        line = f"Copyright {2010 + n % 4} Example Media Group, all rights reserved worldwide."
        index(store, f"d{n}", [*article(200 + n, 6), line])
    report = store.report("d0")
    assert [6] == [row["paragraph"] for row in report["boilerplate"]]
    assert "boilerplate" in report["flags"]
    assert [] == report["near_paragraphs"], "boilerplate lists no copies"
    assert_flags_match_reports(store)


def test_setting_off_keeps_todays_records(settings: Settings, redis_client: redis.Redis) -> None:
    """With the setting off, records keep no near-copy data and reports no near copies."""
    settings = settings.replace(near_paragraphs=False)
    plain = Store(redis_client, settings)
    story, holder = excerpt_case(2)
    index(plain, "story", story)
    index(plain, "holder", holder)
    assert plain.resolve("holder")[1] is not None
    assert plain.resolve("holder")[1].near is None  # type: ignore[union-attr]
    report = plain.report("holder")
    assert ([], []) == (report["near_paragraphs"], report["shared_excerpts"])
    with pytest.raises(SettingsMismatchError, match="near_paragraphs"):
        index(Store(redis_client, settings.replace(near_paragraphs=True)), "x", story)


def test_record_round_trip_with_near_data() -> None:
    """A record with near-copy data unpacks to itself, extra JSON after it."""
    near = [
        records.NearParagraph(12, bytes(range(8)), (1 << 20, (1 << 64) - (1 << 20))),
        records.NearParagraph(2, b"", ()),
        records.NearParagraph(300, bytes(8), (3 << 20, 4 << 20)),
    ]
    record = records.Record(
        "d", None, 3, 1.5, 7, b"", [5 << 16, 6 << 16, 7 << 16], extra={"fetched_at": "x"}, near=near
    )
    assert record == records.unpack(records.pack(record))
    # stepped over: the rest of the record, its extra JSON after the near-copy data, as is
    assert dataclasses.replace(record, near=None) == records.unpack(
        records.pack(record), near=False
    )


@given(
    st.lists(
        st.tuples(st.integers(0, 50_000), st.booleans(), st.binary(min_size=8, max_size=8)),
        max_size=80,
    ),
    st.sampled_from([1, 2]),
    st.data(),
)
def test_near_data_is_stepped_over_whatever_its_paragraphs(
    paragraphs: list[tuple[int, bool, bytes]], kept: int, data: st.DataObject
) -> None:
    """Stepping over the near-copy data (one pattern matched in C) ends where it ends, for
    word counts of one varint byte or several and any mix of signed paragraphs."""
    near = [
        records.NearParagraph(
            words,
            bits if signed else b"",
            tuple(data.draw(st.integers(0, 2**44 - 1)) << 20 for _ in range(kept))
            if signed
            else (),
        )
        for words, signed, bits in paragraphs
    ]
    packed = b"head" + records.pack_near(near) + b"\x81tail"
    assert len(packed) - 5 == records._near_end(packed, 4, len(near))


def test_setting_from_toml_and_environment(tmp_path: Path) -> None:
    """The switch reads as a TOML boolean or as words in the environment."""
    path = tmp_path / "dedup.toml"
    path.write_text("[dedup]\nnear_paragraphs = true\n")
    assert load_settings(path, env={}).near_paragraphs
    assert not load_settings(env={"DEDUP_NEAR_PARAGRAPHS": "false"}).near_paragraphs
    assert load_settings(env={"DEDUP_NEAR_PARAGRAPHS": "True"}).near_paragraphs


def test_delete_and_reindex_leave_no_piece_entries(store: Store, redis_client: redis.Redis) -> None:
    """Replacing and deleting documents leaves the index as one built from scratch."""
    story, holder = excerpt_case(3)
    index(store, "story", story)
    index(store, "holder", holder)
    index(store, "holder", holder[:-2])
    index(store, "gone", article(9, 5))
    assert 1 == store.delete(["gone"])
    documents = [
        Document("story", as_html(story)),
        Document("holder", as_html(holder[:-2])),
    ]
    assert_consistent(redis_client, store.settings, documents)


def test_through_real_workers_killed_mid_batch(near: Settings, redis_client: redis.Redis) -> None:
    """Documents sent through the queue to a worker killed mid-batch and retried end as an
    index built from scratch, and each excerpt is reported with its source.

    The killed job is retried as RQ retries an abandoned one (its heartbeat run out): the
    retry takes back or finishes what the job left, under its own token. Sending the same
    documents again in other jobs does not: a write another job began may still be running.
    """
    near = near.replace(retry_backoff=0.0)
    switch = {"DEDUP_NEAR_PARAGRAPHS": "true"}
    documents = []
    for seed in range(1, 6):
        story, holder = excerpt_case(seed)
        documents += [Document(f"s{seed}", as_html(story)), Document(f"h{seed}", as_html(holder))]
    client = Client(near)
    client.submit_many(documents, batch_size=2)
    worker = start_worker(near, env=worker_env(near, **switch))
    store = Store(redis_client, near)
    try:  # killed with a write under way (an intent kept), or past three documents
        deadline = time.monotonic() + 60
        while not intents_left(redis_client, store.keys) and time.monotonic() < deadline:
            if store.stats()["documents"] >= 3:
                break
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    recover_abandoned(near, redis_client)
    client.submit_many(documents, batch_size=10)  # the producer sends everything again
    done = command(near, "worker", "--burst", env=switch)
    assert 0 == done.returncode, done.stderr
    assert_consistent(redis_client, near, documents)
    assert_flags_match_reports(store)
    for seed in range(1, 6):
        [excerpt] = store.report(f"h{seed}")["shared_excerpts"]
        assert f"s{seed}" == excerpt["doc_id"]


def test_an_index_from_before_the_setting_reads_on(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """An index whose settings were recorded before near_paragraphs existed takes writes with
    the setting off, and refuses a writer with it on."""
    import json

    from dedup.index.meta import signature_settings

    settings = settings.replace(near_paragraphs=False)
    recorded = signature_settings(settings, layout.SERVER_SHARDS)
    assert "near_paragraphs" not in recorded and layout.FORMAT_VERSION == recorded["format"]
    store = Store(redis_client, settings)
    redis_client.hset(store.keys.meta, "signature", json.dumps(recorded, sort_keys=True))
    store.check_settings()
    with pytest.raises(SettingsMismatchError, match="near_paragraphs=false \\(ours true\\)"):
        Store(redis_client, settings.replace(near_paragraphs=True)).check_settings()


def test_report_view_shows_copies_and_excerpts_escaped(near: Settings, store: Store) -> None:
    """``dedup report`` without --json lists each edited copy and one line per excerpt source,
    its id shown as text: markup in it stays inert."""
    source = "[bold]story[/bold]"
    story, holder = excerpt_case(1)
    index(store, source, story)
    index(store, "holder", holder)
    shown = invoke(near, "report", "holder").output
    assert "paragraphs copied in other documents" in shown
    assert 3 == shown.count("edited")
    assert "reuses 3 paragraphs of [bold]story[/bold] (containment 0." in shown
    assert "): 5-7" in shown
    back = invoke(near, "report", source).output
    assert "reuses 3 paragraphs of holder" in back
    assert "[bold]story[/bold]" in back
