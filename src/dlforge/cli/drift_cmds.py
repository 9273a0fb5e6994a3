"""`dlforge drift`: has the data moved away from what a registered model was trained on?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlforge.cli import output

DRIFT_EXIT = 3  # dlforge.lifecycle.drift.DRIFT_EXIT, kept here so --help needs no torch


def drift_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Registered model: NAME, NAME@VERSION or NAME@ALIAS.")],
    data: Annotated[Path | None, typer.Option(
        "--data", "-d", help="Run config (YAML: its data section) or a .csv, .npy/.npz file or image folder.")] = None,
    served: Annotated[bool, typer.Option(
        "--served", help="Compare the inputs `dlforge serve` served (its saved sample) instead.")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Config whose drift section sets the thresholds. Default: the --data "
                               "config's, else the defaults.")] = None,
    split: Annotated[str, typer.Option(help="With a config as --data: all or test.")] = "all",
    report: Annotated[Path | None, typer.Option(
        help="HTML report to write. Default <workspace>/reports/drift-NAME-vVERSION.html.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdicts as JSON.")] = False,
) -> None:
    """Compare new data (or served inputs) with the model's training reference, feature by feature.

    Exit code: 0 no drift, 3 drift detected, 1 error, 2 config or usage error.

    Example: dlforge drift fashion@production --data new_images.npz
    """
    if (data is None) == (not served):
        raise typer.BadParameter("give exactly one of --data and --served", param_hint="--data")
    if split not in ("all", "test"):
        raise typer.BadParameter(f"must be all or test (got {split!r})", param_hint="--split")
    from dlforge.config import load_config
    from dlforge.lifecycle.drift_run import drift_of_data, drift_of_served

    if report is not None:
        output.check_file_target(report, "--report", "drift.html")

    source = config or (data if data is not None and data.suffix in (".yaml", ".yml") else None)
    cfg = load_config(source).drift if source is not None else None
    where = {"workspace": ctx.obj["workspace"], "url": ctx.obj["store_url"], "report": report}
    run = (drift_of_served(model, cfg=cfg, **where) if served
           else drift_of_data(model, data, cfg=cfg, split=split, **where))
    result = run.result
    if as_json:
        output.print_json({**result.to_dict(), "report": str(run.report)})
    else:
        _print(result, run.report)
    raise typer.Exit(result.exit_code)


def _print(result, report: Path) -> None:
    from dlforge.lifecycle.drift import summary_rows

    output.table(f"{result.model} vs {result.source} ({result.rows} rows, decided by {result.decided_by}; "
                 "D = KS statistic, w = Cohen's w, W = Wasserstein in reference stds, "
                 "JS = Jensen-Shannon)",
                 ["feature", "decided by", "p-value", "effect size", "distance", "PSI", "verdict"],
                 summary_rows(result))
    output.out.print(f"verdict: {result.verdict} ({len(result.drifted)} of {len(result.features)} "
                     f"features drift)")
    output.out.print(f"report: {report}")
