"""What the run pages show, taken from stored records: headline metric, curves, config
differences, and a running run's progress (read from the file its training rewrites)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from dlforge.train.progress_file import PROGRESS_FILE
from dlforge.ui.charts import Series, line_chart

TRIAL_KEYS = ("trial", "tune_state", "params", "best_epoch", "epochs_trained", "threshold",
              "val_headline", "trained_on")
# The charted history keys, each with its `val_` twin: a supervised run's loss and metric,
# an anomaly autoencoder's loss and mae, a GAN's two losses and its validation-only Frechet
# distance (train/gan_step.py `VALIDATED`).
CURVES = ("loss", "d_loss", "g_loss", "accuracy", "mae", "frechet")


def headline(metrics: dict[str, Any]) -> tuple[str, Any] | None:
    """The run's first test headline metric, or a trial's validation metric."""
    pairs = metrics.get("headline")
    if pairs:
        return pairs[0][0], pairs[0][1]
    for key, value in metrics.items():
        if key not in TRIAL_KEYS and isinstance(value, (int, float)):
            return key, value
    return None


def headline_test_metrics(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """The headline test metrics, in their order (named so that pytest, collecting this
    module's doctests, does not take it for a test).

    Example:
        >>> headline_test_metrics({"headline": [["accuracy", 0.9], ["macro_f1", 0.8]]})
        [('accuracy', 0.9), ('macro_f1', 0.8)]
    """
    return [(name, value) for name, value in metrics.get("headline") or []]


def precision(metrics: dict[str, Any]) -> str:
    return str((metrics.get("model") or {}).get("training_precision") or "")


def curve_charts(runs: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> list[Markup]:
    """Loss, metric and learning-rate charts; one line per run and split, shared axes.

    Example:
        >>> gan = [{"epoch": 0, "d_loss": 1.2, "g_loss": 0.9, "val_d_loss": 1.0,
        ...         "val_g_loss": 1.1, "val_frechet": 0.2, "lr": 5e-4}]
        >>> [str(chart).split('aria-label="')[1].split('"')[0] for chart in curve_charts([("gan", gan)])]
        ['d_loss', 'g_loss', 'frechet', 'learning rate']
    """
    charts = []
    for base in CURVES:
        series = []
        for i, (label, history) in enumerate(runs):
            for key, dashed in ((base, False), (f"val_{base}", True)):
                if any(key in row for row in history):
                    series.append(Series(f"{label} {key}" if len(runs) > 1 else key,
                                         _column(history, key), dashed=dashed,
                                         colour=i if len(runs) > 1 else None))
        if series:
            charts.append(line_chart(base, series, x_label="epoch", y_label=base))
    lr = [Series(label if len(runs) > 1 else "lr", _column(history, "lr"))
          for label, history in runs if any("lr" in row for row in history)]
    if lr:
        charts.append(line_chart("learning rate", lr, x_label="epoch", y_label="lr"))
    return charts


def history_columns(history: Sequence[dict[str, Any]]) -> list[str]:
    """The keys of every row, in first-seen order: the history table's columns (the first row
    may lack the `val_` keys when `train.val_every` > 1).

    Example:
        >>> history_columns([{"epoch": 0, "loss": 0.9}, {"epoch": 1, "loss": 0.5, "val_loss": 0.6}])
        ['epoch', 'loss', 'val_loss']
    """
    return list(dict.fromkeys(key for row in history for key in row))


def _column(history: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float | None]]:
    """(epoch from 1, value) of the rows that log `key`: an epoch without validation
    (`train.val_every`) is left out, so the validation line joins the validated epochs; a
    logged non-finite value (None in a stored history) stays, as a gap."""
    return [(row.get("epoch", i) + 1, row[key]) for i, row in enumerate(history) if key in row]


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config as dotted keys: ``{"train.lr": 0.001, ...}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(configs: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The dotted keys whose values differ between `configs`, each with every config's value."""
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    rows = [(k, [f.get(k) for f in flat]) for k in keys]
    return [(k, values) for k, values in rows
            if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1]


@dataclass(frozen=True)
class Progress:
    """A running run's epochs so far (from its progress file) and an estimate of the rest."""

    history: list[dict[str, Any]]
    epochs: int | None

    @property
    def done(self) -> int:
        return len(self.history)

    @property
    def eta_s(self) -> float | None:
        """Mean epoch time times the epochs left (an upper bound: early stopping may end sooner)."""
        times = [r["epoch_time_s"] for r in self.history
                 if isinstance(r.get("epoch_time_s"), (int, float))]
        if not times or self.epochs is None:
            return None
        return sum(times) / len(times) * max(self.epochs - self.done, 0)


def read_progress(artifacts_dir: Path, run_id: str) -> Progress:
    """The progress file of run `run_id`; empty when training has not written it yet."""
    path = artifacts_dir / "runs" / run_id / PROGRESS_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Progress([], None)
    return Progress(list(record.get("history") or []), record.get("epochs"))
