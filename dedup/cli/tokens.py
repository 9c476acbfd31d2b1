"""``dedup token``: tokens for the HTTP API, shown once and kept only as hashes."""

from __future__ import annotations

import click


@click.group()
def token() -> None:
    """Tokens for dedup serve."""


@token.command(name="new")
@click.option("--read-only", is_flag=True, help="A token that may read but not submit or delete.")
def new(read_only: bool) -> None:
    """Print a new token and the api_tokens entry that accepts it.

    The token is shown only here: the service keeps its hash.
    """
    from dedup.web.auth import new_token

    secret, entry = new_token(read_only)
    click.echo(secret)
    click.echo(f"export DEDUP_API_TOKENS={entry}")
    click.echo(
        "The first line is the token, shown only now. The second accepts it: run it, or add "
        f"{entry} to api_tokens in the config (comma-separated entries).",
        err=True,
    )
