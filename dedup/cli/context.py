"""The settings every command runs with, built once by the ``dedup`` group.

The group reads ``config/dedup.toml``, then ``DEDUP_*``, then its own flags, into one frozen
:class:`~dedup.settings.Settings` on the click context; commands take it as their first
argument through :data:`pass_settings` instead of reading the context themselves, and reach
the index through :func:`index_reads` and :func:`index_store` (the queue through
:func:`dedup.servers.connection.queue_client`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dedup.settings import Settings

if TYPE_CHECKING:
    from dedup.index.reads import Reads
    from dedup.index.store import Store

pass_settings = click.make_pass_decorator(Settings)
"""Decorator of a command: passes the settings of this invocation as the first argument."""


def index_reads(settings: Settings) -> Reads:
    """The read side of the index, on the index's Redis (a server or a cluster)."""
    from dedup.index.reads import Reads
    from dedup.servers.connection import index_client

    return Reads(index_client(settings), settings)  # see IndexClient


def index_store(settings: Settings) -> Store:
    """The index, to write to, on the index's Redis (a server or a cluster)."""
    from dedup.index.store import Store
    from dedup.servers.connection import index_client

    return Store(index_client(settings), settings)  # see IndexClient
