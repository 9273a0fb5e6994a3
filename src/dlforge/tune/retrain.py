"""Retraining the best trial on train + validation (`tune.retrain_on: train+validation`).

After a search the best config is normally retrained exactly as its trial ran: on the train
split, validated and early-stopped on the validation split. With `train+validation` the
validation split joins the training data, so everything that needed it is decided by the best
trial instead, explicitly:

- epochs: the best trial's best epoch count (early stopping's best epoch + 1; all the epochs it
  trained when it had no early stopping), cut from the trial's own schedule: `train.epochs` is
  kept, so the learning rate follows the trial's trajectory (a cosine or one-cycle horizon is
  the trial's), and `StopAfterEpochs` ends training; early stopping is off;
- the decision threshold (binary, multilabel): the one the best trial's model chose on the
  validation split, kept unchanged;
- checkpoints: ranked by the training counterpart of a validation monitor; `train.val_every`
  is set to 1 (there is no validation to space out, and a checkpoint watching a training
  metric needs it);
- preprocessing: fitted again on train + validation (never on test);
- a plateau schedule on a validation metric cannot run and is refused before the search.

The test split is still evaluated once, at the end. Every choice is recorded in the run
(`metrics.retrained`), in the report and in the registered version's lineage (`trained_on`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dlforge.candidate import Candidate, TrainingPlan, ValidationScores
from dlforge.candidate.validation import diagnose_history
from dlforge.config.load import load_config
from dlforge.config.rules import UNION
from dlforge.config.schema import RunConfig
from dlforge.data.prepare import PreparedData
from dlforge.errors import DlforgeError
from dlforge.evaluate.threshold import Threshold
from dlforge.train.callbacks import Callback

if TYPE_CHECKING:
    from dlforge.registry import Store
    from dlforge.train.state import LoopState
    from dlforge.tune.results import SearchOutcome


def trial_record(candidate: Candidate) -> dict[str, Any]:
    """What a finished trial keeps for retraining: its best epoch and the epochs it trained;
    with `retrain_on: train+validation` also the threshold its model chose on the validation
    split and its validation headline, which the retrained model can no longer measure."""
    record = {"best_epoch": candidate.best_epoch, "epochs_trained": len(candidate.history)}
    tune = candidate.config.tune
    if tune is None or tune.retrain_on != UNION:
        return record
    scores = candidate.validation
    return record | {"threshold": scores.threshold.to_dict() if scores.threshold else None,
                     "val_headline": scores.headline}


@dataclass(frozen=True)
class Retraining:
    """How the best config is retrained on train + validation, and why each choice was made.

    Attributes:
        config: the best config with its `train.epochs` (the schedule's horizon) kept, early
            stopping off and checkpoints ranked without validation.
        source: the best trial (`trial 3`) or rung (`rung 2`); `run_id` is its run.
        epochs: epochs to train (`callbacks()` stops there); `best_epoch` the trial's
            early-stopping best epoch (from 0), `restored_epoch` the same when its early
            stopping restored that epoch's weights.
        threshold: the decision threshold chosen by the trial on validation, or None.
        val_headline: the trial's validation metrics, shown beside the test ones.
        trial_history: the trial's learning curves (train and validation), for the diagnosis.
        samples: {"train": n, "validation": m} retrained on.
        notes: one sentence per choice, for the report.
    """

    config: RunConfig
    source: str
    run_id: str
    epochs: int
    best_epoch: int | None
    restored_epoch: int | None
    threshold: Threshold | None
    val_headline: list[Any]
    trial_history: list[dict[str, float]]
    samples: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON for the run's metrics and the registered version's lineage."""
        return {"splits": UNION, "samples": sum(self.samples.values()),
                "train_samples": self.samples["train"],
                "validation_samples": self.samples["validation"], "epochs": self.epochs,
                "schedule_epochs": self.config.train.epochs, "from": self.source,
                "from_run": self.run_id, "notes": list(self.notes)}

    def callbacks(self) -> list[Callback]:
        """For `fit`: stop after `epochs` epochs of the schedule of `config.train.epochs`."""
        return [StopAfterEpochs(self.epochs)]

    def plan(self, data: PreparedData) -> TrainingPlan:
        """The candidate to train: `config` on `data` joined to train + validation, stopped
        after `epochs`, with the threshold, validation headline and diagnosis of the best
        trial (measured on `data`'s validation split before it joined training)."""
        found = diagnose_history(self.trial_history, data, self.restored_epoch, self.config)
        diagnosis = replace(found, reasons=[f"Learning curves of {self.source} (trained on the "
                                            f"train split, validated on the validation split), "
                                            f"before retraining on both.", *found.reasons])
        scores = ValidationScores(self.threshold, {"headline": self.val_headline}, diagnosis)
        return TrainingPlan(self.config, data.joined_for_retraining(self.config),
                            callbacks=tuple(self.callbacks()), validation=scores,
                            trained_on=self.to_dict())


class StopAfterEpochs(Callback):
    """Stop after `epochs` epochs, before `train.epochs` ends, leaving the schedule untouched:
    every LR is the one a run of `train.epochs` epochs had at that step."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def _key_args(self) -> dict[str, Any]:
        return {"epochs": self.epochs}

    def will_stop(self, epoch: int, state: LoopState) -> bool:
        return epoch + 1 >= self.epochs and epoch + 1 < state.cfg.epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState) -> None:
        if self.will_stop(epoch, state):
            state.stop_reason = (f"stopped after {self.epochs} of the schedule's {state.cfg.epochs} "
                                 f"epochs, the best trial's epoch count")


def plan_retraining(cfg: RunConfig, searched: SearchOutcome, store: Store,
                    data: PreparedData) -> Retraining:
    """The retraining of `cfg` (the best config of `searched`) on train + validation.

    Args:
        cfg: the best trial's config.
        searched: the search or ladder that chose it (`best_source`, `best_run_id`).
        store: where the best trial's run recorded its epochs and threshold.
        data: the data the search used (train and validation still apart).

    Raises:
        DlforgeError: the best trial's run recorded no epochs (a study from an older version).
    """
    source, run = searched.best_source, store.get_run(searched.best_run_id)
    if "epochs_trained" not in run.metrics:
        raise DlforgeError(f"tune.retrain_on: {source} (run {run.id}) recorded no epoch counts to "
                           f"retrain with; run the search again or use tune.retrain_on: train")
    best_epoch = run.metrics["best_epoch"]
    epochs = best_epoch + 1 if best_epoch is not None else run.metrics["epochs_trained"]
    raw_threshold = run.metrics.get("threshold")
    threshold = Threshold(**raw_threshold) if raw_threshold else None
    samples = {"train": len(data.splits.train), "validation": len(data.splits.val)}
    es = cfg.train.early_stopping
    return Retraining(
        config=retrain_config(cfg), source=source, run_id=run.id, epochs=epochs,
        best_epoch=best_epoch, restored_epoch=best_epoch if es is not None and es.restore_best else None,
        threshold=threshold, val_headline=run.metrics.get("val_headline", []),
        trial_history=list(run.history), samples=samples,
        notes=_notes(cfg, source, epochs, best_epoch, threshold, samples))


def retrain_config(cfg: RunConfig) -> RunConfig:
    """`cfg` for training without a validation split: no early stopping, checkpoints ranked by
    the training counterpart of a validation monitor, `val_every` 1 (nothing is validated);
    `train.epochs` (the schedule) unchanged."""
    raw = cfg.model_dump(mode="json")
    raw["train"] |= {"early_stopping": None, "val_every": 1}
    checkpoint = raw["train"]["checkpoint"]
    checkpoint["monitor"] = checkpoint["monitor"].removeprefix("val_")
    return load_config(raw)


def _notes(cfg: RunConfig, source: str, epochs: int, best_epoch: int | None,
           threshold: Threshold | None, samples: dict[str, int]) -> list[str]:
    n_train, n_val = samples["train"], samples["validation"]
    notes = [f"Retrained on train + validation ({n_train} + {n_val} = {n_train + n_val} samples) "
             f"with preprocessing fitted on them; the test split was used once, at the end."]
    es = cfg.train.early_stopping
    trained = f"Trained {epochs} epochs of {source}'s {cfg.train.epochs}-epoch schedule"
    if best_epoch is not None and es is not None:
        notes.append(f"{trained}, the count after which {source} was best by {es.monitor}; early "
                     f"stopping is off (no validation split is left to stop on).")
    else:
        notes.append(f"{trained}, as {source} did (it had no early stopping).")
    if threshold is not None:
        notes.append(f"Decision threshold {_fmt(threshold.value)} ({threshold.objective}) chosen "
                     f"on the validation split by {source}'s model, kept unchanged.")
    if cfg.train.checkpoint.monitor.startswith("val_"):
        notes.append(f"Checkpoints ranked by {cfg.train.checkpoint.monitor.removeprefix('val_')} "
                     f"instead of {cfg.train.checkpoint.monitor}.")
    notes.append(f"Validation metrics and the diagnosis are {source}'s, measured before retraining.")
    return notes


def _fmt(value: float | list[float]) -> str:
    return ", ".join(f"{v:.4g}" for v in value) if isinstance(value, list) else f"{value:.4g}"
