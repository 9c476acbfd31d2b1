"""``POST /v1/documents`` answered ahead of FastAPI: the request a scraper makes per page.

A scraper posting page by page makes one request a document, and where the server shares
the machine with the workers, its CPU per request is taken from them (docs/BENCHMARKS.md).
FastAPI's middleware, routing and dependency resolution cost more than this request's own
work, so the path is a plain ASGI handler in front of the application, with the same limits
in the same order (the declared length, the token, the body as it arrives), the same checks
and queueing (:func:`dedup.web.api.submission`) and the same answers. Every other request
goes on to FastAPI, which also keeps the route for the schema.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from dedup.web.api import submission
from dedup.web.app import BodyTooLarge, Web, api_error, bearer_token, permitted, too_large

PATH = "/v1/documents"


class Ingest:
    """The application, with submissions answered before they reach FastAPI.

    Args:
        app: the FastAPI application, for every other request (and the lifespan).
        state: the server's state, shared with the application.
    """

    def __init__(self, app: ASGIApp, state: Web) -> None:
        self.app = app
        self.web = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != scope.get("root_path", "") + PATH
        ):
            await self.app(scope, receive, send)
            return
        response = await self._answer(scope, receive)
        if response is not None:
            await response(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive) -> JSONResponse | None:
        """The answer to a submission; None when the client left before its body arrived."""
        limit = self.web.limits.max_body_bytes
        authorization = None
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                return too_large(limit)
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")

        async def body() -> bytes:
            chunks, seen = [], 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Gone
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)

        try:
            token = bearer_token(authorization or "")
            permitted(self.web.tokens.check(token) if token is not None else None, write=True)
            answer: dict[str, Any] = await submission(self.web, body)
        except BodyTooLarge:
            return too_large(limit)
        except _Gone:
            return None
        except Exception as exc:
            return api_error(exc, "POST", PATH)
        return JSONResponse(answer, status_code=202)


class _Gone(Exception):
    """The client disconnected while its body was read."""
