"""The mutable state of one call to `fit`, shared with callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dlforge.train.precision import FP32, Precision

if TYPE_CHECKING:
    from dlforge.config.schema import TrainConfig
    from dlforge.data.dataset import TaskSpec
    from dlforge.train.callbacks import Callback
    from dlforge.train.ema import WeightAverage
    from dlforge.train.losses import TaskLoss
    from dlforge.train.schedules import LRSchedule
    from dlforge.train.steps import Step


@dataclass
class LoopState:
    """What the loop and its callbacks share.

    Attributes:
        epoch: the last completed epoch, counted from 0 (-1 before the first).
        history: one row per completed epoch (see `fit`).
        lr_history: the learning rate used by every optimizer step.
        stop_reason: set by a callback to stop after the current epoch.
        validated: whether the current epoch was validated (its row has the `val_` metrics;
            `train.val_every`); False for every epoch without a validation split.
        best_checkpoint: path of the best checkpoint written so far, if any.
        position: where a checkpoint written inside epoch `epoch + 1` stood (train/mid_epoch.py);
            the next epoch resumes there.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    loss_fn: TaskLoss
    cfg: TrainConfig
    task: TaskSpec
    device: torch.device
    seed: int = 0
    callbacks: list[Callback] = field(default_factory=list)
    channels_last: bool = False
    precision: Precision = FP32  # autocast dtype of the forward pass (train/precision.py)
    scaler: Any = None  # torch.amp.GradScaler when float16 runs on CUDA
    penalized: list[torch.Tensor] = field(default_factory=list)  # weights under cfg.l2
    trainable: list[torch.Tensor] = field(default_factory=list)  # what the optimizer steps
    step: Step | None = None  # what each batch does (train/steps.py); set by the loop
    ema: WeightAverage | None = None  # train.ema: the weight average (train/ema.py)
    epoch: int = -1
    history: list[dict[str, float]] = field(default_factory=list)
    lr_history: list[float] = field(default_factory=list)
    stop_reason: str | None = None
    validated: bool = True
    best_checkpoint: Path | None = None
    position: dict[str, Any] | None = None
