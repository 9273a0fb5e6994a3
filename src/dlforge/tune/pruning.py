"""Pruning inside the one fit loop: a callback reports the validation metric every epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlforge.errors import ConfigError
from dlforge.train.callbacks import Callback, monitor_not_logged

if TYPE_CHECKING:
    import optuna

    from dlforge.train.state import LoopState


class PruningCallback(Callback):
    """Report `metric` to an Optuna trial after every epoch; raise `optuna.TrialPruned` when the
    study's pruner says the trial cannot beat the others.

    Args:
        trial: the running Optuna trial.
        metric: a validation history key, e.g. `val_loss` or `val_accuracy`.

    Raises:
        optuna.TrialPruned: with the reason, e.g. ``pruned after epoch 2: val_loss 0.91``.
        ConfigError: `metric` is not logged by `fit`.

    Example:
        >>> fit(model, loaders, cfg.train, task, callbacks=[PruningCallback(trial, "val_loss")])  # doctest: +SKIP
    """

    def __init__(self, trial: optuna.trial.Trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.history: list[dict[str, float]] = []  # kept here: a pruned fit returns nothing

    def on_fit_start(self, state: LoopState | Any) -> None:
        self.history = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState | Any) -> None:
        import optuna

        if self.metric not in logs:
            raise ConfigError(monitor_not_logged("tune.metric", self.metric, logs))
        self.history.append(dict(logs))
        value = float(logs[self.metric])
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned after epoch {epoch + 1}: {self.metric} {value:.4g} was worse than the "
                f"pruner's bar at that epoch"
            )

    def _key_args(self) -> dict[str, Any]:
        return {"metric": self.metric}
