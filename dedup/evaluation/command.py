"""``dedup eval CORPUS_DIR``: the evaluation as a command (in :data:`dedup.cli.main.COMMANDS`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dedup.cli import render
from dedup.cli.context import pass_settings
from dedup.settings import Settings


@click.command(name="eval")
@click.argument("corpus_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the similarity curve to this PNG (needs matplotlib).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the cases.")
@click.option("--limit", type=click.IntRange(2), help="Use only the first N articles.")
@click.option(
    "--processes", type=click.IntRange(1, 64), default=2, show_default=True, help="Workers."
)
@pass_settings
def evaluate(
    settings: Settings,
    corpus_dir: Path,
    as_json: bool,
    plot: Path | None,
    seed: int,
    limit: int | None,
    processes: int,
) -> None:
    """Measure detection quality on a corpus of pages and their article bodies.

    CORPUS_DIR holds manifest.csv, pages/**.html.gz and truth/**.txt. Cases are built with a
    fixed seed and run through the queue and real workers in a namespace of their own, which
    is deleted afterwards.
    """
    from dedup.evaluation import evaluate as run_evaluation
    from dedup.evaluation import output

    err = render.console(stderr=True) if not as_json else None

    def step(message: str) -> None:
        if err is not None:
            err.print(f"[dim]{render.clean(message)}[/dim]")

    result = run_evaluation(
        corpus_dir, settings, seed=seed, limit=limit, processes=processes, on_step=step
    )
    if plot is not None:
        output.plot(result, plot)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        out = render.console()
        if not out.is_terminal:
            out.width = 120  # a file or a pipe: wide enough for the tables
        out.print(output.tables(result))
