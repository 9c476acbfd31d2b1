"""Hostile input thrown at the whole pure pipeline: analysed or refused, never a crash."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dedup.errors import InputError
from dedup.pipeline.analysis import analyse
from dedup.pipeline.document import decode, from_payload
from dedup.settings import Settings

SETTINGS = Settings(max_document_bytes=200_000, max_paragraphs=2_000)
EXAMPLES = 10_000
TRIED: list[int] = []

WEIRD = st.sampled_from(
    ["\u200b", "\u200d", "\u202e", "\u2066", "\ufeff", "\x00", "\x1b[2J", "\r", "\x0c", "\ud7ff",
     "مرحبا", "שלום", "東京", "ＦＵＬＬ", "é", "ﬁ", "\u0301", "𝔘𝔫𝔦"]
)  # fmt: skip
TAGS = st.sampled_from(
    ["<p>", "</p>", "<div>", "</div>", "<br>", "<b>", "</b>", "<li>", "<table><tr><td>",
     "<script>", "</script>", "<!--", "-->", "<p", ">", "&amp;", "&#0;", "&#x110000;", "<![CDATA["]
)  # fmt: skip
WORD = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12),
    st.sampled_from(["council", "river", "the", "said", "NATO", "2024"]),
    WEIRD,
    TAGS,
    st.builds(lambda n: "x" * n, st.integers(1000, 20_000)),
)
DOCUMENT = st.one_of(
    st.lists(WORD, max_size=300).map(" ".join),
    st.lists(WORD, max_size=300).map("".join),
    st.builds(lambda depth, tag: f"<{tag}>" * depth + "deep text here" + f"</{tag}>" * depth,
              st.integers(1, 2_000), st.sampled_from(["div", "b", "p", "li", "blockquote"])),
    st.builds(lambda n: "<p></p>" * n + "<p>one real paragraph</p>", st.integers(0, 3_000)),
    st.builds(lambda n: "\n\n" * n, st.integers(0, 5000)),
)  # fmt: skip


def run(body: str, fmt: str) -> None:
    """One input through checking and analysis; only InputError may come out."""
    started = time.monotonic()
    try:
        document = from_payload(
            {"id": "fuzz", "html" if fmt != "text" else "text": body, "format": fmt},
            SETTINGS.max_document_bytes,
        )
        analysis = analyse(document, SETTINGS)
        assert analysis.paragraphs
        assert len(analysis.paragraphs) == len(analysis.fingerprints)
        assert 0.0 <= analysis.repeats.duplicate_fraction <= 1.0
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
    assert time.monotonic() - started < 10.0


@pytest.mark.slow
@pytest.mark.timeout(900)
@settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(DOCUMENT, st.sampled_from(["auto", "html", "text"]))
def test_pipeline_survives_generated_documents(body: str, fmt: str) -> None:
    """Text, tag soup, deep nesting, empty paragraphs, odd Unicode: analysed or refused."""
    TRIED.append(1)
    run(body, fmt)


@settings(max_examples=500, deadline=timedelta(seconds=10), database=None)
@given(st.binary(max_size=5000))
def test_random_bytes_are_decoded_or_refused(raw: bytes) -> None:
    """Arbitrary bytes become text for the pipeline or one clear refusal."""
    try:
        body = decode(raw, SETTINGS.max_document_bytes)
    except InputError as exc:
        assert str(exc)
        return
    run(body, "auto")


def test_limits_are_enforced_before_parsing() -> None:
    """An oversized document is refused without being parsed."""
    started = time.monotonic()
    with pytest.raises(InputError, match="over the limit"):
        decode(b"<p>" * 20_000_000, SETTINGS.max_document_bytes)
    assert time.monotonic() - started < 1.0
