"""The Scrapy pipeline: batching, field names, drop or tag, and a real crawl through a worker."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import scrapy
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.test import get_crawler

from dedup import Client
from dedup.errors import StoreError
from dedup.index.store import Store
from dedup.integrations.scrapy import DedupPipeline
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import Document, id_for_url
from dedup.settings import Settings
from tests.conftest import EXAMPLES
from tests.helpers import article, as_html, command

SPIDER = EXAMPLES / "integrations" / "scrapy_spider.py"


def _queued_ids(client: Client) -> list[str]:
    """Ids of the documents waiting on the queue, in order."""
    return [doc_id for job in client.queue.get_jobs() for doc_id in _job_ids(job.args)]


def _job_ids(args: Any) -> list[str]:
    return [payload["id"] for payload in args[0]]


def _index(settings: Settings, doc_id: str, html: str) -> None:
    """Put a document straight into the index, as if a worker had done it earlier."""
    client = Client(settings)
    Store(client.index_redis, settings).index([analyse(Document(doc_id, html), settings)])


def test_items_are_queued_in_batches(settings: Settings) -> None:
    """Items go out a batch at a time and the rest at close; items without a page pass through."""
    client = Client(settings)
    pipeline = DedupPipeline(client, batch_size=2)
    items = [{"url": f"https://example.com/{n}", "html": as_html(article(n))} for n in range(3)]
    items.append({"url": "https://example.com/text", "text": "\n\n".join(article(9))})
    items.append({"url": "https://example.com/empty", "title": "no page here"})
    for item in items[:3]:
        assert item is pipeline.process_item(item)
    assert [id_for_url("https://example.com/0"), id_for_url("https://example.com/1")] == (
        _queued_ids(client)
    )
    for item in items[3:]:
        assert item is pipeline.process_item(item)
    pipeline.close_spider()
    assert [id_for_url(str(item["url"])) for item in items[:4]] == _queued_ids(client)
    [job] = client.queue.get_jobs()[1:]
    payloads = job.args[0]
    assert ["html", "text"] == [p["format"] for p in payloads]
    assert not any("fetched_at" in p for p in payloads)  # the items carry no fetch time


def test_documents_wait_for_redis_to_come_back(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed enqueue loses nothing: the batch is kept, tried again later, and at close."""
    client = Client(settings)
    pipeline = DedupPipeline(client, batch_size=2)
    real_submit_many = client.submit_many
    calls = []

    def refuse_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(args[0]))
        if len(calls) == 1:
            raise StoreError("lost the connection to Redis: gone")
        return real_submit_many(*args, **kwargs)

    monkeypatch.setattr(client, "submit_many", refuse_once)
    with caplog.at_level(logging.ERROR):
        for n in range(3):
            pipeline.process_item({"url": f"https://example.com/{n}", "html": as_html(article(n))})
    assert [2] == calls and "could not queue 2 document(s)" in caplog.text
    pipeline.close_spider()
    assert [2, 3] == calls
    assert [id_for_url(f"https://example.com/{n}") for n in range(3)] == _queued_ids(client)


