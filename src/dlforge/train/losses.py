"""The task type picks the loss: softmax cross-entropy for one label, sigmoid BCE for binary and
multi-label, MSE or MAE for regression. Also the explicit L2 penalty and the label-range check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from dlforge.errors import DataError

if TYPE_CHECKING:
    from dlforge.config.schema import TrainConfig
    from dlforge.data.dataset import TaskSpec


class TaskLoss(nn.Module):
    """Wraps a torch criterion and fits model outputs and targets to it.

    Binary heads give `(N, 1)` logits and regression heads `(N, 1)` values for `(N,)` targets;
    both are flattened here so that models and loaders need not care.
    """

    def __init__(self, criterion: nn.Module, kind: str, target_std: Tensor | None = None,
                 smoothing: float = 0.0) -> None:
        super().__init__()
        self.criterion = criterion
        self.kind = kind
        self.smoothing = smoothing  # binary / multilabel: 0/1 targets pulled toward 0.5
        self.register_buffer("target_std", target_std, persistent=False)

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        if self.kind == "multiclass":
            return self.criterion(outputs, target.long())
        if outputs.ndim == 2 and outputs.shape[1] == 1 and target.ndim == 1:
            outputs = outputs.squeeze(1)
        target = target.to(outputs.dtype)
        if self.smoothing:
            target = target * (1 - self.smoothing) + self.smoothing / 2
        if self.target_std is not None:  # regression in standard deviations of each target
            outputs, target = outputs / self.target_std, target / self.target_std
        return self.criterion(outputs, target)


def build_loss(
    task: TaskSpec, cfg: TrainConfig,
    class_weights: Sequence[float] | np.ndarray | torch.Tensor | None = None,
    target_std: torch.Tensor | None = None,
) -> TaskLoss:
    """Build the loss for a task.

    Args:
        task: what is predicted; `task.kind` picks the criterion.
        cfg: the train section (`loss` for regression, `label_smoothing` for classification:
            multiclass targets become 1 - s + s/K and s/K, binary and multi-label targets
            1 - s/2 and s/2).
        class_weights: one weight per class (from `data.balance`). multiclass: CrossEntropy
            weights; binary: `pos_weight = w[1] / w[0]`; multilabel: per-label `pos_weight`;
            ignored for regression.
        target_std: regression: the training targets' standard deviation per target (a
            `TargetScale` model's `std`); the loss is then measured on standardized values, so
            learning rates, weight decay and gradient clipping mean the same for any target
            scale. None measures it in the target's units.

    Returns:
        A module called as `loss(outputs, targets)`, giving the mean loss of the batch.

    Example:
        >>> from dlforge.config.schema import TrainConfig
        >>> from dlforge.data.dataset import TaskSpec
        >>> build_loss(TaskSpec("binary", ("ok", "ng")), TrainConfig(), [0.6, 3.0]).criterion
        BCEWithLogitsLoss()
    """
    w = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
    if task.kind == "multiclass":
        criterion: nn.Module = nn.CrossEntropyLoss(weight=w, label_smoothing=cfg.label_smoothing)
    elif task.kind == "binary":
        criterion = nn.BCEWithLogitsLoss(pos_weight=None if w is None else (w[1] / w[0]).reshape(1))
    elif task.kind == "multilabel":
        criterion = nn.BCEWithLogitsLoss(pos_weight=w)
    else:
        criterion = nn.L1Loss() if cfg.loss == "mae" else nn.MSELoss()
        if target_std is not None:
            target_std = target_std.detach().clone().float()
            return TaskLoss(criterion, task.kind, target_std)
    smoothing = cfg.label_smoothing if task.kind in ("binary", "multilabel") else 0.0
    return TaskLoss(criterion, task.kind, smoothing=smoothing)


def penalized_weights(model: nn.Module) -> list[Tensor]:
    """The parameters an L2 penalty applies to: weight matrices and kernels, not biases or norms.

    Biases and batch-norm scales are 1-D; shrinking them does not reduce capacity, only fit.
    """
    return [p for p in model.parameters() if p.requires_grad and p.ndim > 1]


def l2_penalty(weights: Sequence[Tensor]) -> Tensor:
    """Sum of squared entries of `weights` (multiply by `cfg.l2` before adding to the loss)."""
    return torch.stack([w.pow(2).sum() for w in weights]).sum()


def check_labels(y: Tensor, task: TaskSpec) -> None:
    """Fail before training when labels do not fit the model's head.

    Args:
        y: all training (or validation) targets.
        task: the task the head was built for.

    Raises:
        DataError: a class index outside the head, or binary/multilabel targets not 0/1.
    """
    if task.kind == "regression" or y.numel() == 0:
        return
    k = task.num_outputs
    if task.kind == "multiclass" and y.ndim == 1:
        lo, hi = int(y.min()), int(y.max())
        bad = hi if hi >= k else lo
        if lo < 0 or hi >= k:
            raise DataError(
                f"data: label {bad} is outside the model head's range 0..{k - 1} "
                f"(task multiclass with {k} classes)"
            )
        return
    if task.kind in ("binary", "multilabel"):
        bad_values = torch.unique(y[(y != 0) & (y != 1)])
        if bad_values.numel():
            shown = ", ".join(f"{v:g}" for v in bad_values[:5].tolist())
            raise DataError(
                f"data: {task.kind} labels must be 0 or 1; got {shown} "
                f"(task {task.kind} with classes {', '.join(task.class_names)})"
            )
    if task.kind == "multilabel" and (y.ndim != 2 or y.shape[1] != k):
        raise DataError(
            f"data: multilabel targets have shape {tuple(y.shape)}; the model head has {k} "
            f"labels ({', '.join(task.class_names)})"
        )
