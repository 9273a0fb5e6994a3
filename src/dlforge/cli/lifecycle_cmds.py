"""`dlforge promote`, `dlforge rollback` and `dlforge finetune`: a model's life after its first run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlforge.cli import output
from dlforge.cli.registry_cmds import open_store

AliasOpt = Annotated[str | None, typer.Option(help="The alias to move; default the gate's (production).")]


def promote_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    candidate: Annotated[str, typer.Option(help="The version to promote (number or NAME@VERSION).")],
    alias: AliasOpt = None,
    require: Annotated[list[str], typer.Option(
        help="A gate condition, e.g. 'accuracy >= 0.9' or 'macro_f1 >= champion - 0.002' "
             "(repeatable); default the candidate's evaluate.gate.")] = [],  # noqa: B006
    gate_data: Annotated[Path | None, typer.Option(
        help="Config whose data is the gate set; default the candidate's test split.")] = None,
) -> None:
    """Move ALIAS to the candidate only if it passes the gate against the current holder.

    Exits 1 with the failed conditions when the gate refuses it; either way the decision and
    every compared figure are in `dlforge models history NAME`.

    Example: dlforge promote digits --candidate 2 --require 'accuracy >= champion'
    """
    from dlforge.lifecycle.promote import promote

    result = promote(open_store(ctx), name, candidate, alias=alias, conditions=list(require),
                     gate_data=gate_data)
    show_gate(result, refused="promotion refused")


def show_gate(result, refused: str) -> None:
    """Print a gate's table, then where the alias moved, or exit 1 saying why it did not."""
    name = result.candidate.name
    champion = f"{name}@{result.champion.version}" if result.champion else "none"
    output.table(f"gate: {result.candidate.ref} vs {result.alias} holder {champion} on "
                 f"{result.samples} rows ({result.gate_set})",
                 ["condition", "candidate", "champion", "bound", "result"],
                 [(c.condition, c.candidate, c.champion, c.bound, c.status) for c in result.checks])
    if not result.passed:
        output.err.print(f"error: {refused}: {result.failures()}")
        raise typer.Exit(1)
    output.out.print(f"{name}@{result.alias} -> version {result.candidate.version}")


def rollback_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = "production",
    reason: Annotated[str | None, typer.Option(help="Why, for the audit history.")] = None,
) -> None:
    """Move ALIAS back to the version that held it before (one step per call).

    Example: dlforge rollback digits --alias production --reason 'v3 mislabels 7s'
    """
    from dlforge.lifecycle.promote import rollback

    before, after = rollback(open_store(ctx), name, alias, reason)
    output.out.print(f"{name}@{alias}: version {before} -> version {after} (rolled back)")


def finetune_command(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Run config (YAML) of the new data; its model "
                                                "section is replaced by the source's.")],
    source: Annotated[str, typer.Option("--from", help="The model to start from: NAME@ALIAS or NAME@VERSION.")],
    set_: Annotated[list[str], typer.Option("--set", "-s", help="Override a key, e.g. "
                                            "transfer.mode=feature_extraction (repeatable).")] = [],  # noqa: B006
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Train a new version from a registered model's weights and preprocessing (transfer
    learning; `transfer.mode`: finetune or feature_extraction), then evaluate, register and
    report it like `dlforge run` (a tune section is ignored).

    Example: dlforge finetune examples/fashion_b.yaml --from fashion-a@staging
    """
    from dlforge.config import load_config
    from dlforge.pipeline import run as run_pipeline

    cfg = load_config(config, [*set_, "tune=null", f"transfer.source={source}"])
    output.run_summary(run_pipeline(cfg, workspace=ctx.obj["workspace"], progress=not quiet,
                                    store_url=ctx.obj["store_url"]))


def register_lifecycle(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command("promote")(promote_command)
    app.command("rollback")(rollback_command)
    app.command("finetune")(finetune_command)