def test_settings_name_the_fields(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """Other field names, an id field, a fetch time field and a batch size come from the
    crawl's settings; a fetch time that is not one is left out, with a warning."""
    crawler = get_crawler(
        settings_dict={
            "DEDUP_REDIS_URL": settings.redis_url,
            "DEDUP_URL_FIELD": "link",
            "DEDUP_HTML_FIELD": "body",
            "DEDUP_ID_FIELD": "sku",
            "DEDUP_FETCHED_AT_FIELD": "crawled",
            "DEDUP_BATCH_SIZE": 1,
        }
    )
    pipeline = DedupPipeline.from_crawler(crawler)
    item = {"link": "https://example.com/p", "body": as_html(article(1)), "sku": 7}
    pipeline.process_item({**item, "crawled": "2024-05-01T12:00:00Z"})
    pipeline.process_item({**item, "sku": 8, "crawled": datetime(2024, 5, 2, 8, 30, tzinfo=UTC)})
    with caplog.at_level(logging.WARNING):
        pipeline.process_item({**item, "sku": 9, "crawled": "yesterday"})
    assert "queued without a fetch time" in caplog.text
    payloads = [p for job in pipeline.client.queue.get_jobs() for p in job.args[0]]
    fields = ("id", "url", "format", "fetched_at")
    assert [
        {"id": "7", "url": "https://example.com/p", "format": "html"},
        {"id": "8", "url": "https://example.com/p", "format": "html"},
        {"id": "9", "url": "https://example.com/p", "format": "html"},
    ] == [{k: p[k] for k in fields[:3]} for p in payloads]
    assert ["2024-05-01T12:00:00Z", "2024-05-02T08:30:00Z", None] == [
        p.get("fetched_at") for p in payloads
    ]
    with pytest.raises(NotConfigured, match="DEDUP_ON_DUPLICATE"):
        DedupPipeline(pipeline.client, on_duplicate="delete")


def test_drop_known_copies(settings: Settings) -> None:
    """With "drop", a page whose content the index holds under another id is dropped."""
    body = article(2)
    _index(settings, "known", as_html(body))
    pipeline = DedupPipeline(Client(settings), on_duplicate="drop")
    copy = {"url": "https://example.org/copy", "html": "<div>" + as_html(body).upper() + "</div>"}
    with pytest.raises(DropItem, match="exact duplicate of known"):
        pipeline.process_item(copy)
    fresh = {"url": "https://example.org/fresh", "html": as_html(article(3))}
    assert fresh is pipeline.process_item(fresh)
    pipeline.close_spider()
    assert [id_for_url("https://example.org/fresh")] == _queued_ids(pipeline.client)


def test_tag_copies_in_the_index_and_in_the_crawl(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """With "tag", copies carry the ids they copy; re-crawling the same URL is not a copy."""
    _index(settings, "known", as_html(article(4)))
    pipeline = DedupPipeline(Client(settings), on_duplicate="tag")
    first = {"url": "https://example.com/a", "html": as_html(article(5))}
    again = {"url": "https://example.com/b", "html": as_html(article(5))}
    known = {"url": "https://example.com/c", "html": as_html(article(4))}
    fresh = {"url": "https://example.com/d", "html": as_html(article(6))}
    for item in (first, again, known, fresh):
        pipeline.process_item(item)
    assert "dedup_duplicate_of" not in first and "dedup_duplicate_of" not in fresh
    assert [id_for_url("https://example.com/a")] == again["dedup_duplicate_of"]
    assert ["known"] == known["dedup_duplicate_of"]

    class Page(scrapy.Item):
        url = scrapy.Field()
        html = scrapy.Field()

    with caplog.at_level(logging.ERROR):
        for _ in range(2):
            page = Page(url="https://example.com/e", html=as_html(article(4)))
            assert page is pipeline.process_item(page)
    assert 1 == caplog.text.count("declare a 'dedup_duplicate_of' field")


def test_near_duplicates_at_one_round_trip_per_item(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DEDUP_DUPLICATE_KIND "near", edited copies in the index or earlier in the crawl
    count too, best first; each item costs two round trips at most (the holders of its entries, then
    their records); unlike pages pass."""
    from dedup.index import scripts

    body = article(21, 16)
    _index(settings, "known", as_html(body))
    trips: list[int] = []
    real_run = scripts.run
    monkeypatch.setattr(
        scripts, "run", lambda client, calls: trips.append(1) or real_run(client, calls)
    )
    pipeline = DedupPipeline(Client(settings), on_duplicate="tag", duplicate_kind="near")
    edited = {"url": "https://example.com/edited", "html": as_html(body[:14] + article(22, 2))}
    again = {"url": "https://example.com/again", "html": as_html(body[:15] + article(23, 1))}
    fresh = {"url": "https://example.com/fresh", "html": as_html(article(24, 16))}
    for item in (edited, again, fresh):
        assert item is pipeline.process_item(item)
    # two per item at most (none for records when nothing matched), and the shards' depths
    # read once by the client
    assert len(trips) <= 7
    assert ["known"] == edited["dedup_duplicate_of"]
    assert {"known", id_for_url("https://example.com/edited")} == set(again["dedup_duplicate_of"])
    assert "dedup_duplicate_of" not in fresh
    strict = DedupPipeline(
        Client(settings), on_duplicate="tag", duplicate_kind="near", threshold=0.99
    )
    copy = {"url": "https://example.org/y", "html": edited["html"]}
    strict.process_item(copy)
    assert "dedup_duplicate_of" not in copy
    dropping = DedupPipeline(Client(settings), on_duplicate="drop", duplicate_kind="near")
    with pytest.raises(DropItem, match="duplicate of known"):
        dropping.process_item({"url": "https://example.org/x", "html": edited["html"]})
    with pytest.raises(NotConfigured, match="DEDUP_DUPLICATE_KIND"):
        DedupPipeline(Client(settings), duplicate_kind="fuzzy")


@pytest.mark.slow
def test_a_page_crawled_again_unchanged_changes_nothing(settings: Settings) -> None:
    """The same page crawled twice is unchanged the second time, with or without a fetch time
    on the item: the pipeline adds none of its own."""
    undated = {"url": "https://example.com/same", "html": as_html(article(40))}
    dated = {**undated, "url": "https://example.com/dated", "fetched_at": "2024-05-01T12:00:00Z"}
    outcomes = []
    for _ in range(2):
        pipeline = DedupPipeline(Client(settings))
        for item in (undated, dated):
            pipeline.process_item(dict(item))
        pipeline.close_spider()
        [job] = pipeline.client.queue.get_jobs()
        assert 0 == command(settings, "worker", "--burst").returncode
        finished = pipeline.client.queue.fetch_job(job.id)
        assert finished is not None
        outcome = finished.return_value()
        outcomes.append({k: outcome[k] for k in ("indexed", "unchanged")})
    assert [{"indexed": 2, "unchanged": 0}, {"indexed": 0, "unchanged": 2}] == outcomes
    report = Client(settings).report(id_for_url(dated["url"]))
    assert "2024-05-01T12:00:00Z" == report["fetched_at"]


class _Site:
    """A few pages served on 127.0.0.1 from a folder, on a free port."""

    def __init__(self, folder: Path) -> None:
        handler = partial(_QuietHandler, directory=str(folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The site's root URL."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> _Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test output."""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[_Site]:
    """An index page linking a page, a copy of it, a doubled page and an already known one."""
    folder = tmp_path / "site"
    folder.mkdir()
    story, doubled, known = article(30), article(31), article(32)
    pages = {
        "a.html": f"<html><body><article>{as_html(story)}</article></body></html>",
        "b.html": f"<html><body><main>{as_html([p.upper() for p in story])}</main></body></html>",
        "c.html": f"<html><body>{as_html(doubled + doubled)}</body></html>",
        "d.html": f"<html><body>{as_html(known)}</body></html>",
    }
    links = "".join(f'<li><a href="{name}">{name}</a></li>' for name in pages)
    pages["index.html"] = f"<html><body><ul>{links}</ul></body></html>"
    for name, html in pages.items():
        (folder / name).write_text(html, encoding="utf-8")
    (folder / "known.html").write_text(as_html(known), encoding="utf-8")
    with _Site(folder) as served:
        yield served


@pytest.mark.slow
def test_real_crawl_through_a_worker(settings: Settings, site: _Site, tmp_path: Path) -> None:
    """The README's spider crawls a local site; a worker's reports flag what it scraped."""
    _index(settings, "known", (tmp_path / "site" / "known.html").read_text())
    items_path = tmp_path / "items.jsonl"
    env = {
        **os.environ,
        "DEDUP_REDIS_URL": str(settings.redis_url),
        "DEDUP_NAMESPACE": settings.namespace,
    }
    spider = [
        sys.executable,
        "-m",
        "scrapy",
        "runspider",
        str(SPIDER),
        "-a",
        f"start_url={site.url}",
    ]
    options = ["-O", str(items_path), "-s", "LOG_LEVEL=INFO", "-s", "TELNETCONSOLE_ENABLED=0"]
    crawl = subprocess.run(
        [*spider, *options],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert 0 == crawl.returncode, crawl.stderr
    assert "'dedup/queued': 5" in crawl.stderr, crawl.stderr
    lines = items_path.read_text().splitlines()
    items = {i["url"].removeprefix(site.url) or "index": i for i in map(json.loads, lines)}
    assert {"index", "a.html", "b.html", "c.html", "d.html"} == set(items)
    assert ["known"] == items["d.html"]["dedup_duplicate_of"]
    tagged = [name for name in ("a.html", "b.html") if "dedup_duplicate_of" in items[name]]
    assert 1 == len(tagged)  # whichever of the two copies came second
    assert 0 == command(settings, "worker", "--burst").returncode
    ids = [id_for_url(site.url + name) for name in ("a.html", "b.html", "c.html")]
    result = command(settings, "report", *ids, "--json")
    assert 0 == result.returncode, result.stderr
    a, b, c = map(json.loads, result.stdout.splitlines())
    assert [ids[1]] == a["exact_duplicates"] and [ids[0]] == b["exact_duplicates"]
    assert ["doubled_body", "internal_repeat"] == c["flags"]
    assert (site.url + "c.html", None) == (c["url"], c["fetched_at"])  # the items have none
