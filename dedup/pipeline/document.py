"""A document as it travels: id, URL, body, and the checks it must pass before any work.

Documents cross process boundaries as plain JSON objects (``{"id", "url", "html" | "text"}``),
never pickles. Everything a user can get wrong about a document is caught here, cheaply and
before parsing, with a message that says what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import xxhash

from dedup.errors import InputError

FORMATS = ("auto", "html", "text")

MAX_ID_CHARS = 256
"""Longest document id, in characters."""
MAX_URL_CHARS = 8192
"""Longest URL, in characters (browsers and crawlers stop well before)."""
MAX_FETCHED_AT_CHARS = 64
"""Longest fetch time; an ISO 8601 time needs about 30."""

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_ID_FORBIDDEN_RE = re.compile(
    r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
)
"""In ids: white space, control characters, lone surrogates, and the invisible and
direction-changing marks that make two ids look alike on a screen."""
_BINARY = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])
"""The control characters a binary file holds and text does not (tabs, line and page breaks
and escape left out), as bytes: UTF-8 writes them alone, never inside another character."""


def shown(value: Any, limit: int = 80) -> str:
    """A value for a one-line message: repr, cut short, with any control character escaped."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clipped(value: str, limit: int = 120) -> str:
    """Text for a one-line message as it is, cut short; escaped if it holds control marks."""
    if _CONTROL_RE.search(value) or _SURROGATE_RE.search(value):
        return shown(value, limit)
    return value if len(value) <= limit else value[: limit - 1] + "…"


@dataclass(frozen=True)
class Document:
    """One document to analyse; ``fmt`` says whether ``body`` is HTML, text, or to be guessed.

    Its fields are checked when it is made, wherever that is (the command line, the client,
    the Scrapy pipeline, the web archive reader, the worker), so an id or URL that Redis,
    the record layout or a terminal cannot take never gets as far as a worker. The body is
    checked by :func:`check_body`, which knows the size limit in force.

    Raises:
        InputError: a field is of the wrong type, too long or not well-formed text.
    """

    doc_id: str
    body: str
    url: str | None = None
    fmt: str = "auto"
    fetched_at: str | None = None
    """When the page was fetched (ISO 8601, e.g. a WARC-Date), carried into its report."""

    def __post_init__(self) -> None:
        check_id(self.doc_id)
        check_url(self.url)
        check_fetched_at(self.fetched_at)
        if self.fmt not in FORMATS:
            raise InputError(f'"format" must be one of {", ".join(FORMATS)}: {shown(self.fmt)}')
        if not isinstance(self.body, str):
            raise InputError(f"document {self.doc_id} body must be a string")

    def to_payload(self) -> dict[str, Any]:
        """The JSON object a job carries."""
        payload: dict[str, Any] = {"id": self.doc_id, "url": self.url}
        payload["text" if self.fmt == "text" else "html"] = self.body
        payload["format"] = self.fmt
        if self.fetched_at is not None:
            payload["fetched_at"] = self.fetched_at
        return payload


def label(payload: Any, position: int) -> str:
    """How messages name a document of a job: its id when valid, else a safe rendering of it.

    A rejected document may carry an id no terminal or JSON encoder can take (a lone
    surrogate, a NUL); its label is the escaped form, or its place in the job when it has
    no id at all.
    """
    raw = payload.get("id") if isinstance(payload, Mapping) else None
    if raw is None:
        return f"#{position}"
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    try:
        return check_id(text)
    except InputError:
        return shown(raw)


def check_id(doc_id: Any) -> str:
    """A document id: 1 to 256 characters of well-formed text, no spaces or control marks."""
    if not isinstance(doc_id, str) or isinstance(doc_id, bool):
        raise InputError(f"document id must be a string, not {type(doc_id).__name__}")
    if not 1 <= len(doc_id) <= MAX_ID_CHARS or _ID_FORBIDDEN_RE.search(doc_id):
        raise InputError(
            f"invalid document id {shown(doc_id)}: use 1-{MAX_ID_CHARS} characters, "
            "no spaces, control characters or lone surrogates"
        )
    return doc_id


