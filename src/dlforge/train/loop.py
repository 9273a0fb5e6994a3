"""The one training loop. Search trials, fine-tuning, online updates and distributed workers
all call `fit`; none has a loop of its own.

It reads top to bottom like nanoGPT's train.py: set up, then for each epoch train, validate
(every `train.val_every`-th epoch and the last), step the schedule, record a history row and
let the callbacks act (checkpoints, early stopping, progress, time budget).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dlforge.config.schema import PlateauSchedule
from dlforge.errors import ConfigError
from dlforge.faults import fault_point
from dlforge.models.target_scale import TargetScale
from dlforge.runtime import select_device
from dlforge.train.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    ProgressBar,
    TimeBudget,
    _Monitor,
)
from dlforge.train.checkpoint_io import restore_checkpoint
from dlforge.train.conv_bias_grad import apply_conv_bias_grad
from dlforge.train.dense_kernel import apply_dense_kernel
from dlforge.train.distributed import Parallel, parallel
from dlforge.train.dropout_kernel import apply_dropout_kernel
from dlforge.train.ema import WeightAverage, averaging
from dlforge.train.losses import build_loss, check_labels, penalized_weights
from dlforge.train.mid_epoch import epoch_batches
from dlforge.train.monitor import monitor_not_logged
from dlforge.train.optim import build_optimizer
from dlforge.train.precision import resolve_precision, sample_shape
from dlforge.train.schedules import LRSchedule
from dlforge.train.state import LoopState
from dlforge.train.steps import Step, SupervisedStep

if TYPE_CHECKING:
    from dlforge.config.schema import TrainConfig
    from dlforge.data.dataset import TaskSpec


@dataclass(frozen=True)
class TrainResult:
    """What `fit` returns.

    Attributes:
        history: one row per epoch: epoch (from 0), loss, accuracy|mae, val_loss,
            val_accuracy|val_mae, lr (at epoch end), epoch_time_s, samples_per_s. `loss` is the
            data loss without the `l2` penalty, so it compares with `val_loss`. Rows of epochs
            that were not validated (`train.val_every`) have no `val_` keys.
        lr_history: the learning rate of every optimizer step.
        best_epoch: the best epoch by early stopping's monitor (else the checkpoint's); None
            when neither ran.
        best_checkpoint: path of the best checkpoint file, when checkpoints were written.
        stop_reason: why training stopped before `cfg.epochs`, or None.
        model: the trained model (with the best epoch's weights under `restore_best`).
        precision: what the forward passes computed in (`fp32`, `bf16`, `fp16`).
    """

    history: list[dict[str, float]]
    lr_history: list[float]
    best_epoch: int | None
    best_checkpoint: Path | None
    stop_reason: str | None
    model: nn.Module
    precision: str = "fp32"


def fit(model: nn.Module, loaders: Any, cfg: TrainConfig, task: TaskSpec, *,
        callbacks: Sequence[Callback] = (), checkpoint_dir: str | Path | None = None,
        resume_from: str | Path | None = None, seed: int = 0, device: str = "auto",
        progress: bool = True, step: Step | None = None) -> TrainResult:
    """Train `model` on `loaders.train`, validating on `loaders.val` after every
    `cfg.val_every`-th epoch (epochs val_every - 1, 2 * val_every - 1, ... counted from 0), after
    the last epoch and after an epoch that a callback's `will_stop` ends the run with (a time
    budget); early stopping ends a run only after a validated epoch.

    Args:
        model: logits out (`(N, classes)`, binary `(N, 1)`), or values for regression.
        loaders: `Loaders` with `train` and `val` (`BatchLoader`s) and `class_weights`.
        cfg: the train section of the config.
        task: the task the model's head was built for.
        callbacks: extra callbacks, run after the configured ones.
        checkpoint_dir: where `ModelCheckpoint` writes (`cfg.checkpoint`); None = no files.
        resume_from: a checkpoint file to continue from; the run then ends as it would have.
        seed: derives each epoch's data order and dropout randomness (with the epoch number).
        device: a `torch.device`, or `auto`, `cpu`, `cuda`, `cuda:N` or `mps`. Threads and
            allocator settings are the process's (`runtime.setup_process`, which `dlforge.run`
            calls once); `fit` leaves them alone.
        progress: show a progress bar (terminal) or one line per epoch.
        step: what each batch does (`train.steps`); default the supervised step.

    Returns:
        TrainResult with history, per-step LRs, best epoch/checkpoint and the stop reason.

    Raises:
        ConfigError: a monitored metric is never logged, or the device is unavailable.
        DataError: labels outside the model's head.

    Example:
        >>> result = fit(model, loaders, cfg.train, task, seed=cfg.seed)  # doctest: +SKIP
        >>> result.history[-1]["val_loss"]  # doctest: +SKIP
    """
    par = _hooks(step)  # data or pipeline parallelism under torchrun; else no-ops
    loaders, cfg = par.prepare(loaders, cfg)
    state = _setup(model, loaders, cfg, task, seed, select_device(device), step)
    state.callbacks = _build_callbacks(cfg, checkpoint_dir, progress, callbacks)
    _check_before_training(state, loaders)
    for cb in state.callbacks:
        cb.on_fit_start(state)
    if resume_from is not None:
        restore_checkpoint(resume_from, state)
    par.start(state)
    for epoch in range(state.epoch + 1, cfg.epochs):
        if state.stop_reason:  # a resumed run that had already stopped
            break
        start = time.perf_counter()
        _seed_epoch(seed, epoch)
        loaders.train.set_epoch(epoch)
        _epoch_started(state.model, epoch)
        with par.training(state):
            logs = train_one_epoch(state, loaders.train)
        logs = par.reduce(logs)
        samples_per_s = logs.pop("_samples") / max(time.perf_counter() - start, 1e-9)
        state.validated = _validates(epoch, state, loaders, par)
        if state.validated:
            loaders.val.set_epoch(epoch)
            with averaging(state.ema):  # train.ema: validate the averaged weights
                val_logs = par.reduce(validate_epoch(state, loaders.val))
            val_logs.pop("_samples")
            logs |= val_logs
        state.schedule.epoch_end(epoch, logs, validated=state.validated)
        row = {"epoch": epoch, **logs, "lr": state.optimizer.param_groups[0]["lr"],
               "epoch_time_s": time.perf_counter() - start,
               "samples_per_s": samples_per_s}
        state.epoch = epoch
        state.history.append(row)
        for cb in state.callbacks:
            cb.on_epoch_end(epoch, row, state)
        par.agree(state)
    if state.ema is not None:
        state.ema.copy_to_model()  # the trained model is the average
    for cb in state.callbacks:
        cb.on_fit_end(state)
    return TrainResult(state.history, state.lr_history, _best_epoch(state.callbacks),
                       state.best_checkpoint, state.stop_reason, state.model, state.precision.name)


def preflight(model: nn.Module, loaders: Any, cfg: TrainConfig, task: TaskSpec, *,
              device: str | torch.device = "auto", step: Step | None = None) -> None:
    """Raise now what `fit` would raise before its first epoch: a warm-up longer than the run,
    a monitor that is never logged, labels outside the head. Trains nothing, writes nothing.

    The pipeline calls it before it records a run, so a config mistake leaves no failed run.
    """
    loaders, cfg = _hooks(step).prepare(loaders, cfg)
    state = _setup(model, loaders, cfg, task, 0, select_device(device), step)
    state.callbacks = _build_callbacks(cfg, Path("unused"), False, ())
    _check_before_training(state, loaders)


def epoch_steps(loaders: Any, cfg: TrainConfig, step: Step | None = None) -> int:
    """Training steps of one epoch in this process, as `fit` takes them: the batches of the
    loaders its process hooks prepare (under `--nproc N`, a rank's shard: about 1/N of them).

    Raises:
        DataError, ConfigError: what the hooks refuse (fewer samples than processes; a
            process count that is not the pipeline's stages).
    """
    return len(_hooks(step).prepare(loaders, cfg)[0].train)


def train_one_epoch(state: LoopState, loader: Iterable) -> dict[str, float]:
    """One pass over `loader`: the step strategy's training step on each batch, then the
    schedule's step; returns what the step logs (loss and metric for the supervised step)."""
    state.model.train()
    step, optimizer = state.step, state.optimizer
    meter = step.meter(state)
    for xb, yb in epoch_batches(state, loader, meter):  # the loader itself unless every_steps
        xb, yb = _to_device(xb, state), yb.to(state.device, non_blocking=True)
        state.lr_history.append(optimizer.param_groups[0]["lr"])
        step.train_batch(state, xb, yb, meter)
        state.schedule.step()
        if state.ema is not None:
            state.ema.step()
    fault_point("mid-epoch")  # a testing hook (dlforge.faults); one env lookup per epoch
    return {**meter.result(), "_samples": meter.samples}


@torch.inference_mode()
def validate_epoch(state: LoopState, loader: Iterable) -> dict[str, float]:
    """What the step logs on `loader` in eval mode, keys prefixed with `val_`, and `_samples`."""
    state.model.eval()
    meter = state.step.meter(state)
    for xb, yb in loader:
        xb, yb = _to_device(xb, state), yb.to(state.device, non_blocking=True)
        state.step.eval_batch(state, xb, yb, meter)
    return {**meter.result("val_"), "_samples": meter.samples}


def _validates(epoch: int, state: LoopState, loaders: Any, par: Parallel) -> bool:
    """Whether `epoch` is validated: with a validation loader, every `val_every`-th epoch (N-1,
    2N-1, ...), the last of `cfg.epochs`, and one after which a callback will stop the run
    (rank 0's answer, so every process validates together).

    Example:
        >>> from types import SimpleNamespace
        >>> from dlforge.config.schema import TrainConfig
        >>> from dlforge.train.distributed import SINGLE
        >>> state = SimpleNamespace(cfg=TrainConfig(epochs=5, val_every=2), callbacks=[])
        >>> [e for e in range(5) if _validates(e, state, SimpleNamespace(val=[]), SINGLE)]
        [1, 3, 4]
    """
    if loaders.val is None:
        return False
    cfg = state.cfg
    if (epoch + 1) % cfg.val_every == 0 or epoch == cfg.epochs - 1:
        return True
    return par.decide(any(cb.will_stop(epoch, state) for cb in state.callbacks))


def _hooks(step: Step | None) -> Parallel:
    """The step's own process hooks (pipeline stages), else the process group's."""
    return (step.hooks() if step is not None else None) or parallel()


def _setup(model: nn.Module, loaders: Any, cfg: TrainConfig, task: TaskSpec, seed: int,
           device: torch.device, step: Step | None = None) -> LoopState:
    channels_last = cfg.channels_last == "on" or (
        cfg.channels_last == "auto" and getattr(model, "family", None) == "conv")
    model = model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    optimizer = build_optimizer(model, cfg)
    precision = resolve_precision(cfg.precision, model, device, sample_shape(loaders.train))
    apply_dense_kernel(model, cfg.dense_kernel, device, precision)
    apply_dropout_kernel(model, cfg.dropout_kernel, device)
    apply_conv_bias_grad(model, cfg.conv_bias_grad, device, precision)
    state = LoopState(
        model=model, optimizer=optimizer,
        schedule=LRSchedule(optimizer, cfg, max(len(loaders.train), 1)),
        loss_fn=build_loss(task, cfg, getattr(loaders, "class_weights", None),
                           model.std if isinstance(model, TargetScale) else None).to(device),
        cfg=cfg, task=task, device=device, seed=seed, channels_last=channels_last,
        precision=precision, scaler=torch.amp.GradScaler("cuda") if precision.scaled else None,
        penalized=penalized_weights(model) if cfg.l2 else [],
        trainable=[p for p in model.parameters() if p.requires_grad],
        step=step or SupervisedStep(),
        ema=_weight_average(model, cfg, len(loaders.train)),
    )
    state.step.bind(state)
    return state


def _weight_average(model: nn.Module, cfg: TrainConfig, steps_per_epoch: int) -> WeightAverage | None:
    """`train.ema`'s average (lookahead mode: over the run's `epochs` x `steps_per_epoch`)."""
    if cfg.ema is None:
        return None
    total = cfg.epochs * max(steps_per_epoch, 1) if cfg.ema.mode == "lookahead" else None
    return WeightAverage(model, cfg.ema.decay, cfg.ema.every, lookahead_steps=total)


def _epoch_started(model: nn.Module, epoch: int) -> None:
    """The per-epoch hooks (`epoch_started(epoch)`, e.g. airbench freezing its whitening bias
    after some epochs) of the model and of every module inside it (a wrapper such as the
    regression output scaling must not hide them), before the epoch trains."""
    for module in model.modules():
        hook = getattr(module, "epoch_started", None)
        if callable(hook):
            hook(epoch)


def _build_callbacks(cfg: TrainConfig, checkpoint_dir: str | Path | None, progress: bool,
                     extra: Sequence[Callback]) -> list[Callback]:
    """The configured callbacks, then `extra`; the checkpoint runs after every other callback
    that changes state (so its file holds their updated state), the progress line last."""
    es = cfg.early_stopping
    callbacks: list[Callback] = []
    if es is not None:
        callbacks.append(EarlyStopping(es.monitor, es.mode, es.patience, es.min_delta, es.restore_best))
    if cfg.time_budget_s is not None:
        callbacks.append(TimeBudget(cfg.time_budget_s))
    callbacks += list(extra)
    if checkpoint_dir is not None:
        ck = cfg.checkpoint
        callbacks.append(ModelCheckpoint(checkpoint_dir, ck.monitor, ck.mode, ck.save_best_only,
                                         ck.top_k, ck.save_last))
    if progress:
        callbacks.append(ProgressBar())
    return callbacks


def _check_before_training(state: LoopState, loaders: Any) -> None:
    """Cheap checks that would otherwise fail after the first (possibly long) epoch."""
    for loader in (loaders.train, loaders.val):
        y = getattr(loader, "y", None)
        if isinstance(y, torch.Tensor):
            check_labels(y, state.task)
    trained = list(state.step.logged(state.task.kind))
    logged = [*trained, "lr"]
    if loaders.val is not None:
        logged += [f"val_{name}" for name in state.step.validated(state.task.kind)]
    watched = [(f"{cb.key}.monitor", cb.monitor) for cb in state.callbacks if isinstance(cb, _Monitor)]
    if isinstance(state.cfg.schedule, PlateauSchedule):
        watched.append(("train.schedule.monitor", state.cfg.schedule.monitor))
    problems = [monitor_not_logged(key, name, logged) for key, name in watched if name not in logged]
    if problems:
        raise ConfigError("\n".join(problems))


def _seed_epoch(seed: int, epoch: int) -> None:
    """Seed torch's global generator (dropout) from (seed, epoch) only, so a resumed run draws
    exactly what the uninterrupted run drew."""
    torch.manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))


def _to_device(xb: torch.Tensor, state: LoopState) -> torch.Tensor:
    xb = xb.to(state.device, non_blocking=True)
    if state.channels_last and xb.ndim == 4:
        xb = xb.contiguous(memory_format=torch.channels_last)
    return xb


def _best_epoch(callbacks: Sequence[Callback]) -> int | None:
    for cb in callbacks:
        if isinstance(cb, (EarlyStopping, ModelCheckpoint)) and cb.best_epoch is not None:
            return cb.best_epoch
    return None
