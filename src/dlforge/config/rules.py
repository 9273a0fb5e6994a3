"""Cross-field rules of a whole run config: checked when the config is validated, so that a
config that loads is a config that runs and `dlforge config check` reports every problem.

Rules that need the data (a monitor the task does not log, a warm-up longer than the run's
steps) are checked by the pipeline's preflight, before any run is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlforge.config.tunable import LADDER_WIDTHS, grid_problems, space_problems

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig

UNION = "train+validation"
TUNE_METRICS = ("val_loss", "val_accuracy", "val_mae")


def run_problems(cfg: RunConfig) -> list[str]:
    """Every cross-field problem of `cfg`, one line each (empty when it runs)."""
    problems = []
    if cfg.model.type == "autoencoder":
        problems.append("model.type: autoencoder reconstructs its input (anomaly detection), which "
                        "`dlforge run` does not do yet; choose a classifier or regressor such as "
                        "mlp or basic_cnn")
    if cfg.tune is not None:
        problems += _tune_problems(cfg)
    return problems


def _tune_problems(cfg: RunConfig) -> list[str]:
    tune = cfg.tune
    problems = []
    # `model: auto` always picks a model the ladder can grow (config/auto.py)
    if tune.strategy == "capacity_ladder" and cfg.model.type not in (*LADDER_WIDTHS, "auto"):
        problems.append(f"tune.strategy: capacity_ladder grows a model's widths; model.type "
                        f"{cfg.model.type!r} has none. Use one of {', '.join(LADDER_WIDTHS)}")
    if tune.metric not in TUNE_METRICS:
        problems.append(f"tune.metric: the search optimizes a validation metric: "
                        f"{', '.join(TUNE_METRICS)} (got {tune.metric!r})")
    problems += space_problems(cfg) + grid_problems(cfg)
    schedule = cfg.train.schedule
    monitor = getattr(schedule, "monitor", None)
    if tune.retrain_on == UNION and schedule.type == "plateau" and monitor.startswith("val_"):
        problems.append(f"train.schedule.monitor: the plateau schedule watches {monitor!r}, which "
                        f"a model retrained on train+validation cannot measure; watch "
                        f"{monitor.removeprefix('val_')!r} or use tune.retrain_on: train")
    return problems
