"""A Scrapy item pipeline that queues every scraped page for dedup.

Enable it with two lines in the project's ``settings.py`` (or a spider's ``custom_settings``)::

    ITEM_PIPELINES = {"dedup.integrations.scrapy.DedupPipeline": 300}
    DEDUP_REDIS_URL = "redis://localhost:6379/0"   # or leave it to dedup's own settings

The crawl must not wait for the service: items are collected and queued ``DEDUP_BATCH_SIZE``
at a time (one Redis call per batch, through :meth:`dedup.Client.submit_many`), and the rest
on spider close. Workers do the analysis elsewhere.

With ``DEDUP_ON_DUPLICATE = "drop"`` or ``"tag"``, an item whose normalised content the index
(or this crawl) already holds under another id is dropped, or passed on with the ids of its
copies in ``DEDUP_DUPLICATE_FIELD``. With ``DEDUP_DUPLICATE_KIND = "near"`` near duplicates
count too: documents at least ``DEDUP_THRESHOLD`` alike (default: dedup's
``near_duplicate_threshold``), found from the page's LSH bands and scored on the stored
signatures. Either check analyses the page in the crawl process and asks Redis once per
item, so it is off (``"keep"``) by default.

Settings, all optional:

- ``DEDUP_REDIS_URL``, ``DEDUP_QUEUE_URL``, ``DEDUP_INDEX_URL``, ``DEDUP_NAMESPACE``,
  ``DEDUP_QUEUE``, ``DEDUP_CONFIG``: override dedup's settings (``config/dedup.toml``, then
  ``DEDUP_*`` environment variables).
- ``DEDUP_URL_FIELD`` (``url``), ``DEDUP_HTML_FIELD`` (``html``), ``DEDUP_TEXT_FIELD``
  (``text``): item fields to read; items with neither body field pass through untouched.
- ``DEDUP_ID_FIELD``: item field holding the document id (default: derived from the URL).
- ``DEDUP_FETCHED_AT_FIELD`` (``fetched_at``): item field holding when the page was fetched
  (ISO 8601 text or a ``datetime``), carried into the report. Without one the page is sent
  without a fetch time, so a page crawled again unchanged is indexed once: the pipeline's
  own clock would make every crawl a new version.
- ``DEDUP_BATCH_SIZE`` (100), ``DEDUP_ON_DUPLICATE`` (``keep``, ``tag`` or ``drop``),
  ``DEDUP_DUPLICATE_FIELD`` (``dedup_duplicate_of``), ``DEDUP_DUPLICATE_KIND`` (``exact``
  or ``near``), ``DEDUP_THRESHOLD`` (near duplicates only).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured

from dedup.client import Client
from dedup.errors import DedupError, InputError
from dedup.pipeline.document import (
    Document,
    check_body,
    check_fetched_at,
    check_id,
    clipped,
    id_for_body,
    id_for_url,
)
from dedup.settings import Settings, load_settings

if TYPE_CHECKING:
    from dedup.pipeline.analysis import Analysis

logger = logging.getLogger(__name__)

ON_DUPLICATE = ("keep", "tag", "drop")
"""What happens to an item that duplicates a document the index already holds."""
DUPLICATE_KINDS = ("exact", "near")
"""What counts as a duplicate for ``DEDUP_ON_DUPLICATE``: the same normalised content, or
near duplicates too."""
SEEN_LIMIT = 1_000_000
"""Content hashes of this crawl remembered for the duplicate check (about 100 bytes each)."""


def dedup_settings(crawler_settings: Any) -> Settings:
    """dedup's settings as configured for dedup, with the crawl's ``DEDUP_*`` overrides."""
    config = crawler_settings.get("DEDUP_CONFIG")
    overrides = {
        name: crawler_settings.get(f"DEDUP_{name.upper()}")
        for name in ("redis_url", "queue_url", "index_url", "namespace", "queue")
    }
    return load_settings(Path(config) if config else None, overrides=overrides)


class DedupPipeline:
    """Queues each item's HTML or text, with its URL, for the dedup workers."""

    def __init__(
        self,
        client: Client,
        *,
        url_field: str = "url",
        html_field: str = "html",
        text_field: str = "text",
        id_field: str | None = None,
        fetched_at_field: str | None = "fetched_at",
        batch_size: int = 100,
        on_duplicate: str = "keep",
        duplicate_field: str = "dedup_duplicate_of",
        duplicate_kind: str = "exact",
        threshold: float | None = None,
        crawler: Crawler | None = None,
    ) -> None:
        if on_duplicate not in ON_DUPLICATE:
            raise NotConfigured(
                f"DEDUP_ON_DUPLICATE must be one of {', '.join(ON_DUPLICATE)}, not {on_duplicate!r}"
            )
        if batch_size < 1:
            raise NotConfigured("DEDUP_BATCH_SIZE must be at least 1")
        if duplicate_kind not in DUPLICATE_KINDS:
            raise NotConfigured(
                f"DEDUP_DUPLICATE_KIND must be exact or near, not {duplicate_kind!r}"
            )
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise NotConfigured(f"DEDUP_THRESHOLD must be in (0, 1], not {threshold}")
        self.client = client
        self.url_field, self.html_field, self.text_field = url_field, html_field, text_field
        self.id_field = id_field
        self.fetched_at_field = fetched_at_field
        self.batch_size = batch_size
        self.on_duplicate = on_duplicate
        self.duplicate_field = duplicate_field
        self.duplicate_kind = duplicate_kind
        self.threshold = (
            client.settings.near_duplicate_threshold if threshold is None else threshold
        )
        self.crawler = crawler
        self._bands: dict[int, list[str]] = {}
        """LSH band keys of this crawl's pages (near duplicates not indexed yet)."""
        self._signatures: dict[str, bytes] = {}
        self._batch: list[Document] = []
        self._flush_at = batch_size
        self._seen: dict[str, str] = {}
        self._tag_failed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupPipeline:
        """The pipeline configured from the crawl's settings; connects to Redis now."""
        settings = crawler.settings
        # An unreachable Redis stops the crawl before it starts, rather than scraping pages
        # that nobody checks.
        return cls(
            Client(dedup_settings(settings)),
            url_field=settings.get("DEDUP_URL_FIELD", "url"),
            html_field=settings.get("DEDUP_HTML_FIELD", "html"),
            text_field=settings.get("DEDUP_TEXT_FIELD", "text"),
            id_field=settings.get("DEDUP_ID_FIELD"),
            fetched_at_field=settings.get("DEDUP_FETCHED_AT_FIELD", "fetched_at"),
            batch_size=settings.getint("DEDUP_BATCH_SIZE", 100),
            on_duplicate=str(settings.get("DEDUP_ON_DUPLICATE", "keep")).lower(),
            duplicate_field=settings.get("DEDUP_DUPLICATE_FIELD", "dedup_duplicate_of"),
            duplicate_kind=str(settings.get("DEDUP_DUPLICATE_KIND", "exact")).lower(),
            threshold=settings.getfloat("DEDUP_THRESHOLD")
            if settings.get("DEDUP_THRESHOLD")
            else None,
            crawler=crawler,
        )

    # Scrapy before 2.13 passes the spider; later versions do not.
    def open_spider(self, spider: Any = None) -> None:
        """Nothing to prepare: the connection was checked when the pipeline was built."""

    def process_item(self, item: Any, spider: Any = None) -> Any:
        """Queue the item's page (in the next batch); drop or tag it if it is a known copy."""
        adapter = ItemAdapter(item)
        document = self._document(adapter)
        if document is None:
            return item
        if self.on_duplicate != "keep":
            try:
                copies = self._copies_of(document)
            except InputError as exc:  # no text at all: a worker would only reject it
                self._count("rejected")
                logger.warning("dedup: not queued: %s", exc)
                return item
            if copies:
                self._count("duplicates")
                if self.on_duplicate == "drop":
                    self._count("dropped")
                    kind = "exact duplicate" if self.duplicate_kind == "exact" else "duplicate"
                    raise DropItem(f"{kind} of {', '.join(copies)}: {document.url}")
                self._tag(adapter, copies)
        self._batch.append(document)
        if len(self._batch) >= self._flush_at:
            self.flush()
        return item

    def close_spider(self, spider: Any = None) -> None:
        """Queue what is left; say so if Redis still cannot take it."""
        self.flush()
        if self._batch:
            logger.error("dedup: %d document(s) were not queued", len(self._batch))

    def flush(self) -> None:
        """Queue the collected documents; keep them for the next try if Redis refuses."""
        if not self._batch:
            return
        try:
            jobs = self.client.submit_many(self._batch, batch_size=self.batch_size)
        except DedupError as exc:
            self._flush_at = len(self._batch) + self.batch_size
            logger.error("dedup: could not queue %d document(s): %s", len(self._batch), exc)
            return
        self._count("queued", len(self._batch))
        self._count("jobs", len(jobs))
        self._batch = []
        self._flush_at = self.batch_size

    def _document(self, adapter: ItemAdapter) -> Document | None:
        """The item as a document; None (counted) when it has no page or a bad one."""
        html, text = adapter.get(self.html_field), adapter.get(self.text_field)
        body, fmt = (html, "html") if html else (text, "text")
        if not body:
            self._count("skipped")
            return None
        raw_url = adapter.get(self.url_field)
        url = str(raw_url) if raw_url else None
        max_bytes = self.client.settings.max_document_bytes
        try:
            body = check_body(body, max_bytes, f"item {clipped(url or '')}".strip())
            raw_id = adapter.get(self.id_field) if self.id_field else None
            if raw_id:
                doc_id = check_id(str(raw_id))
            else:
                doc_id = id_for_url(url) if url else id_for_body(body)
            fetched_at = self._fetched_at(adapter, clipped(url or doc_id))
            return Document(doc_id, body, url, fmt, fetched_at)  # checks the URL too
        except DedupError as exc:
            self._count("rejected")
            logger.warning("dedup: not queued: %s", exc)
            return None

    def _fetched_at(self, adapter: ItemAdapter, page: str) -> str | None:
        """The item's fetch time as ISO 8601 text; None when it has none or a bad one.

        Never the time the item passes here: a page crawled again unchanged would then be a
        new version every time, where the same content is meant to change nothing.
        """
        value = adapter.get(self.fetched_at_field) if self.fetched_at_field else None
        if isinstance(value, datetime):
            value = value.isoformat(timespec="seconds").replace("+00:00", "Z")
        try:
            return check_fetched_at(value)
        except InputError as exc:
            logger.warning("dedup: %s queued without a fetch time: %s", page, exc)
            return None

    def _copies_of(self, document: Document) -> list[str]:
        """Other ids with exactly this content, in the index or earlier in this crawl.

        Earlier items of this crawl count too: the workers may not have indexed them yet.
        An unreachable Redis skips the check rather than the page.

        Raises:
            InputError: the page has no text at all.
        """
        from dedup.pipeline.analysis import analyse

        analysis = analyse(document, self.client.settings)
        content = analysis.content_hash
        if self.duplicate_kind == "near":
            return self._near_copies_of(document, analysis)
        try:
            indexed = self.client.store.content_matches([content])[0]
        except DedupError as exc:
            logger.warning("dedup: duplicate check skipped for %s: %s", document.doc_id, exc)
            return []
        copies = set(indexed)
        earlier = self._seen.get(content)
        if earlier is not None:
            copies.add(earlier)
        elif len(self._seen) < SEEN_LIMIT:
            self._seen[content] = document.doc_id
        copies.discard(document.doc_id)
        return sorted(copies)

    def _near_copies_of(self, document: Document, analysis: Analysis) -> list[str]:
        """Other ids with this content or at least ``threshold`` alike, in the index (one
        round trip) or earlier in this crawl (its pages' bands, kept here), best first."""
        from dedup.index import layout
        from dedup.index.matching import page_matches

        store = self.client.store
        computed = analysis.document_signature()
        signature = layout.reduce_signature(computed, store.wide) if computed is not None else b""
        try:
            found = dict(page_matches(store, signature, analysis.content_hash, self.threshold))
        except DedupError as exc:
            logger.warning("dedup: duplicate check skipped for %s: %s", document.doc_id, exc)
            return []
        earlier = self._seen.get(analysis.content_hash)
        if earlier is not None:
            found[earlier] = 1.0
        bands = store.band_keys(signature)
        for key in bands:
            for other in self._bands.get(key, ()):
                if other not in found:
                    score = layout.similarity(signature, self._signatures[other], store.wide)
                    if score >= self.threshold:
                        found[other] = score
        if len(self._signatures) < SEEN_LIMIT and document.doc_id not in self._signatures:
            self._seen.setdefault(analysis.content_hash, document.doc_id)
            if signature:
                self._signatures[document.doc_id] = signature
                for key in bands:
                    self._bands.setdefault(key, []).append(document.doc_id)
        found.pop(document.doc_id, None)
        return [doc for doc, _ in sorted(found.items(), key=lambda m: (-m[1], m[0]))]

    def _tag(self, adapter: ItemAdapter, copies: list[str]) -> None:
        try:
            adapter[self.duplicate_field] = copies
        except KeyError:  # a scrapy.Item without the field declared
            if not self._tag_failed:
                self._tag_failed = True
                logger.error(
                    "dedup: cannot tag items: declare a %r field on the item class",
                    self.duplicate_field,
                )

    def _count(self, name: str, count: int = 1) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"dedup/{name}", count)
