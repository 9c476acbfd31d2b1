"""The ASGI application of ``dedup serve``: state, limits, errors and who may do what.

FastAPI (on Starlette) serves the API with its OpenAPI schema and the pages; every error
leaves as JSON (``{"error": ...}``) or, for pages, as a small HTML page, never a traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dedup.client import Client, enqueue
from dedup.errors import DedupError, NotFoundError, StoreError
from dedup.index.store import Store
from dedup.queue.gather import Gatherer
from dedup.settings import Settings
from dedup.web.auth import Grant, Tokens, parse_entries

logger = logging.getLogger("dedup.web")

SESSION_COOKIE = "dedup_session"
MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest request body accepted by default (``dedup serve --max-body-bytes``)."""
MAX_BATCH = 1000
"""Most documents in one request by default (``dedup serve --max-batch``)."""


@dataclass(frozen=True)
class Limits:
    """What one request may carry."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_batch: int = MAX_BATCH


class Web:
    """Everything a request needs, made once when the server starts."""

    def __init__(self, settings: Settings, limits: Limits, tokens: Tokens | None = None) -> None:
        self.settings = settings
        self.limits = limits
        self.tokens = tokens or Tokens(parse_entries(settings.api_tokens))
        self.client = Client(settings)
        self.store = Store(self.client.index_redis, settings)  # see IndexClient
        self.gatherer = Gatherer(
            functools.partial(enqueue, self.client.queue, settings),
            settings.batch_size,
            settings.submit_delay,
            keep_failed=False,  # a request that waited for its batch is answered with the error
        )
        """Requests of one document, gathered into bulk jobs; each answered once queued."""
        self.submitting = 0
        """Submission requests in progress (read and changed on the event loop only)."""
        self.returning = 0
        """Requests answered with the last batch whose clients have not posted again (as
        many new submissions as that, from any client; on the event loop only)."""
        self.answered_job: str | None = None
        """The job of the last batch answered."""


class ApiError(Exception):
    """An answer other than success, with a status and a message for the caller."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def web(request: Request) -> Web:
    """The server's state."""
    state: Web = request.app.state.web
    return state


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    return bearer_token(request.headers.get("authorization", ""))


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization`` header's value, if it is a bearer token."""
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def grant_of(request: Request, *, cookie: bool) -> Grant | None:
    """Who is asking: a bearer token, or (pages only) a signed session cookie."""
    tokens = web(request).tokens
    token = bearer(request)
    if token is not None:
        return tokens.check(token)
    value = request.cookies.get(SESSION_COOKIE) if cookie else None
    return tokens.check_session(value) if value else None


def require(request: Request, *, write: bool = False) -> Grant:
    """The caller's grant, or 401 (no valid token) / 403 (a read-only token writing)."""
    return permitted(grant_of(request, cookie=False), write=write)


def permitted(grant: Grant | None, *, write: bool = False) -> Grant:
    """The grant if it allows the request, else 401 (none) or 403 (read-only, writing)."""
    if grant is None:
        raise ApiError(401, "missing or invalid bearer token")
    if write and grant.read_only:
        raise ApiError(403, "this token is read-only")
    return grant


def json_error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def too_large(limit: int) -> JSONResponse:
    """413: a request body past the limit."""
    return json_error(413, f"request body larger than {limit} bytes")


def api_error(exc: Exception, method: str, path: str) -> JSONResponse:
    """The API's answer to an exception: a status and a message, never a traceback."""
    if isinstance(exc, ApiError):
        return json_error(exc.status, exc.message, **exc.extra)
    if isinstance(exc, DedupError):
        return json_error(status_of(exc), str(exc))
    if isinstance(exc, redis.RedisError):
        logger.warning("Redis error: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return json_error(503, "the store is unavailable")
    logger.error("unexpected error on %s %s", method, path, exc_info=exc)
    return json_error(500, "internal error")


class BodyLimit:
    """Refuses request bodies past a size with 413, before or while they are read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await too_large(self.limit)(scope, receive, send)
                return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except BodyTooLarge:
            if not started:
                await too_large(self.limit)(scope, receive, send)


class BodyTooLarge(Exception):
    """The request body grew past the limit while it was read."""


def status_of(exc: DedupError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, StoreError):
        return 503
    return 422


def create_app(
    settings: Settings, limits: Limits | None = None, tokens: Tokens | None = None
) -> Any:
    """The application: API under ``/v1``, pages under ``/ui``, ``/healthz``, ``/metrics``."""
    from dedup.web import api, metrics, pages

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.web.gatherer.close()  # after the last request: sends what is left

    app = FastAPI(
        lifespan=lifespan,
        title="dedup",
        version="1",
        description="Duplicate-content detection: submit documents, read their reports.",
        openapi_url=None,  # served under /v1 behind the token check (api.openapi_schema)
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = Web(settings, limits or Limits(), tokens)
    app.include_router(api.router)
    app.include_router(api.health)
    app.include_router(pages.router)
    app.include_router(metrics.router)

    @app.exception_handler(ApiError)
    async def refused(request: Request, exc: ApiError) -> Any:
        if request.url.path.startswith("/ui"):
            return pages.error_page(request, exc.status, exc.message)
        return api_error(exc, request.method, request.url.path)

    @app.exception_handler(DedupError)
    async def dedup_error(request: Request, exc: DedupError) -> Any:
        if request.url.path.startswith("/ui"):
            return pages.error_page(request, status_of(exc), str(exc))
        return api_error(exc, request.method, request.url.path)

    @app.exception_handler(redis.RedisError)
    async def redis_error(request: Request, exc: redis.RedisError) -> Any:
        return api_error(exc, request.method, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        ]
        return json_error(422, "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        message = {404: "no such path", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        return json_error(exc.status_code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Any:
        return api_error(exc, request.method, request.url.path)

    app.add_middleware(BodyLimit, limit=app.state.web.limits.max_body_bytes)
    return app
