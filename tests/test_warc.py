"""Web archives: HTML responses only, streamed, with URL and fetch date, through real workers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dedup.integrations.warc import WarcReader, decode_body
from dedup.pipeline.document import id_for_url
from dedup.settings import Settings
from tests.helpers import command, html_page, invoke, write_warc

DATE = "2024-05-01T12:00:00Z"


def test_reader_keeps_html_responses_only(tmp_path: Path) -> None:
    """Requests, images, error pages and warcinfo are skipped and counted; URL and date kept."""
    path = write_warc(
        tmp_path / "crawl.warc.gz",
        [
            ("https://example.com/a", "text/html; charset=utf-8", html_page(1)),
            ("https://example.com/b", "application/xhtml+xml", html_page(2)),
            ("https://example.com/data.json", "application/json", b'{"a": 1}'),
        ],
    )
    reader = WarcReader(str(path), 10_000_000)
    documents = list(reader.documents())
    assert ["https://example.com/a", "https://example.com/b"] == [d.url for d in documents]
    assert [id_for_url("https://example.com/a"), id_for_url("https://example.com/b")] == [
        d.doc_id for d in documents
    ]
    assert ["2024-05-01T12:00:00Z", "2024-05-01T12:00:01Z"] == [d.fetched_at for d in documents]
    assert {"html"} == {d.fmt for d in documents}
    # warcinfo, 3 requests, the JSON response, the image and the 404 page
    assert (7, []) == (reader.skipped, reader.errors)
    assert reader.size == reader.position


def test_reader_rejects_oversized_and_empty_records(tmp_path: Path) -> None:
    """A record over the size limit or without text is one error line; the others still come."""
    path = write_warc(
        tmp_path / "crawl.warc",
        [
            ("https://example.com/big", "text/html", b"<p>" + b"word " * 2000 + b"</p>"),
            ("https://example.com/empty", "text/html", b"   "),
            ("https://example.com/ok", "text/html", b"<p>short page of words</p>"),
        ],
        extras=False,
    )
    reader = WarcReader(str(path), 5000)
    assert ["https://example.com/ok"] == [d.url for d in reader.documents()]
    assert 2 == len(reader.errors)
    assert "record 1 (https://example.com/big): over the limit of 5,000 bytes" in reader.errors[0]
    assert "empty" in reader.errors[1]


def test_decode_body_follows_the_declared_charset() -> None:
    """Declared charsets are honoured; undeclared non-UTF-8 bytes still give text."""
    assert "café" == decode_body("café".encode("latin-1"), "text/html; charset=ISO-8859-1")
    assert "café" == decode_body("café".encode(), "text/html")
    assert "café" == decode_body("café".encode("cp1252"), "text/html")
    assert "café" == decode_body("café".encode(), "text/html; charset=no-such-charset")


def test_damaged_files_say_so(tmp_path: Path) -> None:
    """Not a WARC, or a truncated one: one line; the records before the damage still count."""
    bogus = tmp_path / "bogus.warc"
    bogus.write_text("<!doctype html>\n<p>A page saved by mistake.</p>\n")
    reader = WarcReader(str(bogus), 10_000_000)
    assert [] == list(reader.documents())
    assert ["not a readable WARC file at its start"] == [
        e.split(": ", 1)[0].removeprefix(f"{bogus} is ") for e in reader.errors
    ]
    pages = [(f"https://example.com/{n}", "text/html", html_page(n)) for n in range(3)]
    whole = write_warc(tmp_path / "whole.warc", pages, extras=False).read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(gzip.compress(whole)[: len(gzip.compress(whole)) * 2 // 3])
    reader = WarcReader(str(cut), 10_000_000)
    assert 1 <= len(list(reader.documents())) < 3
    assert 1 == len(reader.errors) and "not a readable WARC file after record" in reader.errors[0]


@pytest.mark.slow
def test_submit_warc_through_a_worker(settings: Settings, tmp_path: Path) -> None:
    """dedup submit --warc: pages queued in bulk, reports carry the URL and WARC-Date."""
    doubled, copy = "https://example.com/doubled", "https://example.org/copy"
    path = write_warc(
        tmp_path / "crawl.warc.gz",
        [
            (doubled, "text/html", html_page(10, doubled=True)),
            ("https://example.com/original", "text/html", html_page(11)),
            (copy, "text/html; charset=utf-8", b"<div>" + html_page(11) + b"</div>"),
        ],
    )
    result = command(settings, "submit", "--warc", str(path), "--batch-size", "2", "--json")
    assert 0 == result.returncode, result.stderr
    summary = json.loads(result.stdout)
    assert (3, 2, [], 6) == (
        summary["documents"],
        len(summary["jobs"]),
        summary["rejected"],
        summary["skipped"],
    )
    assert 0 == command(settings, "worker", "--burst").returncode
    result = command(settings, "report", id_for_url(doubled), id_for_url(copy), "--json")
    assert 0 == result.returncode, result.stderr
    first, second = map(json.loads, result.stdout.splitlines())
    assert (doubled, "2024-05-01T12:00:00Z") == (first["url"], first["fetched_at"])
    assert "doubled_body" in first["flags"]
    assert [id_for_url("https://example.com/original")] == second["exact_duplicates"]
    assert "2024-05-01T12:00:02Z" == second["fetched_at"]


def test_submit_warc_problems_are_one_line(settings: Settings, tmp_path: Path) -> None:
    """A missing archive, or one with a bad record: one line each, exit 2, no traceback."""
    result = invoke(settings, "submit", "--warc", str(tmp_path / "missing.warc.gz"))
    assert (2, 1) == (result.exit_code, len(result.stderr.strip().splitlines()))
    assert "no such file" in result.stderr
    path = write_warc(
        tmp_path / "one-bad.warc",
        [
            ("https://example.com/empty", "text/html", b"  "),
            ("https://example.com/fine", "text/html", html_page(3)),
        ],
    )
    result = command(settings, "submit", "--warc", str(path))
    assert 2 == result.returncode
    assert ["error: " + f"{path} record 3 (https://example.com/empty): the body is empty"] == (
        result.stderr.strip().splitlines()
    )
    assert "queued 1 document(s)" in result.stdout
    assert "skipped 5 WARC record(s)" in result.stdout


@pytest.mark.parametrize("option", ["--url", "--id"])
def test_submit_warc_refuses_single_document_options(
    settings: Settings, tmp_path: Path, option: str
) -> None:
    """--url and --id name one document; an archive holds many."""
    path = write_warc(tmp_path / "a.warc", [("https://example.com/", "text/html", html_page(4))])
    result = invoke(settings, "submit", "--warc", str(path), option, "x")
    assert 2 == result.exit_code
    assert "apply to a single document" in result.output
