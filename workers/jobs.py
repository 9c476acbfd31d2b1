"""Job functions: plain JSON data in, the pure pipeline, the store; nothing else.

The worker entry point (:mod:`workers.main`) prepares the context once, before any fork;
a job only looks it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rq import get_current_job

from dedup.analysis import Analysis, analyse
from dedup.connection import redis_for
from dedup.document import from_payload
from dedup.errors import DedupError, InputError
from dedup.settings import Settings, load_settings
from dedup.store import Store


@dataclass
class Context:
    """What every job of this worker process shares."""

    settings: Settings
    store: Store


_context: Context | None = None


def prepare(settings: Settings) -> Context:
    """Connect, check the signature settings and warm the pipeline, once per process."""
    global _context
    store = Store(redis_for(settings), settings)
    store.check_settings()
    from dedup.document import Document

    analyse(Document("warm-up", "<p>one two three four five six seven</p>"), settings)
    _context = Context(settings, store)
    return _context


def context() -> Context:
    """The prepared context; a worker started by plain ``rq worker`` prepares it here."""
    return _context or prepare(load_settings())


def analyse_documents(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Analyse and index a batch of documents; bad ones fail the job with their reasons.

    The good documents of a batch are indexed even when others in it are rejected; running
    the job again (a retry) changes nothing for them.
    """
    ctx = context()
    if not isinstance(payloads, list):
        raise InputError("job payload must be a list of documents")
    analyses: list[Analysis] = []
    rejected: list[dict[str, str]] = []
    for position, payload in enumerate(payloads):
        label = payload.get("id") if isinstance(payload, dict) else None
        try:
            document = from_payload(payload, ctx.settings.max_document_bytes)
            analyses.append(analyse(document, ctx.settings))
        except DedupError as exc:
            rejected.append(
                {"id": str(label if label is not None else f"#{position}"), "reason": str(exc)}
            )
    results = ctx.store.index(analyses)
    if rejected:
        job = get_current_job()
        if job is not None:
            job.retries_left = 0  # bad input stays bad: retrying cannot help
        shown = "; ".join(f"{r['id']}: {r['reason']}" for r in rejected[:5])
        more = f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
        raise InputError(f"{len(rejected)} of {len(payloads)} document(s) rejected: {shown}{more}")
    return {
        "indexed": sum(r.changed for r in results),
        "unchanged": sum(not r.changed for r in results),
        "documents": [r.doc_id for r in results],
    }
