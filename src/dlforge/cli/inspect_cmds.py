"""`dlforge config ...` and `dlforge data inspect`: look at configs and data before training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from dlforge.cli import output

config_app = typer.Typer(help="Print the config schema or check a config file.", no_args_is_help=True)
data_app = typer.Typer(help="Look at a data set before training on it.", no_args_is_help=True)
SetOpt = Annotated[list[str], typer.Option("--set", "-s", help="Override a key: --set data.limit=500.")]


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON schema of run configs (every key, default and bound)."""
    from dlforge.config import RunConfig

    print(json.dumps(RunConfig.model_json_schema(), indent=2))


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="Run config (YAML).")],
    set_: SetOpt = [],  # noqa: B006
) -> None:
    """Validate FILE and print the resolved config, defaults filled in."""
    from dlforge.config import load_config

    cfg = load_config(file, set_)
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), end="")
    output.err.print(f"{file}: ok")


@data_app.command("inspect")
def data_inspect(
    config: Annotated[Path, typer.Argument(help="Run config (YAML) whose data section to inspect.")],
    set_: SetOpt = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Load, split and validate the data of CONFIG; print the validation report."""
    from dlforge.config import load_config
    from dlforge.data.prepare import load_and_split

    cfg = load_config(config, set_)
    _, _, report = load_and_split(cfg)
    if as_json:
        output.print_json(report.to_dict())
        return
    output.table("data validation", ["section", "item", "value"], report.rows())
    for warning in report.warnings:
        output.err.print(f"warning: {warning}")
