"""Job functions: plain JSON data in, the pure pipeline, the store; nothing else.

The worker entry point (:mod:`workers.main`) prepares the context once, before any fork;
a job only looks it up.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue, get_current_job

from dedup.errors import DedupError, InputError, StoreError, StoreUnavailableError
from dedup.index import texts
from dedup.index.store import Indexed, Store
from dedup.pipeline.analysis import Analysis, analyse
from dedup.pipeline.document import from_payload, label
from dedup.queue import metrics
from dedup.queue.failed import REJECTED, Rejection, file_rejected, rejected_meta, summary
from dedup.servers.connection import IndexClient, clients
from dedup.settings import Settings, load_settings

logger = logging.getLogger("dedup.worker")


@dataclass
class Context:
    """What every job of this worker process shares."""

    settings: Settings
    store: Store
    """The index, on the index's Redis."""
    queue: redis.Redis
    """The queue's Redis, where RQ works (the store's client when they share a server)."""
    index: IndexClient
    """The index's Redis (a server or a cluster), the one the store writes to."""


_context: Context | None = None


def prepare(settings: Settings) -> Context:
    """Connect to the queue and the index, check the signature settings and warm the
    pipeline, once per process."""
    global _context
    queue, index = clients(settings)
    store = Store(index, settings)  # see IndexClient
    store.check_settings()
    store.recover()  # what writers that died long ago left where nobody wrote since
    from dedup.pipeline.document import Document

    analyse(Document("warm-up", "<p>one two three four five six seven</p>"), settings)
    _context = Context(settings, store, queue, index)
    # What a worker holds from its start on lives as long as it does: the garbage
    # collector's full passes need not walk it again and again while batches come and go.
    gc.freeze()
    return _context


def context() -> Context:
    """The prepared context; a worker started by plain ``rq worker`` prepares it here."""
    return _context or prepare(load_settings())


def analyse_documents(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Analyse and index a batch of documents, each on its own.

    No document costs the others: one that cannot be checked, analysed or written is
    rejected with its reason while the rest are indexed. When some are rejected, they are
    filed as a failed job of their own (``dedup failed``, ``dedup requeue``); when all are,
    this job fails with their reasons. Neither is retried: bad input stays bad. Only Redis
    being unavailable fails the job as a whole, and RQ retries it; running it again changes
    nothing for the documents already indexed.
    """
    ctx = context()
    if not isinstance(payloads, list):
        _no_retry()
        raise InputError(f"job payload must be a list of documents, not {type(payloads).__name__}")
    analysed: list[tuple[Analysis, Any]] = []
    rejected: list[Rejection] = []
    figures = metrics.JobFigures()
    for position, payload in enumerate(payloads):
        try:
            document = from_payload(payload, ctx.settings.max_document_bytes)
            started = time.perf_counter()
            analysed.append((analyse(document, ctx.settings), payload))
            figures.observe("analysis_seconds", time.perf_counter() - started)
        except DedupError as exc:
            rejected.append(Rejection(label(payload, position), str(exc), payload))
        except Exception as exc:  # a bug met by one document must not cost the others
            logger.exception("document %s could not be analysed", label(payload, position))
            rejected.append(Rejection(label(payload, position), _unexpected(exc), payload))
    started = time.perf_counter()
    results = _index(ctx.store, analysed, rejected)
    if analysed:
        figures.observe("write_seconds", time.perf_counter() - started)
    _keep_figures(ctx.store, analysed, results, rejected, figures, ctx.settings.review_text_days)
    if rejected:
        _report_rejected(rejected, len(payloads), all_rejected=not results)
    return {
        "indexed": sum(r.changed for r in results),
        "unchanged": sum(not r.changed for r in results),
        "documents": [r.doc_id for r in results],
        "rejected": rejected_meta(rejected),
    }


def _index(
    store: Store, analysed: list[tuple[Analysis, Any]], rejected: list[Rejection]
) -> list[Indexed]:
    """Index the batch in one go; if that fails, each document alone, to find the culprits.

    Redis being unavailable is nobody's fault: it fails the job, to be retried. So does an
    error Redis answers for every document of the batch (a store-wide fault, such as a key
    of the wrong type). An error met by some documents only is theirs: they are rejected.
    """
    if not analysed:
        return []
    job = get_current_job()
    token = job.id if job is not None else None  # a retry finishes what this job left
    if len(analysed) > 1:
        try:
            return store.index([analysis for analysis, _ in analysed], token)
        except StoreUnavailableError:
            raise
        except Exception as exc:
            logger.warning("batch write failed (%s); writing one by one", _unexpected(exc))
    results: list[Indexed] = []
    failures: list[Rejection] = []
    store_faults: list[StoreError] = []
    for analysis, payload in analysed:
        try:
            results.extend(store.index([analysis], token))
        except StoreUnavailableError:
            raise
        except Exception as exc:
            if isinstance(exc, StoreError):
                store_faults.append(exc)
            else:
                logger.exception("document %s could not be written", analysis.document.doc_id)
            failures.append(Rejection(analysis.document.doc_id, _unexpected(exc), payload))
    if store_faults and len(store_faults) == len(analysed):
        raise store_faults[0]
    rejected.extend(failures)
    return results


def _keep_figures(
    store: Store,
    analysed: list[tuple[Analysis, Any]],
    results: list[Indexed],
    rejected: list[Rejection],
    figures: metrics.JobFigures,
    text_days: int,
) -> None:
    """Count the job's outcome and keep its documents' text for the review pages (when
    ``review_text_days`` asks for it), in one pipelined call; losing them must not fail
    documents that are already indexed."""
    by_id = {analysis.document.doc_id: analysis for analysis, _ in analysed}
    pipe = store.client.pipeline(transaction=False)
    for result in results:
        figures.counts["indexed" if result.changed else "unchanged"] += 1
        analysis = by_id.get(result.doc_id)
        if analysis is not None and text_days > 0:
            texts.keep(pipe, store.keys, result.doc_id, analysis.paragraphs, text_days * 86400)
            if result.changed:
                figures.counts["flag:doubled_body"] += analysis.repeats.doubled_body
                figures.counts["flag:internal_repeat"] += bool(analysis.repeats.runs)
        if result.changed:
            figures.counts["flag:exact_duplicate"] += bool(result.exact)
            figures.counts["flag:near_duplicate"] += bool(result.near)
    figures.counts["rejected"] += len(rejected)
    metrics.add(pipe, store.keys, figures)
    try:
        pipe.execute()
    except Exception as exc:
        logger.warning("could not keep the job's figures: %s", _unexpected(exc))


def _unexpected(exc: Exception) -> str:
    """The reason given for an error dedup did not raise on purpose."""
    if isinstance(exc, DedupError):
        return str(exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"internal error {type(exc).__name__}: {first}"[:300]


def _report_rejected(rejected: list[Rejection], total: int, *, all_rejected: bool) -> None:
    """Make rejected documents visible in ``dedup failed`` without failing the good ones."""
    job = get_current_job()
    if all_rejected:
        _no_retry()
        if job is not None:
            job.meta[REJECTED] = rejected_meta(rejected)
            job.save_meta()  # type: ignore[no-untyped-call]  # RQ leaves it unannotated
        raise InputError(summary(rejected, total))
    if job is None:
        return
    queue = Queue(job.origin, connection=job.connection, serializer=job.serializer)
    file_rejected(queue, job, rejected, total)
    for rejection in rejected:
        logger.warning("document %s rejected: %s", rejection.doc_id, rejection.reason)


def _no_retry() -> None:
    """Bad input stays bad: retrying the job cannot help."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0
