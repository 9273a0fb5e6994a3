"""`dlforge update`: continue training a registered model on fresh data (with replay), as a new
version that serves only once it passes the gate; `--watch DIR` folds new files in batches."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from dlforge.cli import output
from dlforge.cli.lifecycle_cmds import show_gate
from dlforge.cli.registry_cmds import open_store
from dlforge.errors import clipped


def update_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The model to update: NAME@ALIAS (the alias the gate "
                                              "guards) or NAME@VERSION.")],
    data: Annotated[Path | None, typer.Option(
        "--data", "-d", help="Fresh data: a run config (YAML) or a path read like the model's "
                             "data (image folder, .csv, .npz).")] = None,
    watch: Annotated[Path | None, typer.Option(
        help="Fold in new files of this folder as they arrive (image files in class "
             "subfolders, or .csv files), a batch at a time, until SIGINT/SIGTERM.")] = None,
    require: Annotated[list[str], typer.Option(
        help="A gate condition (repeatable); default the config's evaluate.gate.")] = [],  # noqa: B006
    set_: Annotated[list[str], typer.Option("--set", "-s", help="Override a key of the update's "
                                            "config, e.g. update.replay_ratio=0.3 (repeatable).")] = [],  # noqa: B006
    max_batches: Annotated[int | None, typer.Option(help="--watch: stop after this many batches.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="--watch: fold in again the files of batches "
                                               "that failed (listed apart in the state).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output: no training "
                                        "progress, and with --watch no line per batch.")] = False,
) -> None:
    """Train a new version of MODEL on fresh data mixed with its replay buffer, then put it
    through the gate (with the forgetting check); the alias moves only when it passes, else
    the version stays registered, not serving, and the command exits 1 with the table.

    With --watch it exits 1, as a refused update does, when no batch it processed passed the
    gate (every one refused or failed; see the state file); 0 when one did or none came.

    Example: dlforge update digits@staging --data new_digits.npz
    """
    from dlforge.lifecycle.data_once import reading_once

    if (data is None) == (watch is None):
        raise typer.BadParameter("give exactly one of --data and --watch", param_hint="--data")
    with reading_once():  # each data set (the fresh one, the source's ...) is read once
        if watch is not None:
            _watch(ctx, model, watch, list(require), list(set_), max_batches, retry_failed, quiet)
            return
        result, line = _update_once(ctx, model, data, list(require), list(set_), quiet)
    output.out.print(line)
    show_gate(result, refused="update refused")


def _update_once(ctx: typer.Context, ref: str, data: Path, require: list[str],
                 overrides: list[str], quiet: bool):
    """One update: config, run (train, evaluate, register), gate. Returns (gate result, a
    line on what the new version trained on)."""
    from dlforge.lifecycle.promote import promote
    from dlforge.lifecycle.update import update_config
    from dlforge.pipeline import run as run_pipeline
    from dlforge.registry.bundle_checks import read_json

    with open_store(ctx) as store:
        cfg = update_config(store, ref, data, conditions=require, overrides=overrides)
    run = run_pipeline(cfg, workspace=ctx.find_root().obj["workspace"], progress=not quiet,
                       store_url=ctx.find_root().obj["store_url"])
    for warning in run.warnings:
        output.err.print(f"warning: {warning}")
    record = read_json(run.bundle_path / "meta.json")["trained_on"]["update"]
    line = (f"update: {run.model_ref} from {record['source']}: {record['fresh']} new + "
            f"{record['replayed']} replayed samples (replay share {record['replay_share']:.2f}), "
            f"test {run.headline[0][0]} {run.headline[0][1]:.4f}")
    with open_store(ctx) as store:
        name, version = run.model_ref.split("@")
        return promote(store, name, int(version), alias=cfg.evaluate.gate.alias), line


def _watch(ctx: typer.Context, ref: str, directory: Path, require: list[str],
           overrides: list[str], max_batches: int | None, retry_failed: bool, quiet: bool) -> None:
    from dlforge.config import load_config
    from dlforge.config.lifecycle_schema import check_conditions
    from dlforge.lifecycle.update import base_config, check_source_kind
    from dlforge.lifecycle.watch import IMAGES, ROWS, StopFlag, WatchState, watch
    from dlforge.registry.bundle_checks import read_json
    from dlforge.workspace import resolve_workspace

    try:
        folder = directory.is_dir()
    except OSError as exc:  # a name too long for the file system: the same option, exit 2
        raise typer.BadParameter(f"{clipped(str(directory), 120)!r} cannot be looked up "
                                 f"({exc.strerror or type(exc).__name__})", param_hint="--watch") from None
    if not folder:
        raise typer.BadParameter(f"{str(directory)!r} is not a folder", param_hint="--watch")
    check_conditions(require)  # a typo fails now, not at the first batch
    with open_store(ctx) as store:
        source = store.resolve(ref)
        check_source_kind(source)  # before watching: each batch would be refused
        base = base_config(store, source)  # the settings `update_config` uses
    modality = read_json(Path(source.bundle_path) / "model.json")["input"]["modality"]
    kind = IMAGES if modality == "image" else ROWS
    cfg = load_config(base, overrides).update.watch
    key = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]
    home = resolve_workspace(ctx.find_root().obj["workspace"]) / "updates" / source.name / key
    state = WatchState.load(home / "state.json")
    if retry_failed:
        output.out.print(f"retrying {len(state.retry_failed())} files of failed batches")
    elif state.failed:
        output.err.print(f"warning: {sum(len(b['files']) for b in state.failed)} files of "
                         f"{len(state.failed)} failed batches are not retried; --retry-failed does")

    refused: list[str] = []  # this watch's batches the gate refused

    def fold(path: Path) -> str:
        result, line = _update_once(ctx, ref, path, require, overrides, quiet=True)
        verdict = (f"promoted to {result.alias}" if result.passed
                   else f"refused ({result.failures()})")
        if not result.passed:
            refused.append(verdict)
        return f"{line.removeprefix('update: ')}; {verdict}"

    echo = (lambda line: None) if quiet else output.out.print
    echo(f"watching {directory} for new {'images' if kind == IMAGES else 'CSV files'} "
         f"({len(state.batches)} batches folded in before); Ctrl-C stops after the batch")
    failed_before = len(state.failed)
    with StopFlag().catching() as stop:
        done = watch(directory, kind, fold, cfg, state=state, batches=home, stop=stop,
                     echo=echo, max_batches=max_batches)
    _watch_summary(done, state.failed[failed_before:], refused, state.path)


def _watch_summary(done: int, failed: list[dict], refused: list[str], path: Path) -> None:
    """The watch's last line; when no batch it processed passed the gate (each failed or was
    refused), an error and exit 1, as a single refused update exits."""
    counts = [f"{len(failed)} failed"] * bool(failed) + [f"{len(refused)} refused"] * bool(refused)
    counted = f" ({', '.join(counts)})" if counts else ""
    output.out.print(f"stopped after {done} batches{counted}; state in {path}")
    if done and len(failed) == done:
        last = failed[-1]["outcome"].removeprefix("error: ")
        output.err.print(f"error: update --watch: every batch failed ({done} of {done}; the last: "
                         f"{last}); fix or remove their files, then fold them in again with "
                         f"--retry-failed")
        raise typer.Exit(1)
    if done and len(failed) + len(refused) == done:
        output.err.print(f"error: update --watch: no batch passed the gate ({', '.join(counts)} "
                         f"of {done}; the last {refused[-1]}); the alias did not move")
        raise typer.Exit(1)


def register_update(app: typer.Typer) -> None:
    """Add `dlforge update` to the application."""
    app.command("update")(update_command)
