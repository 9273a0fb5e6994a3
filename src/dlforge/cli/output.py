"""Console output shared by the commands: results to stdout, progress and notes to stderr."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# markup off: names, paths and values users chose (a class `[bold]`, a path with `[x]`)
# print as they are; styling is given by `Text` styles, never by markup in a string
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def check_file_target(path: Path, option: str, example: str) -> None:
    """Refuse a file to write that cannot be one: a directory, a path under a file, or one the
    system cannot look up. Checked before the work, not when its result is moved into place at
    the end.

    Raises:
        ConfigError: one line naming `option`, the path and, as the fix, `example`.

    Example:
        >>> check_file_target(Path("out.csv"), "--output", "predictions.csv")  # doctest: +SKIP
    """
    from dlforge.atomic import first_existing
    from dlforge.errors import ConfigError

    blocker = first_existing(path, option, f"give the path of a file to write, such as {example}")
    if blocker is not None and (blocker.is_dir() if blocker == path else not blocker.is_dir()):
        what = "is a directory" if blocker == path else f"lies under {str(blocker)!r}, a file"
        raise ConfigError(f"{option}: {str(path)!r} {what}; give the path of a file to write, "
                          f"such as {example}")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as a table (plain text when stdout is not a terminal).

    Cells are literal text, not rich markup: metric names like ``recall[spam]`` keep their brackets.
    """
    t = Table(title=title, show_edge=False, header_style="bold", box=None, pad_edge=False)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(Text(fmt(v)) for v in row))
    out.print(t)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def print_json(obj: Any) -> None:
    out.print_json(json.dumps(obj, default=str)) if out.is_terminal else print(
        json.dumps(obj, indent=2, default=str))


def run_summary(result: Any) -> None:
    """A finished run (`pipeline.RunResult`): test metrics beside the baseline's, the
    diagnosis with its first advice, and where the model and the report are."""
    for warning in result.warnings:
        err.print(f"warning: {warning}")
    out.print(Text.assemble((f"run {result.run_id}", "bold"), f" ({result.name}) finished"))
    baseline = result.baseline_headline  # empty without one (evaluate.baseline off, a GAN)
    table("test metrics", ["metric", "deep model", *(["baseline"] if baseline else [])],
          [(name, value, *([baseline.get(name)] if baseline else [])) for name, value in result.headline])
    if result.diagnosis:  # a GAN run has none
        out.print(f"diagnosis: {result.diagnosis['verdict']}")
        for advice in result.diagnosis.get("advice", [])[:3]:
            out.print(f"  - {advice}")
    if result.model_ref:
        out.print(f"model:  {result.model_ref}  ({result.bundle_path})")
    if result.promotion is not None:
        out.print(f"gate:   {_gate_line(result.promotion)}")
    out.print(f"report: {result.report_path}")


def _gate_line(promotion: dict[str, Any]) -> str:
    """One line on what the gate decided after a run."""
    if "error" in promotion:
        return f"not promoted: {promotion['error']}"
    failed = [c["condition"] for c in promotion["checks"] if c["status"] == "failed"]
    if failed:
        return f"not promoted to {promotion['alias']}: failed {'; '.join(failed)}"
    return f"promoted to {promotion['alias']}"
