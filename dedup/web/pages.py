"""Pages for people under ``/ui/``: rendered on the server, no script, everything escaped.

A browser signs in once with a token (a signed, HttpOnly, SameSite cookie); a bearer header
works too. Every text that comes from a scraped page goes through Jinja's autoescaping.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from dedup.errors import DedupError
from dedup.index import texts
from dedup.index.keys import FLAGS
from dedup.queue.metrics import queue_state
from dedup.web import views
from dedup.web.api import since_time
from dedup.web.app import SESSION_COOKIE, ApiError, grant_of, web
from dedup.web.auth import SESSION_SECONDS

router = APIRouter(prefix="/ui", include_in_schema=False)
CHART_ROWS = 5000
"""Most documents the overview's chart reads (the newest of the last 24 hours)."""

_env = Environment(
    loader=PackageLoader("dedup.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_env.filters["q"] = lambda value: quote(str(value), safe="")
_env.filters["web_url"] = lambda url: (
    url if str(url).lower().startswith(("http://", "https://")) else None
)
_env.globals["FLAGS"] = FLAGS


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from its template; the headers keep scripts and framing out."""
    html = _env.get_template(name).render(**context)
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def error_page(request: Request, status: int, message: str) -> Response:
    """An error as a page; a browser without a session is sent to sign in."""
    if status == 401 and "authorization" not in request.headers:
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/ui/login?next={target}", status_code=303)
    return render("error.html", status=status, message=message, status_code=status)


def viewer(request: Request) -> None:
    """Pages need a token: a bearer header or the session cookie."""
    if grant_of(request, cookie=True) is None:
        raise ApiError(401, "sign in with a token")


@router.get("/login")
def login_form(request: Request, next: str = "/ui/") -> HTMLResponse:
    """The sign-in form."""
    return render("login.html", next=_local(next), error=None)


def _local(target: str) -> str:
    """Only paths of these pages, never another site."""
    return target if target.startswith("/ui/") and not target.startswith("/ui//") else "/ui/"


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token of the form; on success set the session cookie and go on."""
    form = await request.form()
    token = str(form.get("token", "")).strip()
    target = _local(str(form.get("next", "/ui/")))
    grant = web(request).tokens.check(token) if token else None
    if grant is None:
        return render("login.html", status=401, next=target, error="That token is not accepted.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        web(request).tokens.session(grant),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/ui",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    """Forget the session."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


@router.get("/")
def overview(request: Request) -> HTMLResponse:
    """Documents, queue depth, failed jobs, and flags over the last day as a chart."""
    viewer(request)
    state = web(request)
    now = time.time()
    rows, _ = state.store.page_documents(since=now - 86400, limit=CHART_ROWS)
    bars = views.hourly(rows, now)
    return render(
        "overview.html",
        stats=state.store.stats(),
        queue=queue_state(state.client.queue),
        bars=bars,
        peak=max([bar.total for bar in bars] + [1]),
    )


@router.get("/documents")
def documents(
    request: Request,
    flag: str = "",
    since: str = "",
    cursor: str = "",
    limit: int = Query(50, ge=1, le=500),
) -> HTMLResponse:
    """Documents, newest first, filtered by flag and age."""
    viewer(request)
    if flag and flag not in FLAGS:
        raise ApiError(422, f"flag must be one of {', '.join(FLAGS)}")
    if cursor and not cursor.isdigit():
        raise ApiError(422, "bad cursor")
    rows, following = web(request).store.page_documents(
        flag or None,
        since=since_time(since) if since else None,
        before=int(cursor) if cursor else None,
        limit=limit,
    )
    return render(
        "documents.html", rows=rows, flag=flag, since=since, following=following, limit=limit
    )


@router.get("/compare")
def compare(request: Request, a: str, b: str) -> HTMLResponse:
    """Two documents side by side, the words that differ highlighted."""
    viewer(request)
    state = web(request)
    sides = []
    for doc_id in (a, b):
        report = state.client.report(doc_id)
        kept = texts.paragraphs(state.store.client, state.store.keys, doc_id)
        if kept is None or len(kept) != report["paragraphs"]:
            raise ApiError(404, f"the text of {doc_id!r} is no longer kept for comparison")
        sides.append((report, kept))
    left, right = views.compare(sides[0][1], sides[1][1])
    return render("compare.html", a=sides[0][0], b=sides[1][0], left=left, right=right)


@router.get("/documents/{doc_id:path}")
def document(request: Request, doc_id: str) -> HTMLResponse:
    """A document's report: its paragraphs and their roles, repeats linked to their twins."""
    viewer(request)
    state = web(request)
    try:
        report = state.client.report(doc_id)
    except DedupError:
        raise
    kept = texts.paragraphs(state.store.client, state.store.keys, doc_id)
    rows = views.paragraphs(report, kept)
    return render(
        "report.html",
        report=report,
        rows=rows,
        text_kept=kept is not None and len(kept) == report["paragraphs"],
    )
