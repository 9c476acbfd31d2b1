"""A page copied more times than an entry's holders are read (``layout.SAMPLE``): reports
list a bounded number of copies and count them all, lists and flags stay right for every
copy, and deleting or replacing one copy leaves the others as they should be."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from dedup.index import entries, groups, layout, reads, scripts
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.servers.connection import connect
from dedup.settings import Settings
from tests.helpers import article, as_html, invoke

COPIES = layout.SAMPLE + 44
MANY = 600
"""Copies past Redis's 512 members of a set kept as sorted integers (``set-max-intset-entries``),
which are read back oldest first: past it a set is a hash table, read in no order."""


def _index_copies(settings: Settings, copies: int = COPIES) -> Store:
    """The same page under ``copies`` ids, written in bulk."""
    page = as_html(article(5, 4))
    documents = [Document(f"copy-{n}", page) for n in range(copies)]
    store = Store(connect(str(settings.redis_url)), settings)
    for at in range(0, copies, 100):
        store.index([analyse(d, settings) for d in documents[at : at + 100]])
    return store


def test_a_report_lists_a_bounded_number_of_copies_and_counts_them_all(
    settings: Settings,
) -> None:
    """Every copy counted, at most ``layout.SAMPLE`` read, ``--limit`` of them listed."""
    store = _index_copies(settings)
    report = store.report("copy-7")
    assert COPIES - 1 == report["exact_duplicates_total"]
    assert COPIES - 1 == report["near_duplicates_total"]
    assert len(report["exact_duplicates"]) <= layout.SAMPLE
    assert "exact_duplicate" in report["flags"]
    limited = store.report("copy-7", limit=5)
    assert 5 == len(limited["exact_duplicates"]) == len(limited["near_duplicates"])
    assert COPIES - 1 == limited["exact_duplicates_total"]
    printed = json.loads(invoke(settings, "report", "copy-7", "--json", "--limit", "3").output)
    assert 3 == len(printed["exact_duplicates"])
    assert COPIES - 1 == printed["exact_duplicates_total"]


def test_every_copy_is_listed_as_an_exact_duplicate_and_stays_so_after_a_delete(
    settings: Settings,
) -> None:
    """``list --flag exact_duplicate`` holds every copy; deleting and replacing copies
    leaves the rest flagged and counted."""
    store = _index_copies(settings)
    listed = {row["doc_id"] for row in store.list_documents("exact_duplicate", 10**6)}
    assert {f"copy-{n}" for n in range(COPIES)} == listed
    assert 1 == store.delete(["copy-8"])
    store.index([analyse(Document("copy-9", as_html(article(6, 4))), settings)])
    listed = {row["doc_id"] for row in store.list_documents("exact_duplicate", 10**6)}
    assert {f"copy-{n}" for n in range(COPIES)} - {"copy-8", "copy-9"} == listed
    assert COPIES - 3 == store.report("copy-7")["exact_duplicates_total"]
    assert [] == store.report("copy-9")["flags"]


def _round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The calls of each round trip sent from now, counted as they go."""
    sent: list[int] = []
    real = scripts._send

    def counted(client: Any, calls: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(len(calls))
        return real(client, calls, *args, **kwargs)

    monkeypatch.setattr(scripts, "_send", counted)
    return sent


def test_a_report_of_a_copy_reads_each_record_once_and_each_entry_in_one_round_trip(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Placing a copy in its group reuses the records its matches were read with (none is
    read again by id) and what its report read, and a report names the overflow sets of the
    entries it looks up at once: a hot page's entries all have one, and naming them later
    cost a round trip."""
    store = _index_copies(settings)
    sent = _round_trips(monkeypatch)
    by_id: list[str] = []
    read_by_id = groups._records_by_id

    def records_by_id(reads: Any, ids: Any) -> Any:
        by_id.extend(ids)
        return read_by_id(reads, ids)

    monkeypatch.setattr(groups, "_records_by_id", records_by_id)
    report = store.report("copy-7")
    assert report["group"] is not None
    assert [] == by_id
    # two round trips each: the document's record, its report; its matches in the group
    # are what its report read (the same entries and records), not read again
    assert 4 == len(sent), sent


def test_a_copy_written_alone_is_not_read_again_for_its_own_earlier_version(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new version of one copy, written alone: its counts leave its earlier version out,
    so no report is read to refresh its flags, and it is flagged as the others are."""
    store = _index_copies(settings)
    refreshed: list[set[int]] = []
    real = Store.refresh_flags

    def refresh(self: Store, serials: set[int]) -> None:
        refreshed.append(set(serials))
        real(self, serials)

    monkeypatch.setattr(Store, "refresh_flags", refresh)
    edited = as_html(article(5, 4)).replace("</p>", " and one more line.</p>", 1)
    store.index([analyse(Document("copy-3", edited), settings)])
    assert not any(refreshed)
    report = store.report("copy-3")
    assert "boilerplate" in report["flags"]
    assert "exact_duplicate" not in report["flags"]
    assert "copy-3" not in store.report("copy-4")["exact_duplicates"]


def test_a_writer_names_the_sets_it_knows_and_sends_no_call_twice(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a writer has met the page's entries in their overflow sets, replacing and
    deleting a copy name those sets at once: no call is held back for want of one and sent
    again, so each takes the round trips of a page copied a few times."""
    store = _index_copies(settings)
    assert store.depths.sets  # learnt from the bulk writes' answers
    sent = _round_trips(monkeypatch)
    edited = as_html(article(5, 4)).replace("</p>", " and one more line.</p>", 1)
    store.index([analyse(Document("copy-5", edited), settings)])
    replaced = len(sent)
    sent.clear()
    store.delete(["copy-6"])
    # peek, begin, commit, what it owes, flags, done; a delete
    # peeks, commits, takes the entries out, sets flags and is done
    assert (6, 5) == (replaced, len(sent))


def test_every_copy_reports_the_group_dedup_groups_lists(settings: Settings) -> None:
    """A report reads a sample of a page's copies, so it found the group's canonical (the
    earliest copy) only when the sample held it. An entry in its overflow set keeps its
    first holders, the earliest, and a report reads them with the sample: every copy names
    the group and canonical ``dedup groups`` lists."""
    store = _index_copies(settings, copies=MANY)
    [group] = [
        json.loads(line) for line in invoke(settings, "groups", "--json").output.splitlines()
    ]
    assert "copy-0" == group["canonical"]
    for doc in ("copy-7", "copy-50", "copy-99", "copy-400", f"copy-{MANY - 1}"):
        report = store.report(doc)
        assert (group["group"], "copy-0") == (report["group"], report["canonical"]), doc


def test_a_report_holds_the_collector_off_while_it_reads_and_leaves_it_as_it_was(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cyclic collector does not run inside a report (its objects hold no cycles), and
    after the report it is on or off as the caller had it, whatever the report answered."""
    store = _index_copies(settings, layout.INLINE + 2)
    during: list[bool] = []
    report_of = reads.Reads.report_of

    def watched(self: Any, *args: Any, **kwargs: Any) -> Any:
        during.append(gc.isenabled())
        return report_of(self, *args, **kwargs)

    monkeypatch.setattr(reads.Reads, "report_of", watched)
    assert gc.isenabled()
    store.report("copy-1")
    assert [False] == during
    assert gc.isenabled()
    monkeypatch.setattr(reads.Reads, "grouped", lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        store.report("copy-1")
    assert gc.isenabled()
    gc.disable()
    try:
        monkeypatch.undo()
        store.report("copy-2")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_batch_of_copies_adds_to_a_hot_entry_in_calls_of_a_bounded_size(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of 100 copies of a page whose entries have overflow sets puts 100 operations
    on each of them: they go in calls of at most ``entries.SET_OPS_PER_CALL``, in order, and
    every copy is counted (one call of 200 held a master 10-20 ms)."""
    store = _index_copies(settings, MANY)  # past the intset: the entries' sets are hash tables
    sizes: list[int] = []
    real = scripts._send

    def sized(client: Any, calls: Any) -> Any:
        for call in calls:
            if call.script is not None and call.script.name == "update.lua":
                words = call.command  # EVALSHA, sha, n, KEYS, ARGV[1] (the layout), ARGV[2]
                sizes.append(len(words[3 + words[2] + 1]) // 3)  # three letters an operation
        return real(client, calls)

    monkeypatch.setattr(scripts, "_send", sized)
    page = as_html(article(5, 4))
    store.index([analyse(Document(f"late-{n}", page), settings) for n in range(100)])
    monkeypatch.undo()
    assert sizes and max(sizes) <= entries.SET_OPS_PER_CALL
    report = store.report("late-99")
    assert MANY + 99 == report["exact_duplicates_total"]
    assert "exact_duplicate" in store.report("copy-3")["flags"]


def test_a_store_that_read_first_keeps_what_it_learnt_when_it_writes(settings: Settings) -> None:
    """A store's first write checks the index's settings; the key names it finds are those
    its reads used, so what it learnt by them stays: the shards' depths and the entries met
    in overflow sets (a first write read every shard's depths again, and held back its
    updates on the page's entries for want of their sets: three round trips more)."""
    _index_copies(settings)
    store = Store(connect(str(settings.redis_url)), settings)
    store.report("copy-1")
    depths = store.depths
    assert depths.sets
    edited = as_html(article(5, 4)).replace("</p>", " and one more line.</p>", 1)
    store.index([analyse(Document("copy-2", edited), settings)])
    assert store.depths is depths
