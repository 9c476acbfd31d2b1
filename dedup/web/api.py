"""The JSON API, version 1: documents in, reports out, with the CLI's field names.

Submissions meet the checks of ``dedup submit`` (:func:`dedup.pipeline.document.from_payload`)
and go through :class:`dedup.client.Client`; a request with a bad document queues nothing
and says which ones are bad and why.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from dedup.errors import DedupError, NotFoundError
from dedup.index.keys import FLAGS
from dedup.pipeline.document import Document, check_id, from_payload, label
from dedup.queue.metrics import queue_state
from dedup.report import Listed, Report, Stats
from dedup.servers.connection import display_url, location
from dedup.web.app import ApiError, Web, require, web

MAX_WAIT = 60.0
"""Longest ``?wait=`` a report read may ask for, in seconds."""
MAX_PAGE = 500
RETURN_WINDOW = 0.005
"""Seconds a batch that every submission in progress waits for may still wait for the
clients answered with the previous batch to post again (never past ``submit_delay``)."""

# Declares the scheme in the OpenAPI schema; the check itself is :func:`require`.
_scheme = HTTPBearer(auto_error=False, description="A token from `dedup token new`.")
router = APIRouter(tags=["v1"], dependencies=[Depends(_scheme)])
health = APIRouter(tags=["health"])

_DOCUMENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "url": {"type": "string", "nullable": True},
        "html": {"type": "string"},
        "text": {"type": "string"},
        "format": {"enum": ["auto", "html", "text"]},
        "fetched_at": {"type": "string", "nullable": True},
    },
}
_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _DOCUMENT_SCHEMA,
                        {
                            "type": "object",
                            "required": ["documents"],
                            "properties": {
                                "documents": {"type": "array", "items": _DOCUMENT_SCHEMA}
                            },
                        },
                    ]
                }
            }
        },
    }
}


def _documents_of(body: bytes, state: Web) -> list[Document]:
    """The documents of a submission, all checked; 413 or 422 when the request is not fit."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"the body is not JSON: {exc}") from None
    if isinstance(data, dict) and "documents" in data:
        items = data["documents"]
        if not isinstance(items, list):
            raise ApiError(422, '"documents" must be a list of documents')
    elif isinstance(data, dict):
        items = [data]
    else:
        raise ApiError(422, 'give one document object or {"documents": [...]}')
    if not items:
        raise ApiError(422, "no documents given")
    if len(items) > state.limits.max_batch:
        raise ApiError(
            413, f"{len(items)} documents in one request; at most {state.limits.max_batch}"
        )
    documents, rejected = [], []
    for position, item in enumerate(items):
        try:
            documents.append(from_payload(item, state.settings.max_document_bytes))
        except DedupError as exc:
            rejected.append({"index": position, "id": label(item, position), "error": str(exc)})
    if rejected:
        raise ApiError(
            422,
            f"{len(rejected)} of {len(items)} document(s) rejected; none queued",
            rejected=rejected,
        )
    return documents


@router.post(
    "/v1/documents",
    status_code=202,
    summary="Queue one document, or {documents: [...]}",
    openapi_extra=_SUBMIT_BODY,
)
async def submit(request: Request) -> JSONResponse:
    """Queue documents for the workers: ``{"documents": [ids], "jobs": [job ids]}``.

    ``dedup serve`` answers this path ahead of FastAPI (:mod:`dedup.web.ingest`); this route
    gives it its schema and serves the application alone.
    """
    require(request, write=True)
    return JSONResponse(await submission(web(request), request.body), status_code=202)


async def submission(state: Web, body: Callable[[], Awaitable[bytes]]) -> dict[str, list[str]]:
    """Check and queue the documents of one submission whose token was accepted; its answer.

    Raises:
        ApiError: 413 or 422, the request is not fit (nothing queued).
        DedupError: the documents could not be queued.
    """
    state.submitting += 1  # counted while its body arrives: the batch waits for it
    state.returning = max(0, state.returning - 1)
    try:
        documents = _documents_of(await body(), state)
        if len(documents) == 1 and state.settings.submit_delay > 0:
            jobs = [await _gathered(state, documents[0])]
        else:
            jobs = await _queued(state, documents)
    finally:
        state.submitting -= 1
        _leave_when_all_wait(state)
    return {"documents": [d.doc_id for d in documents], "jobs": jobs}


async def _gathered(state: Web, document: Document) -> str:
    """Queue one document with those of other requests, in one job; its id once queued.

    The batch leaves when it is full, after ``submit_delay``, or once every submission in
    progress is waiting for it: then no other document can join it before one of them is
    answered, and waiting longer would only slow the clients down. Only the clients just
    answered may still come: a scraper posting from many connections gets them back a few
    milliseconds after the previous batch was answered, so the batch waits for as many new
    submissions as that batch answered, ``RETURN_WINDOW`` at most. Without it, such a
    scraper's connections split into two halves whose batches alternate, each job half as
    large, and every job costs the workers RQ's dozen round trips.
    """
    gathered = state.gatherer.add(document.to_payload())
    _leave_when_all_wait(state)
    job_id = await asyncio.wrap_future(gathered.sent)
    if job_id != state.answered_job:  # the first answer of a batch: forget the one before
        state.answered_job, state.returning = job_id, 0
    state.returning += 1
    return job_id


def _leave_when_all_wait(state: Web) -> None:
    """Send the waiting batch if every submission in progress is waiting for it: now, or
    within ``RETURN_WINDOW`` while clients just answered have not posted again (checked
    whenever a document is added, and whenever a request ends)."""
    waiting = state.gatherer.waiting
    if waiting and waiting >= state.submitting:
        state.gatherer.hurry(within=RETURN_WINDOW if state.returning else 0.0)