def check_url(url: Any) -> str | None:
    """A URL: None, or up to 8,192 characters of well-formed text without control characters."""
    if url is None:
        return None
    if not isinstance(url, str):
        raise InputError(f'"url" must be a string, not {type(url).__name__}')
    if len(url) > MAX_URL_CHARS:
        raise InputError(f"URL is {len(url):,} characters, over the limit of {MAX_URL_CHARS:,}")
    if _CONTROL_RE.search(url) or _SURROGATE_RE.search(url):
        raise InputError(
            f"invalid URL {shown(url)}: control characters or lone surrogates are not allowed"
        )
    return url


def check_fetched_at(value: Any) -> str | None:
    """A fetch time: None, or an ISO 8601 date and time as scrapers and WARC files write them."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_FETCHED_AT_CHARS:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise InputError(
        f'"fetched_at" must be an ISO 8601 time like 2024-05-01T12:00:00Z: {shown(value, 40)}'
    )


def id_for_url(url: str) -> str:
    """A stable id for a document known by its URL."""
    return "u-" + xxhash.xxh64_hexdigest(url.strip().encode("utf-8", "surrogatepass"))


def id_for_body(body: str) -> str:
    """A stable id for a document known only by its content."""
    return "c-" + xxhash.xxh64_hexdigest(body.encode("utf-8", "surrogatepass"))


def _looks_binary(controls: int, sample_length: int) -> bool:
    """Binary when control bytes are more than a stray few: over 8 and over 1% of the sample.

    Real crawls hold pages with a few NUL or other control bytes in otherwise good text
    (after an image tag, in a script); images, archives and executables have them
    everywhere.
    """
    return controls > max(8, sample_length // 100)


def decode(raw: bytes, max_bytes: int, source: str = "document") -> str:
    """Bytes from a file or stdin to text, refusing what is too large, binary or not UTF-8."""
    if len(raw) > max_bytes:
        raise InputError(f"{source} is {len(raw):,} bytes, over the limit of {max_bytes:,}")
    sample = raw[:65536]
    if _looks_binary(sample.count(0), len(sample)):
        raise InputError(f"{source} looks like a binary file (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    return check_body(text, max_bytes, source)


def check_body(text: Any, max_bytes: int, source: str = "document") -> str:
    """Text of a document: a string, not empty, not too large, not binary, well-formed."""
    if not isinstance(text, str):
        raise InputError(f"{source} body must be a string, not {type(text).__name__}")
    if len(text) > max_bytes:
        raise InputError(f"{source} is over the limit of {max_bytes:,} bytes")
    # Passes of C over the text, where regular expressions cost a few nanoseconds a
    # character: UTF-8 encodes every character but lone surrogates.
    lone = False
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data, lone = text.encode("utf-8", "surrogatepass"), True
    if len(data) > max_bytes:
        raise InputError(f"{source} is over the limit of {max_bytes:,} bytes")
    if not text.strip():
        raise InputError(f"{source} is empty")
    sample = text[:65536]
    if len(sample) < len(text):  # else the text's own bytes are the sample's
        data = sample.encode("utf-8", "surrogatepass")
    controls = data.count(0) + len(data) - len(data.translate(None, _BINARY))
    if _looks_binary(controls, len(sample)):
        raise InputError(f"{source} looks like a binary file (it contains control bytes)")
    if lone:
        raise InputError(f"{source} contains invalid Unicode (lone surrogates)")
    return text


def from_payload(payload: Any, max_bytes: int) -> Document:
    """A document from a job or JSON-lines object, every field checked.

    Fields other than ``id``, ``url``, ``html``/``text``, ``format`` and ``fetched_at`` are
    ignored: they do not travel further.
    """
    if not isinstance(payload, Mapping):
        raise InputError(f"a document must be a JSON object, not {type(payload).__name__}")
    raw_id = payload.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)  # JSON numbers are fine ids
    given = check_id(raw_id) if raw_id is not None else None
    label = f"document {raw_id}" if raw_id is not None else "document"
    has_html, has_text = "html" in payload, "text" in payload
    if has_html == has_text:
        raise InputError(f'{label} needs exactly one of "html" or "text"')
    url = check_url(payload.get("url"))
    body = check_body(payload["html"] if has_html else payload["text"], max_bytes, label)
    doc_id = given if given is not None else id_for_url(url) if url else id_for_body(body)
    fmt = payload.get("format") or ("html" if has_html else "text")
    return Document(doc_id, body, url, fmt, check_fetched_at(payload.get("fetched_at")))
