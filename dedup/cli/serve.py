"""``dedup serve``: the HTTP API, the review pages and the metrics (:mod:`dedup.web`).

Uvicorn runs the ASGI application; it binds the loopback address unless told otherwise,
and refuses to start without a token to check requests against.
"""

from __future__ import annotations

import gc
import importlib.util
import threading
from types import FrameType

import click

from dedup.cli.context import pass_settings
from dedup.errors import ConfigError
from dedup.settings import Settings

WEB_MODULES = ("fastapi", "uvicorn", "jinja2", "prometheus_client")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(1),
    default=32 * 1024 * 1024,
    show_default=True,
    help="Largest request body accepted (413 beyond).",
)
@click.option(
    "--max-batch",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Most documents in one submission (413 beyond).",
)
@pass_settings
def serve(settings: Settings, host: str, port: int, max_body_bytes: int, max_batch: int) -> None:
    """Serve the HTTP API (/v1), the review pages (/ui) and /metrics."""
    missing = [name for name in WEB_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"dedup serve needs {', '.join(missing)}: pip install 'dedup[web]'")
    if not settings.api_tokens.strip():
        raise ConfigError(
            "no API tokens: run `dedup token new` and add the line it prints to "
            "DEDUP_API_TOKENS or api_tokens in the config file"
        )
    import redis
    import uvicorn

    from dedup.index.access import store_error
    from dedup.servers.connection import index_client, queue_client
    from dedup.web.app import Limits, create_app
    from dedup.web.ingest import Ingest

    try:  # a wrong Redis fails here, not on the first request
        queue_client(settings).ping()
        index_client(settings).ping()
    except redis.RedisError as exc:
        raise store_error(exc) from None
    app = create_app(settings, Limits(max_body_bytes, max_batch))
    click.echo(f"dedup serve: http://{host}:{port}/ (API /v1, pages /ui/, /metrics)", err=True)
    served = Ingest(app, app.state.web)  # submissions answered ahead of FastAPI
    config = uvicorn.Config(served, host=host, port=port, server_header=False, log_level="info")

    class Server(uvicorn.Server):
        """Stops as uvicorn does, but sends the gathered submissions at once: the requests
        waiting for them are answered, and the server then waits for nothing else."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # from a thread: this handler may interrupt the event loop inside the gatherer
            threading.Thread(target=app.state.web.gatherer.hurry, daemon=True).start()
            super().handle_exit(sig, frame)

    # What start-up made lives as long as the server: the cyclic collector need not scan it
    # again on every full pass (tens of milliseconds each, added to whichever request meets
    # one)
    gc.collect()
    gc.freeze()
    Server(config).run()
