"""The search's figures for the run report, as PNG: trial table, optimization history,
parameter importances (Optuna's default evaluator) and one slice plot per parameter; for a
capacity ladder, its metric and generalization gap per size.

Drawn on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot (as the report's
own plots are), so no global figure registry fills up.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

from dlforge.errors import clipped
from dlforge.report.plots import new_figure, to_png
from dlforge.tune.results import SearchOutcome

STATE_COLORS = {"complete": "#1f77b4", "pruned": "#ff7f0e", "failed": "#d62728", "running": "#888888"}
MAX_TABLE_ROWS = 40


def outcome_plots(result: SearchOutcome) -> list[tuple[str, bytes]]:
    """(title, PNG) of a search's or a capacity ladder's figures, for the run report."""
    if result.is_ladder:
        return [(f"Capacity ladder: {result.metric} and generalization gap per size", ladder_png(result))]
    return search_plots(result)


def search_plots(result: SearchOutcome) -> list[tuple[str, bytes]]:
    """(title, PNG) of every figure the search's trials allow; importances need two or more
    complete trials with varied values and are left out otherwise."""
    plots = [(f"Search trials ({result.study_name})", trial_table_png(result)),
             (f"Optimization history: {result.metric} per trial", history_png(result))]
    importances = param_importances(result)
    if importances:
        plots.append(("Parameter importances (Optuna's default evaluator)", importances_png(importances)))
    if any(t.value is not None for t in result.trials) and result.trials[0].params:
        plots.append((f"Slice plot: {result.metric} against each parameter", slice_png(result)))
    return plots


def ladder_png(result: SearchOutcome) -> bytes:
    """The capacity ladder: the validation metric and the generalization gap per rung size."""
    fig = new_figure(7, 3)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    params = [r["params"] for r in result.rungs]
    left.plot(params, [r["value"] for r in result.rungs], marker="o", color="#d62728")
    left.set_ylabel(result.metric)
    right.plot(params, [r["gap"] for r in result.rungs], marker="o", color="#1f77b4")
    right.set_ylabel("val_loss - loss (best epoch)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
    if result.best is not None:
        best = result.rungs[result.best.number]
        left.scatter([best["params"]], [best["value"]], s=90, facecolors="none",
                     edgecolors="black", label="chosen")
        left.legend(fontsize=8)
    return to_png(fig)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return json.dumps(value)
    return clipped(str(value))


def trial_table_png(result: SearchOutcome) -> bytes:
    """The trial table (best first, at most 40 rows) as an image."""
    columns, rows = result.table()
    value_at = columns.index(result.metric)
    sign = -1 if result.direction == "maximize" else 1

    def rank(row: list[Any]) -> tuple[bool, float]:
        value = row[value_at]
        return value is None, sign * value if value is not None else 0.0

    rows = sorted(rows, key=rank)[:MAX_TABLE_ROWS]
    fig = new_figure(min(2 + 1.1 * len(columns), 12), 0.4 + 0.25 * (len(rows) + 1))
    ax = fig.add_subplot()
    ax.axis("off")
    table = ax.table(cellText=[[_cell(v) for v in r] for r in rows] or [["-"] * len(columns)],
                     colLabels=columns, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(columns))))
    return to_png(fig)


def history_png(result: SearchOutcome) -> bytes:
    """Each trial's value (pruned trials at their last report) and the best so far."""
    fig = new_figure(6, 3.2)
    ax = fig.add_subplot()
    for state, color in STATE_COLORS.items():
        pts = [(t.number, t.value) for t in result.trials if t.state == state and t.value is not None]
        if pts:
            ax.scatter(*zip(*pts, strict=True), color=color, label=state, s=18)
    best, line = None, []
    pick = max if result.direction == "maximize" else min
    for t in sorted(result.trials, key=lambda t: t.number):
        if t.state == "complete" and t.value is not None:
            best = t.value if best is None else pick(best, t.value)
        line.append((t.number, best if best is not None else math.nan))
    if line:
        ax.plot(*zip(*line, strict=True), color="#2a9d8f", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(result.metric)
    ax.legend(fontsize=8)
    return to_png(fig)


def param_importances(result: SearchOutcome) -> dict[str, float]:
    """Optuna's parameter importances, or {} when too few complete trials vary."""
    import optuna

    complete = [t for t in result.trials if t.state == "complete"]
    if result.study is None or len(complete) < 2:
        return {}
    try:
        with warnings.catch_warnings():  # "importances will be equal" when trials tie: shown as is
            warnings.simplefilter("ignore", UserWarning)
            return dict(optuna.importance.get_param_importances(result.study))
    except (ValueError, RuntimeError):  # e.g. every complete trial has the same values
        return {}


def importances_png(importances: dict[str, float]) -> bytes:
    """Horizontal bars, most important parameter on top."""
    names = list(importances)[::-1]
    fig = new_figure(6, 0.8 + 0.35 * len(names))
    ax = fig.add_subplot()
    ax.barh(names, [importances[n] for n in names], color="#1f77b4")
    ax.set_xlabel("importance (share of the variance of the objective)")
    return to_png(fig)


def slice_png(result: SearchOutcome) -> bytes:
    """The objective against each parameter, one panel per parameter, coloured by state."""
    keys = sorted({k for t in result.trials for k in t.params})
    fig = new_figure(min(3 * len(keys), 15), 3)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        for state, color in STATE_COLORS.items():
            pts = [(_axis_value(t.params.get(key)), t.value) for t in result.trials
                   if t.state == state and t.value is not None and key in t.params]
            if pts:
                ax.scatter(*zip(*pts, strict=True), color=color, s=14, label=state)
        ax.set_xlabel(key, fontsize=8)
        if _is_log(result, key):
            ax.set_xscale("log")
        if i == 0:
            ax.set_ylabel(result.metric)
    return to_png(fig)


def _axis_value(value: Any) -> Any:
    # categorical values (names, bools, lists) become category labels on the axis
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else _cell(value)


def _is_log(result: SearchOutcome, key: str) -> bool:
    if result.study is None:
        return False
    for t in result.study.get_trials(deepcopy=False):
        dist = t.distributions.get(key)
        if dist is not None:
            return bool(getattr(dist, "log", False))
    return False
