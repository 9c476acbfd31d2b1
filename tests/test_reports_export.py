"""Reports a scraper can act on: ``list --since``, ``export`` as JSON lines or CSV."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest
import redis

from dedup.cli.durations import parse_duration
from dedup.errors import InputError
from dedup.index.store import Store
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document
from dedup.report import EXPORTED_FIELDS, Exported, Report
from dedup.settings import Settings
from tests.conftest import EXAMPLES, SEED
from tests.helpers import article, as_html, invoke

DAY = 86400.0


@pytest.fixture
def store(settings: Settings, redis_client: redis.Redis) -> Store:
    """A store on an empty database."""
    return Store(redis_client, settings)


def index(
    store: Store, doc_id: str, body: str, url: str | None = None, *, ago: float = 0.0
) -> None:
    """Analyse and index one document, as if ``ago`` seconds ago."""
    then = Store(store.client, store.settings, clock=lambda: time.time() - ago)
    then.index([analyse(Document(doc_id, body, url), store.settings)])


@pytest.fixture
def corpus(store: Store) -> Store:
    """The seed (doubled body), a copy of it, an unrelated article, a doubled one of last week."""
    old = article(2)
    index(store, "old-doubled", as_html(old + old), ago=7 * DAY)
    index(store, "seed", SEED.read_text(), "https://example.com/seed")
    index(store, "copy", (EXAMPLES / "seed-copy-one-paragraph-dropped.html").read_text())
    index(store, "unrelated", as_html(article(1)))
    return store


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 2 * DAY), ("1w", 7 * DAY), (" 1.5H ", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    """Durations people type become seconds."""
    assert seconds == parse_duration(text)


@pytest.mark.parametrize("text", ["", "1", "h", "-1h", "1y", "1h30m", "soon"])
def test_bad_durations(text: str) -> None:
    """Anything else says what to type."""
    with pytest.raises(InputError, match="use a number and s, m, h, d or w"):
        parse_duration(text)


def _ids(output: str) -> list[str]:
    return [json.loads(line)["doc_id"] for line in output.splitlines()]


def test_list_since_filters_by_indexed_time(settings: Settings, corpus: Store) -> None:
    """--since keeps documents indexed in the window, with or without a flag."""
    assert ["seed"] == _ids(
        invoke(settings, "list", "--since", "1h", "--flag", "doubled_body", "--json").output
    )
    assert {"seed", "old-doubled"} == set(
        _ids(invoke(settings, "list", "--since", "8d", "--flag", "doubled_body", "--json").output)
    )
    assert ["unrelated", "copy", "seed"] == _ids(
        invoke(settings, "list", "--since", "1h", "--json").output
    )
    assert 4 == len(_ids(invoke(settings, "list", "--json").output))
    result = invoke(settings, "list", "--since", "soon")
    assert 2 == result.exit_code
    assert "invalid duration 'soon'" in result.output


@pytest.fixture(params=[1, 128], ids=["one-group", "128-groups"])
def grouped(request: pytest.FixtureRequest, settings: Settings, redis_client: redis.Redis) -> Store:
    """A store on an empty database, cut into one group (one server's default) or 128 (a
    cluster's), whose records lists and purges merge by time."""
    return Store(redis_client, settings.replace(index_shards=request.param))


def test_scan_sees_each_document_once_across_pages(grouped: Store) -> None:
    """Documents indexed at the same instant are listed once each, by time and by flag."""
    store = grouped
    same = time.time()
    at_once = Store(store.client, store.settings, clock=lambda: same)
    for n in range(7):
        body = article(100 + n, 3)
        at_once.index([analyse(Document(f"d{n}", as_html(body + body)), store.settings)])
    listed = [row["doc_id"] for row in store.scan_documents(page=2)]
    assert sorted(listed) == [f"d{n}" for n in range(7)]
    flagged = [row["doc_id"] for row in store.scan_documents("doubled_body", page=2)]
    assert sorted(flagged) == [f"d{n}" for n in range(7)]
    assert 7 == len(store.list_documents(None, 100, since=same - 60))
    assert 0 == len(store.list_documents(None, 100, since=same + 1))
    assert 3 == len(store.list_documents(None, 3))


def test_export_jsonl_has_reasons_spans_and_matches(settings: Settings, corpus: Store) -> None:
    """Each flagged document: its flags, repeated spans, and the ids it matches with similarity."""
    result = invoke(settings, "export", "--since", "1d")
    assert 0 == result.exit_code, result.output
    rows = {row["doc_id"]: row for row in map(json.loads, result.output.splitlines())}
    assert {"seed", "copy"} == set(rows)
    seed = rows["seed"]
    assert list(EXPORTED_FIELDS) == list(seed)
    assert "https://example.com/seed" == seed["url"]
    assert ["doubled_body", "internal_repeat", "near_duplicate"] == seed["flags"]
    assert [{"first": [0, 12], "repeat": [13, 25], "similarity": 1.0}] == seed["internal_repeats"]
    assert ["copy"] == [m["doc_id"] for m in seed["near_duplicates"]]
    assert 0.7 <= seed["near_duplicates"][0]["similarity"] < 1.0
    doubled = invoke(settings, "export", "--flag", "doubled_body").output
    assert ["seed", "old-doubled"] == _ids(doubled)


def test_export_csv_to_a_file(settings: Settings, corpus: Store, tmp_path: Path) -> None:
    """CSV: a header, one row per document, lists flattened; the file appears whole."""
    target = tmp_path / "flagged.csv"
    result = invoke(settings, "export", "--format", "csv", "--output", str(target))
    assert 0 == result.exit_code, result.output
    assert f"exported 3 document(s) to {target}" in result.stderr
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert list(EXPORTED_FIELDS) == rows[0]
    by_id = {row[0]: dict(zip(EXPORTED_FIELDS, row, strict=True)) for row in rows[1:]}
    assert {"seed", "copy", "old-doubled"} == set(by_id)
    seed = by_id["seed"]
    assert "doubled_body internal_repeat near_duplicate" == seed["flags"]
    assert "0-12/13-25@1" == seed["internal_repeats"]
    assert seed["near_duplicates"].startswith("copy@0.")
    assert seed["indexed_at"].endswith("Z") and "T" in seed["indexed_at"]
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_to_a_folder_that_does_not_exist(settings: Settings, corpus: Store) -> None:
    """A target that cannot be written: one line, exit 2."""
    result = invoke(settings, "export", "--output", "/nonexistent-folder/out.jsonl")
    assert 2 == result.exit_code
    assert "cannot write /nonexistent-folder/out.jsonl" in result.stderr


def test_purge_and_lists_across_many_record_buckets(grouped: Store) -> None:
    """Hundreds of documents span several record hashes; purge and lists walk them all."""
    store = grouped
    old = Store(store.client, store.settings, clock=lambda: time.time() - 40 * DAY)
    old.index(
        [
            analyse(Document(f"old{n}", as_html(article(500 + n, 2))), store.settings)
            for n in range(300)
        ]
    )
    store.index(
        [
            analyse(Document(f"new{n}", as_html(article(900 + n, 2))), store.settings)
            for n in range(100)
        ]
    )
    rows = list(store.scan_documents(page=50))
    listed = [row["doc_id"] for row in rows]
    assert set(listed[:100]) == {f"new{n}" for n in range(100)}
    times = [row["indexed_at"] for row in rows]
    assert times == sorted(times, reverse=True), "newest first"
    assert 400 == len(listed) == len(set(listed))
    assert 100 == len(store.list_documents(None, 1000, since=time.time() - 3600))
    assert 300 == store.purge(30 * DAY)
    assert {f"new{n}" for n in range(100)} == {
        r["doc_id"] for r in store.list_documents(None, 1000)
    }
    assert 100 == store.stats()["documents"]


def test_export_rows_are_part_of_the_report() -> None:
    """An export row carries report fields only, under the report's own names and types."""
    exported, report = Exported.__annotations__, Report.__annotations__
    assert exported == {name: report[name] for name in exported}
