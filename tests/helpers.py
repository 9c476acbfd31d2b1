"""What the tests share: synthetic articles made here (the suite needs no outside data), and
one way each to run the dedup command, a worker and a web archive.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen
from typing import IO, TYPE_CHECKING, NoReturn

import pytest
from click.testing import CliRunner, Result

from dedup.pipeline.document import Document
from dedup.settings import Settings

if TYPE_CHECKING:
    from dedup.index.store import Store

_VOCABULARY = [
    "council",
    "budget",
    "river",
    "bridge",
    "school",
    "teacher",
    "market",
    "price",
    "farmer",
    "harvest",
    "storm",
    "coast",
    "minister",
    "election",
    "vote",
    "court",
    "judge",
    "police",
    "report",
    "museum",
    "artist",
    "concert",
    "festival",
    "league",
    "coach",
    "match",
    "season",
    "player",
    "doctor",
    "hospital",
    "patient",
    "vaccine",
    "study",
    "science",
    "engineer",
    "rocket",
    "launch",
    "company",
    "profit",
    "share",
    "bank",
    "loan",
    "housing",
    "rent",
    "tenant",
    "landlord",
    "train",
    "station",
    "ticket",
    "airport",
    "flight",
    "pilot",
    "weather",
    "forecast",
    "rainfall",
    "drought",
    "wildfire",
    "forest",
    "village",
    "mayor",
    "library",
    "book",
    "author",
    "novel",
    "history",
    "castle",
    "ancient",
    "discovery",
    "ocean",
    "whale",
    "fisher",
    "harbour",
]
_GLUE = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "on",
    "for",
    "with",
    "that",
    "was",
    "said",
    "by",
    "at",
    "from",
    "after",
    "before",
    "about",
]


def paragraph(rng: random.Random, words: int = 40) -> str:
    """One paragraph of plausible-looking prose."""
    out = []
    for i in range(words):
        out.append(rng.choice(_GLUE) if i % 3 == 1 else rng.choice(_VOCABULARY))
    text = " ".join(out)
    return text[0].upper() + text[1:] + "."


def article(seed: int, paragraphs: int = 12) -> list[str]:
    """A synthetic article: distinct paragraphs, reproducible from its seed."""
    rng = random.Random(seed)
    return [paragraph(rng, rng.randint(25, 60)) for _ in range(paragraphs)]


def as_html(paragraphs: list[str], separator: str = "") -> str:
    """Paragraphs as an HTML fragment of <p> elements, as scrapers send article bodies."""
    return separator.join(f"<p>{p}</p>" for p in paragraphs)


def edit_words(paragraph_text: str, rng: random.Random, count: int) -> str:
    """The paragraph with ``count`` words replaced."""
    words = paragraph_text.split()
    for _ in range(count):
        words[rng.randrange(len(words))] = rng.choice(_VOCABULARY) + "x"
    return " ".join(words)


def submit_near_pairs(settings: Settings, count: int = 30) -> list[tuple[str, str]]:
    """Submit ``count`` pairs of near-identical documents (one word edited per paragraph),
    each pair one job after the other, so that two workers write them at the same moment."""
    from dedup.client import Client

    rng = random.Random(5)
    client = Client(settings)
    pairs = []
    for n in range(count):
        body = article(5000 + n, 8)
        pairs.append((f"a{n}", f"b{n}"))
        client.submit(as_html(body), doc_id=f"a{n}")
        client.submit(as_html([edit_words(p, rng, 1) for p in body]), doc_id=f"b{n}")
    return pairs


def assert_pairs_listed(store: Store, pairs: list[tuple[str, str]]) -> None:
    """Each document of a pair lists the other, and nothing else is flagged near duplicate."""
    for first, second in pairs:
        assert [second] == [m["doc_id"] for m in store.report(first)["near_duplicates"]]
        assert [first] == [m["doc_id"] for m in store.report(second)["near_duplicates"]]
    flagged = {row["doc_id"] for row in store.list_documents("near_duplicate", 1000)}
    assert {doc for pair in pairs for doc in pair} == flagged


def skip_unless_ci(reason: str) -> NoReturn:
    """Skip a test whose tool is missing here; in CI (``CI=true``), where ``.ci/run``
    installs every such tool, fail instead: a test skipped in CI proves nothing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a dedup process on the test Redis (the queue's and the index's, when
    the settings name them) and namespace, retrying at once."""
    return {
        **os.environ,
        "DEDUP_REDIS_URL": settings.redis_url or "",
        "DEDUP_QUEUE_URL": settings.queue_url or "",
        "DEDUP_INDEX_URL": settings.index_url or "",
        "DEDUP_NAMESPACE": settings.namespace,
        "DEDUP_RETRY_BACKOFF": "0",
        "DEDUP_REVIEW_TEXT_DAYS": str(settings.review_text_days),
        **extra,
    }


def command(
    target: Settings | str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dedup`` in a process of its own, as a user would.

    ``target`` is the test settings (their Redis and namespace) or a Redis URL; ``env`` adds
    or overrides environment variables.
    """
    if isinstance(target, Settings):
        base = worker_env(target)
    else:
        base = {**os.environ, "DEDUP_REDIS_URL": target}
    return subprocess.run(
        [sys.executable, "-m", "dedup", *args],
        input=stdin,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def invoke(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    """Run the dedup command in this process with click's runner, on the test Redis."""
    from dedup.cli.main import cli

    return CliRunner().invoke(
        cli,
        ["--redis-url", str(settings.redis_url), "--namespace", settings.namespace, *args],
        input=stdin,
        catch_exceptions=False,
    )


def start_worker(
    settings: Settings,
    *extra: str,
    log: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
) -> Popen[bytes]:
    """A long-running worker process, in a process group of its own (with its scheduler).

    Its output goes to ``log`` when given; ``env`` replaces the test environment (a worker
    on the embedded server has no ``DEDUP_REDIS_URL``).
    """
    return subprocess.Popen(
        [sys.executable, "-m", "dedup", "worker", *extra],
        env=worker_env(settings) if env is None else env,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
    )


def burst(settings: Settings, *extra: str) -> None:
    """Run workers until the queue is empty."""
    result = command(settings, "worker", "--burst", *extra)
    assert 0 == result.returncode, result.stderr


def wait_for(condition: Callable[[], object], timeout: float = 60.0) -> None:
    """Poll until the condition holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def corpus(count: int, seed: int) -> list[Document]:
    """Articles, every fifth one a light edit of the one before it."""
    rng = random.Random(seed)
    docs: list[Document] = []
    for n in range(count):
        if n % 5 == 4:
            body = [edit_words(p, rng, 1) for p in article(seed * 1000 + n - 1, 10)]
        else:
            body = article(seed * 1000 + n, 10)
        docs.append(Document(f"doc-{n}", as_html(body)))
    return docs


def write_warc(path: Path, pages: list[tuple[str, str, bytes]], *, extras: bool = True) -> Path:
    """A WARC file of response records ``(url, content type, body)``, with noise around them.

    The noise (a warcinfo record, requests, an image, a 404 page) is what real crawls hold
    and what the reader must skip.
    """
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=path.name.endswith(".gz"))
        if extras:
            writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        for n, (url, content_type, body) in enumerate(pages):
            if extras:
                request = StatusAndHeaders("GET / HTTP/1.1", [("Host", "x")], is_http_request=True)
                writer.write_record(writer.create_warc_record(url, "request", http_headers=request))
            headers = StatusAndHeaders(
                "200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1"
            )
            writer.write_record(
                writer.create_warc_record(
                    url,
                    "response",
                    payload=io.BytesIO(body),
                    length=len(body),  # known: warcio then needs no temporary file
                    http_headers=headers,
                    warc_headers_dict={"WARC-Date": f"2024-05-01T12:00:{n:02d}Z"},
                )
            )
        if extras:
            for url, status, content_type in (
                ("https://example.com/logo.png", "200 OK", "image/png"),
                ("https://example.com/missing", "404 Not Found", "text/html"),
            ):
                headers = StatusAndHeaders(status, [("Content-Type", content_type)], "HTTP/1.1")
                writer.write_record(
                    writer.create_warc_record(
                        url,
                        "response",
                        payload=io.BytesIO(b"<p>no</p>"),
                        length=9,
                        http_headers=headers,
                    )
                )
    return path


def html_page(seed: int, doubled: bool = False) -> bytes:
    """A page of synthetic paragraphs, optionally with its body pasted twice."""
    body = article(seed, 6)
    return as_html(body + body if doubled else body).encode("utf-8")


HOSTILE_SECONDS = 5.0
"""Budget for one hostile document; they take well under a second on an idle 2-core machine."""


def timed_html(html: str) -> list[str]:
    """Extract paragraphs from HTML and fail if that took longer than the hostile budget."""
    from dedup.pipeline.extract import paragraphs_from_html

    start = time.perf_counter()
    paragraphs = paragraphs_from_html(html)
    assert time.perf_counter() - start < HOSTILE_SECONDS
    return paragraphs


def is_clean_paragraph(paragraph: str) -> bool:
    """A paragraph is collapsed, stripped, free of controls and has something to read."""
    return (
        " ".join(paragraph.split()) == paragraph
        and not any(unicodedata.category(ch) == "Cc" for ch in paragraph)
        and any(ch.isalnum() for ch in paragraph)
    )


BANNER = "Sign up for our newsletter to get the best stories of the day delivered to you."
FOOTER = "All rights reserved by the publisher of this site and its many partners worldwide."
"""Held by more documents than an entry keeps inline: its entries live in overflow sets,
whose operations the scripts hold back for a round trip of their own."""


def rewrite_corpus() -> tuple[list[Document], list[Document]]:
    """A first batch with exact and near duplicates and boilerplate, and a second one that
    edits, copies and adds documents, so that its write moves flags on both sides."""
    rng = random.Random(3)
    twin, story, other = article(60, 8), article(61, 8), article(62, 8)
    first = [
        Document("a", as_html(twin)),
        Document("b", as_html(twin)),
        Document("c", as_html(story)),
        Document("d", as_html([edit_words(p, rng, 1) for p in story])),
        *(Document(f"e{n}", as_html([*article(70 + n, 3), BANNER])) for n in range(3)),
        *(Document(f"k{n}", as_html([*article(100 + n, 2), FOOTER])) for n in range(10)),
    ]
    second = [
        Document("b", as_html(article(80, 8))),  # a loses its exact twin
        Document("d", as_html(other)),  # c loses its near duplicate
        Document("f", as_html([edit_words(p, rng, 1) for p in other])),  # near d's new self
        Document("g", as_html(twin)),  # a's new twin
        Document("e2", as_html(article(72, 3))),  # the banner drops below boilerplate
        Document("h", as_html([*article(90, 3), BANNER])),
        Document("k0", as_html(article(100, 2))),  # leaves the footer's overflow sets
        Document("k10", as_html([*article(110, 2), FOOTER])),  # joins them
    ]
    return first, second
