"""Web archives (WARC) as documents: the HTML responses of a crawl, one record at a time.

Crawlers (Heritrix, wget, Browsertrix, Common Crawl) write WARC files of many gigabytes.
warcio's ``ArchiveIterator`` streams them, record by record, through gzip, so an archive of
any size is never held in memory; each response body is read up to the document size limit
and no further. Only successful HTML responses are documents: requests, metadata, revisits,
images and error pages are skipped and counted. The page's URL gives its id, and the time
it was fetched (``WARC-Date``) travels into its report.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dedup.errors import ConfigError, InputError
from dedup.pipeline.document import (
    Document,
    check_body,
    check_fetched_at,
    clipped,
    id_for_body,
    id_for_url,
)

HTML_TYPES = ("text/html", "application/xhtml+xml")
"""Content types of the responses that become documents."""


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def decode_body(raw: bytes, content_type: str) -> str:
    """A response body as text: its declared charset, else UTF-8, else Windows-1252.

    Archived pages often misdeclare their encoding; a few replaced characters do not change
    which paragraphs repeat, so nothing is rejected for its encoding alone.
    """
    for encoding in (_charset(content_type), "utf-8"):
        if encoding:
            try:
                return raw.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    return raw.decode("cp1252", errors="replace")


class WarcReader:
    """The HTML documents of one WARC file, streamed, with what was skipped or rejected."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.skipped = 0
        """Records that are not successful HTML responses."""
        self.errors: list[str] = []
        """One line per response that could not become a document, or per damaged file."""
        self.position = 0
        """Bytes of the file read so far (compressed), for a progress bar."""
        try:
            self.size = Path(path).stat().st_size
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        if Path(path).is_dir():
            raise InputError(f"{path} is a folder")

    def documents(self) -> Iterator[Document]:
        """Documents of the archive, in file order; problems go to :attr:`errors`."""
        try:
            from warcio.archiveiterator import ArchiveIterator
            from warcio.exceptions import ArchiveLoadFailed
        except ImportError:
            raise ConfigError(
                "reading WARC files needs warcio: pip install 'dedup[warc]'"
            ) from None
        count = 0
        with open(self.path, "rb") as handle:
            try:
                for record in ArchiveIterator(handle):
                    count += 1
                    self.position = handle.tell()
                    document = self._document(record, count)
                    if document is not None:
                        yield document
            except (ArchiveLoadFailed, EOFError, OSError, ValueError, zlib.error) as exc:
                reason = (
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                )
                where = f"after record {count}" if count else "at its start"
                reason = reason if len(reason) <= 80 else reason[:79] + "…"
                self.errors.append(f"{self.path} is not a readable WARC file {where}: {reason}")
            self.position = self.size

    def _document(self, record: Any, number: int) -> Document | None:
        """The document of one record, None when it is not an HTML response."""
        http = record.http_headers
        if record.rec_type != "response" or http is None:
            self.skipped += 1
            return None
        content_type = http.get_header("Content-Type") or ""
        mime = content_type.split(";")[0].strip().lower()
        if not str(http.get_statuscode() or "").startswith("2") or mime not in HTML_TYPES:
            self.skipped += 1
            return None
        url = record.rec_headers.get_header("WARC-Target-URI") or None
        label = f"{self.path} record {number}" + (f" ({clipped(url)})" if url else "")
        raw = record.content_stream().read(self.max_bytes + 1)
        try:
            if len(raw) > self.max_bytes:
                raise InputError(f"over the limit of {self.max_bytes:,} bytes")
            body = check_body(decode_body(raw, content_type), self.max_bytes, "the body")
        except InputError as exc:
            self.errors.append(f"{label}: {exc}")
            return None
        try:
            fetched_at = check_fetched_at(record.rec_headers.get_header("WARC-Date"))
        except InputError:
            fetched_at = None  # a malformed date loses the date, not the page
        try:
            doc_id = id_for_url(url) if url else id_for_body(body)
            return Document(doc_id, body, url, "html", fetched_at)
        except InputError as exc:  # a URL no index can take: this page only
            self.errors.append(f"{label}: {exc}")
            return None
