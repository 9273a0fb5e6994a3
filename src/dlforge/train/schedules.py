"""Learning-rate schedules, with an optional linear warm-up in front of any of them.

The LR of every parameter group is ``base_lr * factor``, set by a ``torch.optim.lr_scheduler.
LambdaLR``. The factor is the product of three parts:

- warm-up: ``min(1, (t + 1) / W)`` at step ``t`` (``W = schedule.warmup_steps``; 1 when W = 0),
- the step-based shape, a pure function of ``u = max(0, t - W)``, the step count after warm-up
  (constant, exponential, inverse_time, cosine, one_cycle),
- an epoch-level scale, changed only by ``epoch_end``: ``gamma ** (epochs // step_epochs)`` for
  ``step``, the reduction decided by ``torch.optim.lr_scheduler.ReduceLROnPlateau`` for
  ``plateau``, 1 otherwise.

``t`` counts optimizer steps already taken: the LR in effect for the first step is the factor at
``t = 0``. So with ``W = 3`` the first three steps run at ``lr/3, 2lr/3, lr`` and the inner schedule
then starts at its own step 0 (for cosine, ``lr`` once more). Warm-up ramps to the inner
schedule's first value: ``lr`` for every schedule except one_cycle, whose first value is
``lr / div_factor``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch

from dlforge.config.schema import (
    CosineSchedule,
    ExponentialSchedule,
    InverseTimeSchedule,
    LinearSchedule,
    OneCycleSchedule,
    PlateauSchedule,
    StepSchedule,
    TrainConfig,
)
from dlforge.errors import ConfigError
from dlforge.train.monitor import resolve_mode

Factor = Callable[[int], float]


class LRSchedule:
    """The learning rate of one training run, driven by the loop.

    Call ``step()`` after every optimizer step and ``epoch_end(epoch, logs)`` after every epoch.
    ``state_dict()``/``load_state_dict()`` resume the exact same LR sequence, whichever of the
    optimizer and the schedule is restored first.

    Schedules (``cfg.schedule.type``):

    - ``constant``: ``lr``.
    - ``step``: ``lr * gamma ** (epochs_done // step_epochs)``; epochs are counted by
      ``epoch_end``.
    - ``plateau``: multiply by ``factor`` when ``logs[monitor]`` has not improved (relative
      threshold 1e-4) for more than ``patience`` epochs, never below ``min_lr``; ``mode`` auto
      is max for accuracy-like names, else min.
    - ``exponential``: ``lr * decay_rate ** (u / decay_steps)``; staircase floors the quotient.
    - ``inverse_time``: ``lr / (1 + decay_rate * u / decay_steps)``; staircase floors it.
    - ``cosine``: ``min_lr + (lr - min_lr) * (1 + cos(pi * u / T)) / 2`` with
      ``T = epochs * steps_per_epoch - W``; it reaches ``min_lr`` after the last step.
    - ``linear``: ``min_lr + (lr - min_lr) * (1 - u / T)``: ``lr`` at the first step, reaching
      ``min_lr`` after the last (airbench94_muon's schedule).
    - ``one_cycle``: torch's ``OneCycleLR`` LR curve (two phases, cosine or, ``anneal:
      linear``, linear annealing) with
      ``max_lr = lr`` over ``T`` steps; momentum is not cycled, so ``train.momentum`` means
      the same under every schedule. After ``T`` steps the LR stays at its final value.

    Args:
        optimizer: The optimizer whose groups' ``lr`` this sets; each group's starting LR
            (``initial_lr`` if a scheduler ran on it before) is its base LR.
        cfg: Training config; reads ``schedule``, ``lr`` and ``epochs``.
        steps_per_epoch: Optimizer steps per epoch (batches of the train loader).

    Raises:
        ConfigError: cosine/one_cycle with ``warmup_steps`` not below the run's total steps
            (the schema already refuses a ``min_lr`` above ``lr``).

    Example:
        >>> cfg = TrainConfig(lr=0.1, epochs=1, schedule={"type": "exponential",
        ...                   "decay_rate": 0.5, "decay_steps": 1})
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
        >>> sched = LRSchedule(opt, cfg, steps_per_epoch=3)
        >>> sched.lr
        0.1
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                 steps_per_epoch: int) -> None:
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch: must be at least 1 (got {steps_per_epoch})")
        self.optimizer = optimizer
        self.cfg = cfg
        self.steps_per_epoch = steps_per_epoch
        self._epochs = 0
        self._plateau = _plateau(cfg) if isinstance(cfg.schedule, PlateauSchedule) else None
        self._shape = _shape(cfg, cfg.epochs * steps_per_epoch - cfg.schedule.warmup_steps)
        # A closure (not a bound method) so LambdaLR's state_dict stores no function state.
        self._scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: self._factor(t))

    @property
    def lr(self) -> float:
        """The LR the next optimizer step will use (of the first parameter group)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self) -> None:
        """Advance one optimizer step; call it right after each optimizer step."""
        self._scheduler.step()

    def epoch_end(self, epoch: int, logs: Mapping[str, float], validated: bool = True) -> None:
        """Count a finished epoch; ``plateau`` reads ``logs[monitor]`` (its patience counts the
        epochs that log the monitor: validations for a ``val_`` metric under ``train.val_every``).

        Args:
            epoch: Index of the epoch that just ended (from 0); the schedule keeps its own count.
            logs: The epoch's history row, e.g. ``{"loss": ..., "val_loss": ...}``.
            validated: False for an epoch the loop did not validate: a missing monitor is
                skipped instead of refused.

        Raises:
            ConfigError: plateau's monitor is not among the logs of a validated epoch.
        """
        monitor = getattr(self.cfg.schedule, "monitor", None)
        if self._plateau is not None and (validated or monitor in logs):
            if monitor not in logs:
                raise ConfigError(
                    f"train.schedule.monitor: must be one of the epoch's logged metrics: "
                    f"{', '.join(sorted(logs))} (got {monitor!r})"
                )
            self._plateau.step(float(logs[monitor]))
        self._epochs += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        """Plain values (torch.load(weights_only=True) reads them) to resume the sequence."""
        plateau = None
        if self._plateau is not None:
            plateau = {"scheduler": self._plateau.state_dict(), "scale": self._plateau_scale()}
        return {
            "type": self.cfg.schedule.type,
            "epochs": self._epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "lambda": self._scheduler.state_dict(),
            "plateau": plateau,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned and set the optimizer's LR to match.

        Raises:
            ConfigError: the state was saved under a different schedule type.
        """
        if state["type"] != self.cfg.schedule.type:
            raise ConfigError(
                f"train.schedule.type: the checkpoint was trained with {state['type']!r}, "
                f"resume with the same schedule (got {self.cfg.schedule.type!r})"
            )
        self._epochs = int(state["epochs"])
        self._scheduler.load_state_dict(self._realigned(state))
        if self._plateau is not None:
            self._plateau.load_state_dict(dict(state["plateau"]["scheduler"]))
            # ReduceLROnPlateau keeps its LR in the optimizer, not in its state_dict.
            self._plateau.optimizer.param_groups[0]["lr"] = float(state["plateau"]["scale"])
        self._apply()

    def _realigned(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """The saved step count in this run's steps per epoch: a resume with another number
        of data-parallel processes (so of batches per epoch) continues at the same point of
        the schedule (checkpoints are written at epoch ends)."""
        saved, lam = state.get("steps_per_epoch"), dict(state["lambda"])
        if saved and saved != self.steps_per_epoch:
            lam["last_epoch"] = lam["last_epoch"] * self.steps_per_epoch // saved
            lam["_step_count"] = lam["last_epoch"] + 1
        return lam

    def _factor(self, t: int) -> float:
        warmup = self.cfg.schedule.warmup_steps
        ramp = min(1.0, (t + 1) / warmup) if warmup else 1.0
        return ramp * self._shape(max(0, t - warmup)) * self._epoch_scale()

    def _epoch_scale(self) -> float:
        sched = self.cfg.schedule
        if isinstance(sched, StepSchedule):
            return sched.gamma ** (self._epochs // sched.step_epochs)
        if self._plateau is not None:
            return self._plateau_scale()
        return 1.0

    def _plateau_scale(self) -> float:
        assert self._plateau is not None
        return float(self._plateau.optimizer.param_groups[0]["lr"])

    def _apply(self) -> None:
        """Set every group's LR for the current step (after the epoch scale changed)."""
        factor = self._factor(self._scheduler.last_epoch)
        for group, base in zip(self.optimizer.param_groups, self._scheduler.base_lrs, strict=True):
            group["lr"] = base * factor


def lr_sequence(cfg: TrainConfig, steps_per_epoch: int, epochs: int,
                logs: list[Mapping[str, float]] | None = None) -> list[float]:
    """The LR of every optimizer step, from ``LRSchedule`` on a dummy optimizer.

    Args:
        cfg: Training config (``schedule``, ``lr``; the horizon of cosine and one_cycle is
            ``cfg.epochs``, as in the real run).
        steps_per_epoch: Optimizer steps per epoch.
        epochs: Epochs to run; may differ from ``cfg.epochs`` (e.g. after early stopping).
        logs: One history row per epoch, fed to ``epoch_end``. Without them a plateau schedule
            never sees a metric and keeps its LR; a row without ``val_`` keys is an epoch that
            was not validated (``train.val_every``).

    Returns:
        ``epochs * steps_per_epoch`` learning rates, in order.

    Raises:
        ConfigError: as ``LRSchedule``.

    Example:
        >>> cfg = TrainConfig(epochs=1, lr=0.1, schedule={"type": "exponential", "decay_rate": 0.5,
        ...                   "decay_steps": 2, "staircase": True})
        >>> lr_sequence(cfg, steps_per_epoch=5, epochs=1)
        [0.1, 0.1, 0.05, 0.05, 0.025]
    """
    if logs is not None and len(logs) < epochs:
        raise ValueError(f"logs: need one row per epoch, {epochs} (got {len(logs)})")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = LRSchedule(optimizer, cfg, steps_per_epoch)
    lrs: list[float] = []
    with warnings.catch_warnings():
        # The dummy optimizer never steps; torch would warn that the scheduler runs first.
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                category=UserWarning)
        for epoch in range(epochs):
            for _ in range(steps_per_epoch):
                lrs.append(sched.lr)
                sched.step()
            if logs is not None or not isinstance(cfg.schedule, PlateauSchedule):
                row = logs[epoch] if logs is not None else {}
                sched.epoch_end(epoch, row, validated=_validated(row, logs is not None))
    return lrs


def _validated(row: Mapping[str, float], replayed: bool) -> bool:
    """A replayed history row was validated when it holds a ``val_`` metric."""
    return not replayed or any(key.startswith("val_") for key in row)


# ------------------------------------------------------------------------ step-based shapes


def _shape(cfg: TrainConfig, total: int) -> Factor:
    """The pure step-based factor of ``cfg.schedule`` over ``total`` post-warm-up steps."""
    sched = cfg.schedule
    if isinstance(sched, ExponentialSchedule):
        return lambda u: sched.decay_rate ** _progress(u, sched.decay_steps, sched.staircase)
    if isinstance(sched, InverseTimeSchedule):
        return lambda u: 1.0 / (
            1.0 + sched.decay_rate * _progress(u, sched.decay_steps, sched.staircase))
    if isinstance(sched, CosineSchedule):
        _check_horizon(cfg, total)
        return _cosine(total, sched.min_lr / cfg.lr)
    if isinstance(sched, LinearSchedule):
        _check_horizon(cfg, total)
        floor = sched.min_lr / cfg.lr
        return lambda u: floor + (1.0 - floor) * (1.0 - min(u, total) / total)
    if isinstance(sched, OneCycleSchedule):
        _check_horizon(cfg, total)
        return _one_cycle(total, sched)
    return lambda u: 1.0  # constant, step and plateau change only per epoch


def _check_horizon(cfg: TrainConfig, total: int) -> None:
    """Schedules that span the run need at least one step after warm-up."""
    if total < 1:
        warmup = cfg.schedule.warmup_steps
        raise ConfigError(
            f"train.schedule.warmup_steps: must be less than the run's {total + warmup} steps "
            f"(train.epochs x batches per epoch) for a {cfg.schedule.type} schedule "
            f"(got {warmup}); lower it (a tenth: --set "
            f"train.schedule.warmup_steps={(total + warmup) // 10}) or raise train.epochs "
            f"(review.epochs in `dlforge data review`, whose folds train that many)"
        )


def _progress(u: int, decay_steps: int, staircase: bool) -> float:
    return u // decay_steps if staircase else u / decay_steps


def _cosine(total: int, floor: float) -> Factor:
    def factor(u: int) -> float:
        done = min(u, total) / total
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * done))

    return factor


