"""Cross-field rules of a whole run config: checked when the config is validated, so that a
config that loads is a config that runs and `dlforge config check` reports every problem.

Rules that need the data (a monitor the task does not log, a warm-up longer than the run's
steps) are checked by the pipeline's preflight, before any run is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlforge.config.gan_rules import gan_problems
from dlforge.config.model_schema import GAN_TYPE
from dlforge.config.parallel_schema import parallel_problems
from dlforge.config.streaming_rules import streaming_problems
from dlforge.config.tunable import LADDER_WIDTHS, grid_problems, space_problems

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig

UNION = "train+validation"
TUNE_METRICS = ("val_loss", "val_accuracy", "val_mae")
ANOMALY_OBJECTIVES = ("false_alarm_rate", "percentile")


def run_problems(cfg: RunConfig) -> list[str]:
    """Every cross-field problem of `cfg`, one line each (empty when it runs)."""
    problems = anomaly_problems(cfg) if is_anomaly(cfg) else _not_anomaly_problems(cfg)
    if cfg.tune is not None and cfg.model.type != GAN_TYPE:  # a GAN refuses tune (gan_rules)
        problems += _tune_problems(cfg)
    if cfg.transfer.source is not None and cfg.tune is not None:
        problems.append("tune: a model trained from transfer.source keeps the source's "
                        "architecture, so there is nothing to search; remove the tune section")
    problems += _update_problems(cfg)
    gate = cfg.evaluate.gate
    if gate is not None and cfg.registry.alias == gate.alias:
        problems.append(f"registry.alias: {gate.alias!r} is the alias evaluate.gate guards; a "
                        f"run moves it only through the gate. Remove registry.alias or set "
                        f"another (e.g. staging)")
    return problems + gan_problems(cfg) + parallel_problems(cfg) + streaming_problems(cfg)


def _update_problems(cfg: RunConfig) -> list[str]:
    """An update (`update.source`) continues one model: no search, no second source."""
    if cfg.update.source is None:
        return []
    problems = []
    if cfg.tune is not None:
        problems.append("tune: an update keeps the source's architecture, so there is nothing "
                        "to search; remove the tune section")
    if cfg.transfer.source is not None:
        problems.append(f"transfer.source: an update continues {cfg.update.source}; it cannot "
                        f"also start from {cfg.transfer.source}. Remove transfer.source")
    return problems


def is_anomaly(cfg: RunConfig) -> bool:
    """An anomaly-detection run: `data.task: anomaly`, or inferred from `data.normal_classes`.

    Example:
        >>> from dlforge.config import load_config
        >>> is_anomaly(load_config({"data": {"name": "breast_cancer", "normal_classes": ["benign"]},
        ...                         "model": {"type": "autoencoder"},
        ...                         "evaluate": {"threshold": {"objective": "percentile", "value": 95}}}))
        True
    """
    return cfg.data.task == "anomaly" or (cfg.data.task is None and bool(cfg.data.normal_classes))


def anomaly_problems(cfg: RunConfig) -> list[str]:
    """What an anomaly-detection run needs: normal classes, an autoencoder, a threshold
    calibrated on normal samples, none of the keys that build a classification task."""
    data, problems = cfg.data, []
    if not data.normal_classes:
        problems.append("data.normal_classes: data.task anomaly needs the classes that are "
                        "normal (got none), e.g. [T-shirt/top]")
    if data.anomaly_classes == []:
        problems.append(no_anomaly_named(data.normal_classes))
    both = sorted(set(data.normal_classes or ()) & set(data.anomaly_classes or ()))
    if both:
        problems.append(f"data.anomaly_classes: {both} are also in data.normal_classes; a class "
                        f"is normal or an anomaly, not both")
    for key in ("classes", "binary_from", "positive_fraction", "positive_class"):
        if getattr(data, key) is not None:
            problems.append(f"data.{key}: builds a classification task; an anomaly task takes "
                            f"data.normal_classes and data.anomaly_classes instead. Remove it")
    if cfg.model.type != "autoencoder":
        problems.append(f"model.type: an anomaly task trains an autoencoder on normal samples "
                        f"(got {cfg.model.type!r}); use model: {{type: autoencoder}}")
    if cfg.evaluate.threshold.objective not in ANOMALY_OBJECTIVES:
        problems.append(f"evaluate.threshold.objective: an anomaly threshold is calibrated on "
                        f"normal validation samples: use {' or '.join(ANOMALY_OBJECTIVES)}, "
                        f"e.g. {{objective: false_alarm_rate, value: 0.01}} (got "
                        f"{cfg.evaluate.threshold.objective!r})")
    if cfg.balance.method != "none":
        problems.append(f"balance.method: an anomaly task trains on normal samples only, there "
                        f"is nothing to balance (got {cfg.balance.method!r}); remove it")
    if cfg.tune is not None:
        problems.append("tune: searching an anomaly task is not supported yet; remove the tune "
                        "section")
    return problems


def no_anomaly_named(normal: list[str] | None) -> str:
    """The line for ``data.anomaly_classes: []`` in an anomaly task: one line for either fix,
    naming the normal classes, since the config alone cannot tell whether they are every
    class (then some must move out of them too). Outside an anomaly task ``[]`` names no
    class, as leaving the key out does, and is accepted.

    Example:
        >>> no_anomaly_named(["benign"])
        "data.anomaly_classes: [] names no class, which leaves no anomaly to test on; name the anomalous classes (classes data.normal_classes ['benign'] leaves out), or leave data.anomaly_classes out to make every class data.normal_classes leaves out an anomaly"
    """
    listed = f" {normal}" if normal else ""
    return (f"data.anomaly_classes: [] names no class, which leaves no anomaly to test on; "
            f"name the anomalous classes (classes data.normal_classes{listed} leaves out), or "
            f"leave data.anomaly_classes out to make every class data.normal_classes leaves "
            f"out an anomaly")


def _not_anomaly_problems(cfg: RunConfig) -> list[str]:
    if cfg.data.normal_classes:  # the rest would follow from this one conflict
        return [f"data.normal_classes: makes an anomaly task, but data.task is "
                f"{cfg.data.task!r}; remove one of them"]
    problems = []
    if cfg.data.anomaly_classes:
        problems.append("data.anomaly_classes: needs data.normal_classes (an anomaly task)")
    if cfg.model.type == "autoencoder":
        problems.append("model.type: autoencoder reconstructs its input, for anomaly detection "
                        "only (data.normal_classes); choose a classifier or regressor such as "
                        "mlp or basic_cnn")
    if cfg.evaluate.threshold.objective in ANOMALY_OBJECTIVES:
        problems.append(f"evaluate.threshold.objective: {cfg.evaluate.threshold.objective} "
                        f"calibrates an anomaly threshold (data.normal_classes); a classifier "
                        f"takes max_f1, min_recall, min_precision or fixed")
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
