"""The settings every command runs with, built once by the ``dedup`` group.

The group reads ``config/dedup.toml``, then ``DEDUP_*``, then its own flags, into one frozen
:class:`~dedup.settings.Settings` on the click context; commands take it as their first
argument through :data:`pass_settings` instead of reading the context themselves.
"""

from __future__ import annotations

import click

from dedup.settings import Settings

pass_settings = click.make_pass_decorator(Settings)
"""Decorator of a command: passes the settings of this invocation as the first argument."""