def _one_cycle(total: int, sched: OneCycleSchedule) -> Factor:
    """torch's OneCycleLR (two phases, cosine annealing) as a factor of max_lr."""
    start = 1.0 / sched.div_factor
    end = start / sched.final_div_factor
    # Phase ends as torch computes them: the peak is at step pct_start * total - 1.
    peak_step = float(sched.pct_start * total) - 1
    last_step = float(total - 1)

    anneal = _anneal_cos if sched.anneal == "cos" else _anneal_linear

    def factor(u: int) -> float:
        u = min(u, total - 1)
        if u <= peak_step:
            return anneal(start, 1.0, u / peak_step if peak_step > 0 else 1.0)
        span = last_step - peak_step
        return anneal(1.0, end, (u - peak_step) / span if span > 0 else 1.0)

    return factor


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start: float, end: float, pct: float) -> float:
    return start + (end - start) * pct


# --------------------------------------------------------------------------------- plateau


def _plateau(cfg: TrainConfig) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """ReduceLROnPlateau on a one-parameter stand-in optimizer whose LR is the scale (from 1).

    Running it on a stand-in rather than on the real optimizer lets warm-up and the plateau
    reductions multiply instead of overwriting each other.
    """
    sched = cfg.schedule
    assert isinstance(sched, PlateauSchedule)
    stand_in = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        stand_in, mode=resolve_mode(sched.monitor, sched.mode), factor=sched.factor,
        patience=sched.patience, min_lr=sched.min_lr / cfg.lr,
    )
