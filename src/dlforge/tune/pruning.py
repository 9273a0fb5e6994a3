"""Pruning inside the one fit loop: a callback reports the validation metric each validated
epoch (every epoch unless `train.val_every` spaces validations out; Optuna's step is the epoch).

Reporting writes one row to the study every validated epoch (the issue asks for it). Asking
Optuna's `trial.should_prune()` also re-reads the running trial from the database with all its
relations every epoch (7 queries, about 15 ms on SQLite, measured in RESULTS.md), although
the median rule needs only what this process already holds: the trial's own reported values
and the trials that were complete when it started. For the median pruner the callback
therefore asks the pruner itself, on a snapshot of the complete trials taken at the trial's
first check; other pruners (Hyperband keeps brackets in the study) go through Optuna as is.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from dlforge.errors import ConfigError
from dlforge.train.callbacks import Callback
from dlforge.train.monitor import monitor_not_logged, not_validated

if TYPE_CHECKING:
    import optuna

    from dlforge.train.state import LoopState


class PruningCallback(Callback):
    """Report `metric` to an Optuna trial after every validated epoch; raise
    `optuna.TrialPruned` when the study's pruner says the trial cannot beat the others.

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
        self._reported: dict[int, float] = {}
        self._snapshot: CompleteTrials | None = None

    def on_fit_start(self, state: LoopState | Any) -> None:
        self.history, self._reported, self._snapshot = [], {}, None

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState | Any) -> None:
        import optuna

        validated = not not_validated(self.metric, logs, state)
        if validated and self.metric not in logs:
            raise ConfigError(monitor_not_logged("tune.metric", self.metric, logs))
        self.history.append(dict(logs))
        if not validated:
            return
        value = float(logs[self.metric])
        self.trial.report(value, step=epoch)
        self._reported[epoch] = value
        if self._should_prune():
            raise optuna.TrialPruned(
                f"pruned after epoch {epoch + 1}: {self.metric} {value:.4g} was worse than the "
                f"pruner's bar at that epoch"
            )

    def _should_prune(self) -> bool:
        import optuna

        study = getattr(self.trial, "study", None)
        if not isinstance(getattr(study, "pruner", None), optuna.pruners.PercentilePruner):
            return self.trial.should_prune()
        if self._snapshot is None:
            self._snapshot = CompleteTrials(study)
        return study.pruner.prune(self._snapshot, running_trial(self.trial, self._reported))

    def _key_args(self) -> dict[str, Any]:
        return {"metric": self.metric}


class CompleteTrials:
    """What a percentile (median) pruner reads of a study: its direction and its complete
    trials, read once. Trials completed by other workers later are seen from the next trial on,
    so pruning is at most slightly less eager across workers and unchanged in one process."""

    def __init__(self, study: optuna.Study) -> None:
        from optuna.trial import TrialState

        self.direction = study.direction
        self.directions = study.directions
        self._complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def get_trials(self, deepcopy: bool = False, states: Any = None) -> list[optuna.trial.FrozenTrial]:
        """The snapshot's trials (all complete), filtered by `states` as Optuna's study does."""
        return [t for t in self._complete if states is None or t.state in states]


def running_trial(trial: optuna.trial.Trial, reported: dict[int, float]) -> optuna.trial.FrozenTrial:
    """The running trial as a pruner sees it: its number and every value reported so far."""
    from optuna.trial import FrozenTrial, TrialState

    return FrozenTrial(number=trial.number, state=TrialState.RUNNING, value=None,
                       datetime_start=datetime.datetime.now(), datetime_complete=None, params={},
                       distributions={}, user_attrs={}, system_attrs={},
                       intermediate_values=dict(reported),
                       trial_id=-1)  # percentile pruners never look the trial up by id
