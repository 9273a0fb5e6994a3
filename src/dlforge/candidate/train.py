"""The one path from a config and prepared data to a trained candidate model.

A run, a search trial, a capacity-ladder rung and retraining on train + validation all call
`train_candidate` (and, next, fine-tuning and online updates): seed, build the model for the
data, ONE call to the fit loop, then what validation says of the result. Which candidate is
registered or serves is decided elsewhere (the pipeline; the gate).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dlforge.candidate.build import build_for_data
from dlforge.candidate.validation import ValidationScores, score_on_validation
from dlforge.config.auto import resolve_auto
from dlforge.runtime import configure_process, seed_everything
from dlforge.train.loop import epoch_steps, fit, preflight
from dlforge.train.monitor import resolve_mode
from dlforge.train.pipeline_step import PipelineStep
from dlforge.train.steps import Step, step_for

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig
    from dlforge.data.prepare import PreparedData
    from dlforge.train.callbacks import Callback


@dataclass(frozen=True)
class TrainingPlan:
    """What to train: a config and the data it trains on, plus what was decided before
    training (set only when retraining on train + validation, where no validation split is
    left to decide it on).

    Attributes:
        config: the frozen config of the candidate.
        data: prepared once; `data.loaders_for(config)` gives its loaders.
        callbacks: extra callbacks for the fit loop (pruning, stopping after N epochs).
        step: what the fit loop does with each batch (`train.steps`); None = the task's
            default (`steps.step_for`: reconstruction for anomaly detection, else supervised).
        validation: the validation scores decided earlier (the best trial's), or None to score
            the candidate on `data`'s validation split.
        trained_on: the lineage record of what it trained on; default the train split.
        prepare_model: applied to the freshly built model before training (transfer: load a
            source model's weights, freeze its backbone); None trains it as built.
    """

    config: RunConfig
    data: PreparedData
    callbacks: tuple[Callback, ...] = ()
    step: Step | None = None
    validation: ValidationScores | None = None
    trained_on: dict[str, Any] | None = None
    prepare_model: Callable[[nn.Module], nn.Module] | None = None

    def build(self) -> nn.Module:
        """The model to train: built for the data, then `prepare_model`."""
        model = build_for_data(self.config.model, self.data)
        return self.prepare_model(model) if self.prepare_model else model


@dataclass
class Candidate:
    """A model trained by `train_candidate`, with its learning curves.

    Attributes:
        config: the config it was trained from.
        model: the trained model (best epoch's weights when early stopping restores them).
        history: the fit loop's rows, one per epoch; `lr_history` one LR per step.
        best_epoch: early stopping's (else the checkpoint's) best epoch, from 0, or None.
        restored_epoch: `best_epoch` when early stopping restored its weights, else None.
        stop_reason: why training stopped before `train.epochs`, or None.
        precision: what the forward passes computed in (fp32, bf16, fp16).
        trained_on: the splits and sample count it trained on (lineage).
    """

    config: RunConfig
    model: nn.Module
    history: list[dict[str, float]]
    lr_history: list[float]
    best_epoch: int | None
    restored_epoch: int | None
    stop_reason: str | None
    precision: str
    trained_on: dict[str, Any]
    _plan: TrainingPlan = field(repr=False)
    _device: torch.device = field(repr=False)

    @cached_property
    def validation(self) -> ValidationScores:
        """Threshold, validation metrics and diagnosis; computed on first use (a search trial
        needs them only to retrain on train + validation)."""
        if self._plan.validation is not None:
            return self._plan.validation
        return score_on_validation(self.model, self._plan.data, self.config, self._device,
                                   self.history, self.restored_epoch)

    def best_row(self, metric: str) -> dict[str, float]:
        """The history row where `metric` was best (highest for accuracy-like metrics, else
        lowest; the first of equals), among the rows that log it (`train.val_every`: the
        validated epochs)."""
        pick = max if resolve_mode(metric, "auto") == "max" else min
        return pick((row for row in self.history if metric in row), key=lambda row: row[metric])


def train_candidate(plan: TrainingPlan, *, device: torch.device, progress: bool = False,
                    checkpoint_dir: str | Path | None = None,
                    resume_from: str | Path | None = None) -> Candidate:
    """Seed, build the model for the data, train it with the one fit loop.

    `train.num_threads`, when set, is applied for this candidate only (a search trial may tune
    it) and the process's count is restored afterwards, so a later candidate with it unset
    keeps the threads its entry set up (`runtime.setup_process`).

    Args:
        plan: the config, the data and the extra callbacks.
        device: where to train (`runtime.select_device`).
        progress: show the fit loop's progress.
        checkpoint_dir: where checkpoints go (`train.checkpoint`); None writes none.
        resume_from: a checkpoint to continue from; it ends as an uninterrupted run would.

    Raises:
        ConfigError, DataError: what the fit loop raises before its first epoch.

    Example:
        >>> cand = train_candidate(TrainingPlan(cfg, prepare_data(cfg)), device=cpu)  # doctest: +SKIP
        >>> cand.validation.headline  # doctest: +SKIP
    """
    plan = _resolved(plan)
    cfg, data = plan.config, plan.data
    with _threads(cfg.train.num_threads):
        seed_everything(cfg.seed)
        step = _step(plan)
        model = step.built(plan.build)
        result = fit(model, data.loaders_for(cfg), cfg.train, data.task, callbacks=plan.callbacks,
                     checkpoint_dir=checkpoint_dir, resume_from=resume_from, seed=cfg.seed,
                     device=device, progress=progress, step=step)
    es = cfg.train.early_stopping
    restored = result.best_epoch if es is not None and es.restore_best else None
    trained_on = plan.trained_on or _trained_on(data)
    return Candidate(cfg, result.model, result.history, result.lr_history, result.best_epoch,
                     restored, result.stop_reason, result.precision, trained_on, plan, device)


@contextlib.contextmanager
def _threads(num_threads: int | None) -> Iterator[None]:
    """`num_threads` CPU threads for the block (None: the process's count stands), then the
    process's count again."""
    before = torch.get_num_threads()
    if num_threads is not None:
        configure_process(num_threads)
    try:
        yield
    finally:
        configure_process(before)


def _trained_on(data: PreparedData) -> dict[str, Any]:
    """The default lineage record: the train split, its size, and the samples `data.exclude`
    left out of it (by id)."""
    streamed = data.splits.info.get("streamed", {})  # a streamed split holds a sample in memory
    record: dict[str, Any] = {"splits": "train", "samples": streamed.get("train", len(data.splits.train))}
    if "excluded" in data.splits.info:
        record["excluded"] = data.splits.info["excluded"]["ids"]
    return record


def check_plan(plan: TrainingPlan, *, device: torch.device) -> None:
    """Raise now what training `plan` would raise before its first epoch (a warm-up longer
    than the run, a monitor never logged, labels outside the head); trains nothing."""
    plan = _resolved(plan)
    cfg, data = plan.config, plan.data
    preflight(plan.build(), data.loaders_for(cfg), cfg.train, data.task,
              device=device, step=_step(plan))


def steps_per_epoch(plan: TrainingPlan) -> int:
    """The steps an epoch of `plan` trains in this process (`train.loop.epoch_steps`: a
    data-parallel rank's share of the batches)."""
    return epoch_steps(plan.data.loaders_for(plan.config), plan.config.train, _step(plan))


def _step(plan: TrainingPlan) -> Step:
    """The plan's step; else a pipeline step for `model.parallel`, else the task's default."""
    split = getattr(plan.config.model, "parallel", None)
    if plan.step is not None or split is None:
        return plan.step or step_for(plan.data.task.kind)
    return PipelineStep(split)


def _resolved(plan: TrainingPlan) -> TrainingPlan:
    """The plan with any `auto` left in its config filled in for its data (the pipeline
    resolves before recording a run; callers that build plans themselves need not)."""
    return replace(plan, config=resolve_auto(plan.config, plan.data.facts))
