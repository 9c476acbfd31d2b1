"""The ``dedup`` command: the click group, its global options and the table of its commands.

Every failure a user can cause ends as one line on stderr and a non-zero exit code; the
commands, options and JSON field names are a contract (docs/CLI.md). Each command lives in
the module of its kind (:data:`COMMANDS`), imported only when that command runs or help
lists it, so ``dedup report`` does not pay for the submission or evaluation machinery.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from dedup.cli import render
from dedup.errors import DedupError
from dedup.settings import load_settings

COMMANDS = {
    "submit": "dedup.cli.submit:submit",
    "worker": "dedup.cli.work:worker",
    "check": "dedup.cli.work:check",
    "report": "dedup.cli.reading:report",
    "list": "dedup.cli.reading:list_documents",
    "stats": "dedup.cli.reading:stats",
    "export": "dedup.cli.export:export",
    "groups": "dedup.cli.groups:groups",
    "failed": "dedup.cli.admin:failed",
    "requeue": "dedup.cli.admin:requeue",
    "delete": "dedup.cli.admin:delete",
    "purge": "dedup.cli.admin:purge",
    "migrate": "dedup.cli.admin:migrate",
    "server": "dedup.cli.server:server",
    "serve": "dedup.cli.serve:serve",
    "token": "dedup.cli.tokens:token",
    "eval": "dedup.evaluation.command:evaluate",
}
"""Every command by name, and the ``module:attribute`` that defines it."""


def _fail(message: str, code: int = 1) -> NoReturn:
    render.error(message)
    sys.exit(code)


class DedupGroup(click.Group):
    """Loads the commands of :data:`COMMANDS` when asked for, and turns every dedup error into
    one line and an exit code, never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, attribute = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DedupError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if os.environ.get("DEDUP_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} (set DEDUP_DEBUG=1 for details)", 70)


@click.group(cls=DedupGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", type=click.Path(dir_okay=False, path_type=Path), help="TOML settings file."
)
@click.option("--redis-url", help="Redis to use (default: DEDUP_REDIS_URL, else the embedded one).")
@click.option(
    "--queue-url", help="Redis of the queue, if not --redis-url (default: DEDUP_QUEUE_URL)."
)
@click.option(
    "--index-url",
    help="Redis of the index, if not --redis-url, also redis+cluster://HOST:PORT,... "
    "(default: DEDUP_INDEX_URL).",
)
@click.option("--namespace", help="Key prefix in Redis (default: dedup).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of the embedded Redis.",
)
@click.version_option(
    package_name="dedup",
    message="%(prog)s %(version)s (MinHash arithmetic: "
    + ("compiled kernel" if importlib.util.find_spec("dedup.pipeline._minhash") else "numpy")
    + ")",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config: Path | None,
    redis_url: str | None,
    queue_url: str | None,
    index_url: str | None,
    namespace: str | None,
    data_dir: Path | None,
) -> None:
    """Find duplicate content in scraped web documents.

    Documents are queued (submit), analysed by workers (worker) and read back as reports
    (report, list, stats). check analyses one document at once, without the queue.
    """
    overrides = {
        "redis_url": redis_url,
        "queue_url": queue_url,
        "index_url": index_url,
        "namespace": namespace,
        "data_dir": data_dir,
    }
    try:
        ctx.obj = load_settings(config, overrides=overrides)
    except DedupError as exc:
        _fail(str(exc), exc.exit_code)


def main() -> None:
    """Entry point of the ``dedup`` command."""
    cli(prog_name="dedup")
