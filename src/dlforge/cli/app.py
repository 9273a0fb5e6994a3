"""The typer application: global options and the run/train/evaluate commands; the others register here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlforge.cli import launch as ddp
from dlforge.cli import output
from dlforge.cli.drift_cmds import drift_command
from dlforge.cli.export_cmds import export_command, profile_command
from dlforge.cli.generate_cmds import generate_command
from dlforge.cli.inspect_cmds import config_app, data_app
from dlforge.cli.lifecycle_cmds import register_lifecycle
from dlforge.cli.model_inspect_cmds import inspect_command
from dlforge.cli.predict_cmds import predict_command
from dlforge.cli.registry_cmds import models_app, report_command, runs_app
from dlforge.cli.review_cmds import review_command
from dlforge.cli.serve_cmds import serve_command
from dlforge.cli.shard_cmds import shard_command
from dlforge.cli.tune_cmds import tune_command
from dlforge.cli.ui_cmds import ui_command
from dlforge.cli.update_cmds import register_update
from dlforge.cli.usage import RootGroup

app = typer.Typer(
    name="dlforge",
    help="Train, evaluate, register and serve deep-learning models with careful practice built in.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=RootGroup,
)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
data_app.command("review")(review_command)
data_app.command("shard")(shard_command)
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")
app.command("drift")(drift_command)
app.command("export")(export_command)
app.command("generate")(generate_command)
app.command("inspect")(inspect_command)
app.command("predict")(predict_command)
app.command("profile")(profile_command)
app.command("report")(report_command)
app.command("serve")(serve_command)
app.command("tune")(tune_command)
app.command("ui")(ui_command)
register_lifecycle(app)
register_update(app)

ConfigArg = Annotated[Path | None, typer.Argument(help="Run config (YAML). Default: digits with a small CNN.")]
SetOpt = Annotated[list[str], typer.Option("--set", "-s", help="Override a key: --set train.epochs=2 (repeatable).")]


def _version(value: bool) -> None:
    """Print the version and exit, before any command is looked for (an eager option)."""
    if value:
        from dlforge import __version__

        output.out.print(f"dlforge {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    workspace: Annotated[Path | None, typer.Option(
        "--workspace", "-w", envvar="DLFORGE_WORKSPACE",
        help="Where runs, the store and artifacts live. Default ./dlforge-workspace.")] = None,
    store_url: Annotated[str | None, typer.Option(
        "--store-url", envvar="DLFORGE_STORE_URL",
        help="SQLAlchemy URL of the store. Default sqlite file in the workspace.")] = None,
    debug: Annotated[bool, typer.Option(  # read from argv by cli.main, before typer parses
        "--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = {"workspace": workspace, "store_url": store_url}


@app.command()
def run(
    ctx: typer.Context,
    config: ConfigArg = None,
    set_: SetOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    resume: Annotated[str | None, typer.Option(
        help="Continue an interrupted or failed run (id or prefix) from its last checkpoint.")] = None,
    nproc: ddp.NprocOpt = 1, nnodes: ddp.NnodesOpt = 1, node_rank: ddp.NodeRankOpt = None,
    rdzv_endpoint: ddp.EndpointOpt = None, timeout: ddp.TimeoutOpt = ddp.DEFAULT_TIMEOUT_S,
    threads: ddp.ThreadsOpt = None,
) -> None:
    """Validate, split, preprocess, train, evaluate, register and report: the whole pipeline.

    Example: dlforge run examples/digits.yaml --set train.epochs=3
    """
    if resume is not None and (config is not None or set_):
        raise typer.BadParameter("takes no CONFIG or --set: a resumed run keeps its own config",
                                 param_hint="--resume")
    _run_pipeline(ctx, config, set_, quiet, resume=resume,
                  launch=ddp.Launch(nproc, nnodes, node_rank, rdzv_endpoint, timeout, threads))


@app.command()
def train(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Run config (YAML).")],
    set_: SetOpt = [],  # noqa: B006
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    nproc: ddp.NprocOpt = 1, nnodes: ddp.NnodesOpt = 1, node_rank: ddp.NodeRankOpt = None,
    rdzv_endpoint: ddp.EndpointOpt = None, timeout: ddp.TimeoutOpt = ddp.DEFAULT_TIMEOUT_S,
    threads: ddp.ThreadsOpt = None,
) -> None:
    """Train one model from CONFIG (no search: a tune section is ignored), then evaluate,
    register and report it.

    Example: dlforge train examples/breast_cancer.yaml --set train.epochs=20
    """
    _run_pipeline(ctx, config, set_, quiet, search=False,
                  launch=ddp.Launch(nproc, nnodes, node_rank, rdzv_endpoint, timeout, threads))


def _run_pipeline(ctx: typer.Context, config: Path | None, overrides: list[str], quiet: bool,
                  search: bool = True, resume: str | None = None, launch: ddp.Launch | None = None) -> None:
    from dlforge.config import load_config
    from dlforge.config.load import default_config_path

    cfg = None if resume else load_config(config or default_config_path(),
                                           [*overrides, *(() if search else ("tune=null",))])
    if launch is not None and launch.wanted:  # start the processes; each runs this command again (cli/launch.py)
        ddp.start_ranks(ctx, launch, cfg, config, overrides, quiet, search, resume)
        return
    from dlforge.pipeline import run as run_pipeline
    from dlforge.pipeline.distributed_run import launched, run_rank

    result = (run_rank if launched() else run_pipeline)(
        cfg, workspace=ctx.obj["workspace"], progress=not quiet, resume=resume,
        store_url=ctx.obj["store_url"])
    if result is not None:  # ranks other than 0 report nothing
        output.run_summary(result)


@app.command()
def evaluate(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Registered model: NAME, NAME@VERSION or NAME@ALIAS.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Config whose data section to evaluate on.")],
    set_: Annotated[list[str], typer.Option(
        "--set", "-s", help="Override a key of that config: --set data.limit=500 (repeatable).")] = [],  # noqa: B006
    split: Annotated[str, typer.Option(help="Which split of that data: test or all.")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="Print the full metrics as JSON.")] = False,
) -> None:
    """Evaluate a registered model on the test split (or all) of a config's data section.

    Example: dlforge evaluate digits@staging --data examples/digits.yaml --split all
    """
    from dlforge.config import load_config
    from dlforge.pipeline.evaluate_model import evaluate_registered

    if split not in ("test", "all"):
        raise typer.BadParameter(f"must be test or all (got {split!r})", param_hint="--split")
    cfg = load_config(data, set_)
    metrics = evaluate_registered(model, cfg, split=split, workspace=ctx.obj["workspace"],
                                  url=ctx.obj["store_url"])
    for warning in metrics["warnings"]:
        output.err.print(f"warning: {warning}")
    if as_json:
        output.print_json(metrics)
    else:
        output.table(f"{model} on {split} ({metrics['n_samples']} samples)", ["metric", "value"],
                     metrics["headline"])