async def _queued(state: Web, documents: list[Document]) -> list[str]:
    """Queue the documents of one request in jobs of their own; the job ids."""
    from starlette.concurrency import run_in_threadpool

    handles = await run_in_threadpool(state.client.submit_many, documents)
    return [h.id for h in handles]


def _doc_id(doc_id: str) -> str:
    try:
        return check_id(doc_id)
    except DedupError as exc:
        raise ApiError(422, str(exc)) from None


@router.get("/v1/documents/{doc_id:path}", summary="A document's report")
def report(
    request: Request,
    doc_id: str,
    wait: float = Query(0, ge=0, le=MAX_WAIT, description="Seconds to wait for the report"),
    limit: int | None = Query(
        None, ge=1, description="At most this many exact and near duplicates, best first"
    ),
) -> JSONResponse:
    """The report, as ``dedup report --json`` prints it; 404 when the document is unknown
    (after ``wait`` seconds, with the queue's state)."""
    require(request)
    report: Report = web(request).client.report(_doc_id(doc_id), wait=wait, limit=limit)
    return JSONResponse(report)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_time(text: str, now: float | None = None) -> float:
    """A cut-off time from an age (``30m``, ``1h``, ``2d``), epoch seconds or ISO 8601."""
    match = _DURATION.match(text)
    if match:
        return (now or time.time()) - float(match.group(1)) * _UNITS[match.group(2).lower()]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ApiError(
            422, f"since: {text!r} is not an age (1h), epoch seconds or ISO time"
        ) from None


def _cursor(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise ApiError(422, "cursor: give back the next_cursor of a previous page")
    return int(text)


@router.get("/v1/documents", summary="Documents, newest first, a page at a time")
def list_documents(
    request: Request,
    flag: str | None = Query(None, description="Only documents with this flag"),
    since: str | None = Query(None, description="Indexed in the last AGE (1h) or since a time"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
) -> dict[str, Any]:
    """``{"documents": [rows of list --json], "next_cursor": "..." | null}``."""
    require(request)
    if flag is not None and flag not in FLAGS:
        raise ApiError(422, f"flag must be one of {', '.join(FLAGS)}")
    rows: list[Listed]
    rows, following = web(request).store.page_documents(
        flag, since=since_time(since) if since else None, before=_cursor(cursor), limit=limit
    )
    return {"documents": rows, "next_cursor": None if following is None else str(following)}


@router.get("/v1/groups", summary="Groups of duplicates, each with its canonical copy")
def list_groups(
    request: Request,
    flag: str = Query("near_duplicate", description="near_duplicate or exact_duplicate"),
    since: str | None = Query(None, description="Groups with a document indexed since AGE"),
    min_size: int = Query(2, ge=2, description="Smallest group to list"),
    threshold: float | None = Query(None, gt=0, le=1, description="Re-score at this threshold"),
) -> dict[str, Any]:
    """``{"groups": [groups --json objects], "warning": null | "..."}``, as `dedup groups`."""
    from dedup.index import groups
    from dedup.index.reads import Reads
    from dedup.pipeline.grouping import candidate_probability, threshold_floor

    require(request)
    if flag not in ("near_duplicate", "exact_duplicate"):
        raise ApiError(422, "flag must be near_duplicate or exact_duplicate")
    state = web(request)
    settings = state.settings
    warning = None
    if threshold is not None:
        bands, rows = state.store.lsh
        floor = threshold_floor(bands, rows)
        if threshold < floor:
            chance = candidate_probability(threshold, bands, rows)
            warning = (
                f"threshold {threshold:g} is below {floor:g}, the lowest this index's bands "
                f"serve: a pair at {threshold:g} is compared with probability {chance:.2f}"
            )
        settings = settings.replace(near_duplicate_threshold=threshold)
    reads = Reads(state.store.client, settings)
    options = groups.options_for(reads, exact_only=flag == "exact_duplicate")
    found = groups.read_groups(
        reads,
        options,
        since=since_time(since) if since else None,
        indexed_threshold=state.settings.near_duplicate_threshold,
    )
    return {"groups": [g for g in found if len(g["members"]) >= min_size], "warning": warning}


@router.delete("/v1/documents/{doc_id:path}", summary="Remove a document from the index")
def delete(request: Request, doc_id: str) -> dict[str, Any]:
    """``{"deleted": [id]}``; 404 when the index does not hold it."""
    require(request, write=True)
    state = web(request)
    doc_id = _doc_id(doc_id)
    if not state.store.delete([doc_id]):  # its kept text goes with it
        raise NotFoundError(f"no document {doc_id!r}")
    return {"deleted": [doc_id]}


@router.get("/v1/stats", summary="Documents, paragraphs, flags, queue")
def stats(request: Request) -> JSONResponse:
    """What ``dedup stats --json`` prints."""
    require(request)
    state = web(request)
    queue = queue_state(state.client.queue)
    data: Stats = {
        **state.store.stats(),
        "queued": queue.queued,
        "failed": queue.failed,
        "workers": queue.workers,
        "redis": display_url(state.settings),
        "queue_redis": location(state.settings, "queue"),
        "index_redis": location(state.settings, "index"),
    }
    return JSONResponse(data)


@router.get("/v1/openapi.json", summary="This schema", include_in_schema=False)
def openapi_schema(request: Request) -> dict[str, Any]:
    """The OpenAPI schema of the API."""
    require(request)
    schema: dict[str, Any] = request.app.openapi()
    return schema


@health.get("/healthz", summary="Whether the server and its Redis answer (no token needed)")
def healthz(request: Request) -> JSONResponse:
    """200 ``{"status": "ok"}``, or 503 when Redis does not answer."""
    try:
        web(request).store.client.ping()
    except Exception:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
