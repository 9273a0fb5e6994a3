"""Training-step strategies: what the ONE fit loop does with each batch.

The loop owns epochs, the data order, the learning-rate schedule, callbacks, checkpoints and
progress; a step owns what is particular to a kind of training: its forward pass and losses,
its optimizer steps, what it logs and any state of its own (a GAN's second optimizer). The
supervised step is the default; a reconstruction step (anomaly autoencoders) or a
generator/discriminator step (GANs) plugs in the same way, so there is no second loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from dlforge.train.epoch_metrics import EpochMetrics, metric_name
from dlforge.train.losses import l2_penalty

if TYPE_CHECKING:
    from dlforge.train.distributed import Parallel
    from dlforge.train.state import LoopState


class Meter(Protocol):
    """Accumulates one epoch's figures of a step; `result(prefix)` reduces them once."""

    samples: int

    def result(self, prefix: str = "") -> dict[str, float]: ...


class Step:
    """Base of the step strategies: one batch of training, one batch of validation."""

    def logged(self, task_kind: str) -> tuple[str, ...]:
        """History keys a training epoch logs (a validation epoch logs them with `val_`)."""
        raise NotImplementedError

    def validated(self, task_kind: str) -> tuple[str, ...]:
        """Keys a validation epoch logs, without `val_` (default those of `logged`; a GAN adds
        `frechet`, measured on validation only)."""
        return self.logged(task_kind)

    def meter(self, state: LoopState) -> Meter:
        """A fresh accumulator for one epoch."""
        raise NotImplementedError

    def hooks(self) -> Parallel | None:
        """The fit loop's process hooks this step needs (a pipeline step: its stages'); None =
        those of the process group (`distributed.parallel()`)."""
        return None

    def built(self, build: Callable[[], nn.Module]) -> nn.Module:
        """The model this process trains, from `build` (the whole model; a pipeline stage's
        process builds only its stage's tensors)."""
        return build()

    def bind(self, state: LoopState) -> None:
        """Called once the loop state exists (before a checkpoint is restored): a step that
        needs more than `state.optimizer` (e.g. a second optimizer) builds it here."""

    def train_batch(self, state: LoopState, xb: Tensor, yb: Tensor, meter: Meter) -> None:
        """Forward, losses, backward and optimizer step(s) on one batch; update `meter`."""
        raise NotImplementedError

    def eval_batch(self, state: LoopState, xb: Tensor, yb: Tensor, meter: Meter) -> None:
        """Forward and losses on one validation batch, without gradients; update `meter`."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must hold to resume this step (plain values and tensors only)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


class SupervisedStep(Step):
    """The default: the task's loss between the model's outputs and the targets (plus the
    `train.l2` penalty), one optimizer step; logs `loss` and the task's metric."""

    def logged(self, task_kind: str) -> tuple[str, ...]:
        return ("loss", metric_name(task_kind))

    def meter(self, state: LoopState) -> EpochMetrics:
        return EpochMetrics(state.task.kind)

    def target(self, xb: Tensor, yb: Tensor) -> Tensor:
        """What the outputs are compared with: the labels (a reconstruction step: the inputs)."""
        return yb

    def train_batch(self, state: LoopState, xb: Tensor, yb: Tensor, meter: EpochMetrics) -> None:
        target = self.target(xb, yb)
        with state.precision.autocast(state.device):
            outputs = state.model(xb).float()
            data_loss = state.loss_fn(outputs, target)
        cfg = state.cfg
        loss = data_loss + cfg.l2 * l2_penalty(state.penalized) if cfg.l2 else data_loss
        backward_and_step(state, loss, state.optimizer, state.trainable)
        meter.update(data_loss, outputs, target)

    def eval_batch(self, state: LoopState, xb: Tensor, yb: Tensor, meter: EpochMetrics) -> None:
        target = self.target(xb, yb)
        with state.precision.autocast(state.device):
            outputs = state.model(xb).float()
            meter.update(state.loss_fn(outputs, target), outputs, target)


class ReconstructionStep(SupervisedStep):
    """Anomaly autoencoders: the outputs are compared with the inputs (the task's loss is the
    mean squared reconstruction error); logs `loss` and `mae`, the mean absolute
    reconstruction error per input value, summed on the device as batches go."""

    def logged(self, task_kind: str) -> tuple[str, ...]:
        return ("loss", "mae")

    def meter(self, state: LoopState) -> ReconstructionMeter:
        return ReconstructionMeter()

    def target(self, xb: Tensor, yb: Tensor) -> Tensor:
        return xb


class ReconstructionMeter:
    """Sums of the batch losses and absolute errors, weighted by batch size; one sync at the end."""

    def __init__(self) -> None:
        self.samples = 0
        self.sums: Tensor | None = None

    def update(self, loss: Tensor, outputs: Tensor, target: Tensor) -> None:
        n = len(target)
        batch = torch.stack([loss.detach().float() * n,
                             (outputs.detach() - target).abs().mean().float() * n])
        self.sums = batch if self.sums is None else self.sums + batch
        self.samples += n

    def result(self, prefix: str = "") -> dict[str, float]:
        loss, mae = (float("nan"),) * 2 if self.sums is None else (self.sums / self.samples).tolist()
        return {f"{prefix}loss": loss, f"{prefix}mae": mae}


def step_for(task_kind: str) -> Step:
    """The default step of a task kind: reconstruction for anomaly detection, else supervised.

    Example:
        >>> type(step_for("anomaly")).__name__, type(step_for("binary")).__name__
        ('ReconstructionStep', 'SupervisedStep')
    """
    return ReconstructionStep() if task_kind == "anomaly" else SupervisedStep()


def backward_and_step(state: LoopState, loss: Tensor, optimizer: torch.optim.Optimizer,
                      params: list[Tensor]) -> None:
    """Zero the gradients, back-propagate `loss`, clip to `train.grad_clip` and step
    `optimizer` (through the GradScaler when float16 runs on CUDA)."""
    clip = state.cfg.grad_clip
    optimizer.zero_grad(set_to_none=True)
    if state.scaler is None:
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        return
    state.scaler.scale(loss).backward()  # float16: scale the loss so gradients do not underflow
    if clip:
        state.scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(params, clip)
    state.scaler.step(optimizer)
    state.scaler.update()
