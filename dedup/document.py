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
_ID_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,256}$")
_BINARY_RE = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


@dataclass(frozen=True)
class Document:
    """One document to analyse; ``fmt`` says whether ``body`` is HTML, text, or to be guessed."""

    doc_id: str
    body: str
    url: str | None = None
    fmt: str = "auto"
    fetched_at: str | None = None
    """When the page was fetched (ISO 8601, e.g. a WARC-Date), carried into its report."""

    def to_payload(self) -> dict[str, Any]:
        """The JSON object a job carries."""
        payload: dict[str, Any] = {"id": self.doc_id, "url": self.url}
        payload["text" if self.fmt == "text" else "html"] = self.body
        payload["format"] = self.fmt
        if self.fetched_at is not None:
            payload["fetched_at"] = self.fetched_at
        return payload


def check_id(doc_id: str) -> str:
    """A document id: 1 to 256 characters, no whitespace or control characters."""
    if not isinstance(doc_id, str) or not _ID_RE.match(doc_id):
        raise InputError(f"invalid document id {doc_id!r}: use 1-256 characters, no spaces")
    return doc_id


def check_fetched_at(value: Any) -> str | None:
    """A fetch time: None, or an ISO 8601 date and time as scrapers and WARC files write them."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= 64:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    shown = str(value)[:40]
    raise InputError(f'"fetched_at" must be an ISO 8601 time like 2024-05-01T12:00:00Z: {shown!r}')


def id_for_url(url: str) -> str:
    """A stable id for a document known by its URL."""
    return "u-" + xxhash.xxh64_hexdigest(url.strip().encode("utf-8"))


def id_for_body(body: str) -> str:
    """A stable id for a document known only by its content."""
    return "c-" + xxhash.xxh64_hexdigest(body.encode("utf-8"))


def decode(raw: bytes, max_bytes: int, source: str = "document") -> str:
    """Bytes from a file or stdin to text, refusing what is too large, binary or not UTF-8."""
    if len(raw) > max_bytes:
        raise InputError(f"{source} is {len(raw):,} bytes, over the limit of {max_bytes:,}")
    if b"\x00" in raw[:65536]:
        raise InputError(f"{source} looks like a binary file (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    return check_body(text, max_bytes, source)


def check_body(text: str, max_bytes: int, source: str = "document") -> str:
    """Text of a document: not empty, not too large, not binary."""
    if not isinstance(text, str):
        raise InputError(f"{source} body must be a string")
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InputError(f"{source} is over the limit of {max_bytes:,} bytes")
    if not text.strip():
        raise InputError(f"{source} is empty")
    sample = text[:65536]
    if "\x00" in sample or len(_BINARY_RE.findall(sample)) > max(8, len(sample) // 100):
        raise InputError(f"{source} looks like a binary file (it contains control bytes)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{source} contains invalid Unicode (lone surrogates)") from None
    return text


def from_payload(payload: Mapping[str, Any], max_bytes: int) -> Document:
    """A document from a job or JSON-lines object, checked."""
    if not isinstance(payload, Mapping):
        raise InputError("a document must be a JSON object")
    has_html, has_text = "html" in payload, "text" in payload
    if has_html == has_text:
        raise InputError('a document needs exactly one of "html" or "text"')
    body = payload["html"] if has_html else payload["text"]
    url = payload.get("url")
    if url is not None and not isinstance(url, str):
        raise InputError('"url" must be a string')
    raw_id = payload.get("id")
    if raw_id is not None and not isinstance(raw_id, str | int):
        raise InputError('"id" must be a string')
    label = f"document {raw_id}" if raw_id is not None else "document"
    body = check_body(body, max_bytes, label)
    if raw_id is not None:
        doc_id = check_id(str(raw_id))
    else:
        doc_id = id_for_url(url) if url else id_for_body(body)
    fmt = payload.get("format") or ("html" if has_html else "text")
    if fmt not in FORMATS:
        raise InputError(f'"format" must be one of {", ".join(FORMATS)}')
    fetched_at = check_fetched_at(payload.get("fetched_at"))
    return Document(doc_id=doc_id, body=body, url=url, fmt=fmt, fetched_at=fetched_at)
