"""``dedup server start|stop``: the embedded Redis of the data folder, by hand.

Commands start it themselves when no Redis URL is configured; these are for keeping one up
between commands, or stopping it (its data stays in the folder).
"""

from __future__ import annotations

import click

from dedup.cli.context import pass_settings
from dedup.settings import Settings


@click.group()
def server() -> None:
    """The embedded Redis (used when no Redis URL is configured)."""


@server.command("start")
@pass_settings
def server_start(settings: Settings) -> None:
    """Start the embedded Redis of the data folder."""
    from dedup.servers.embedded import ensure_server

    ensure_server(settings.data_dir)
    click.echo(f"embedded Redis running in {settings.data_dir}")


@server.command("stop")
@pass_settings
def server_stop(settings: Settings) -> None:
    """Stop the embedded Redis (its data stays in the data folder)."""
    from dedup.servers.embedded import stop_server

    stopped = stop_server(settings.data_dir)
    click.echo("stopped" if stopped else "not running")
