"""`dlforge tune CONFIG`: hyperparameter search, then the best config trained, tested, registered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlforge.cli import output


def tune_command(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Run config (YAML) with a tune section.")],
    set_: Annotated[list[str], typer.Option(
        "--set", "-s", help="Override a key: --set tune.n_trials=5 (repeatable).")] = [],  # noqa: B006
    worker: Annotated[bool, typer.Option(
        "--worker", help="Only run trials of the config's shared study (start several, one store).")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue a killed search: its unfinished trials are run again.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Search the tune.space of CONFIG with Optuna, retrain the best trial (by validation),
    evaluate it on test once, register and report it.

    Example: dlforge tune search.yaml --set tune.n_trials=10 (see README: Hyperparameter search)
    """
    from dlforge.config import load_config
    from dlforge.errors import ConfigError

    cfg = load_config(config, set_)
    if cfg.tune is None:
        raise ConfigError("tune: the config has no tune section; add e.g. tune: {space: {train.lr: "
                          "{log_uniform: [0.0001, 0.1]}}} or train it once with `dlforge run`")
    if worker:
        from dlforge.tune.worker import run_worker

        result = run_worker(cfg, workspace=ctx.obj["workspace"], store_url=ctx.obj["store_url"],
                            progress=not quiet, resume=resume)
        print_trials(result)
        return
    from dlforge.pipeline import run as run_pipeline

    output.run_summary(run_pipeline(cfg, workspace=ctx.obj["workspace"], progress=not quiet,
                                    store_url=ctx.obj["store_url"], search_resume=resume))


def print_trials(result) -> None:
    """The trial table and the best trial of a search."""
    columns, rows = result.table()
    c = result.counts
    output.table(f"study {result.study_name}: {c['complete']} complete, {c['pruned']} pruned, "
                 f"{c['failed']} failed", columns, rows)
    if result.best is not None:
        output.out.print(f"best: trial {result.best.number}, {result.metric} "
                         f"{output.fmt(result.best.value)}, {output.fmt(result.best.params)}")
