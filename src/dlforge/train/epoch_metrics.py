"""Per-epoch loss and metric, accumulated on the device: no `.item()` sync per batch."""

from __future__ import annotations

import torch
from torch import Tensor


def metric_name(kind: str) -> str:
    """The history metric of a task kind: `mae` for regression, `accuracy` otherwise."""
    return "mae" if kind == "regression" else "accuracy"


class EpochMetrics:
    """Loss and metric over one epoch.

    Accuracy: multiclass argmax, binary logit > 0, multilabel the mean over every label of
    every sample. MAE for regression. Each batch only keeps references to its detached loss,
    outputs and targets (no op, no sync); everything is reduced once in `result`, which keeps
    the loop's per-batch overhead to a few microseconds.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.losses: list[Tensor] = []
        self.outputs: list[Tensor] = []
        self.targets: list[Tensor] = []

    def update(self, loss: Tensor, outputs: Tensor, target: Tensor) -> None:
        """Add one batch: its mean `loss`, the model `outputs` and the `target`."""
        self.losses.append(loss.detach())
        self.outputs.append(outputs.detach())
        self.targets.append(target)

    @property
    def samples(self) -> int:
        """Samples seen so far."""
        return sum(len(t) for t in self.targets)

    @torch.no_grad()
    def result(self, prefix: str = "") -> dict[str, float]:
        """`{prefix+'loss': ..., prefix+metric: ...}` with one device sync."""
        name = f"{prefix}{metric_name(self.kind)}"
        if not self.losses:
            return {f"{prefix}loss": float("nan"), name: float("nan")}
        target = torch.cat(self.targets)
        outputs = torch.cat(self.outputs).float()
        sizes = torch.tensor([len(t) for t in self.targets], device=target.device)
        loss = (torch.stack(self.losses).float() * sizes).sum() / len(target)
        if self.kind == "multiclass":
            metric = (outputs.argmax(1) == target).float().mean()
        elif self.kind == "regression":
            metric = (outputs.reshape(target.shape) - target).abs().mean()
        else:  # binary (N, 1) logits vs (N,) targets; multilabel (N, K) vs (N, K)
            metric = ((outputs.reshape(target.shape) > 0) == (target > 0.5)).float().mean()
        loss_value, metric_value = torch.stack([loss, metric]).tolist()
        return {f"{prefix}loss": loss_value, name: metric_value}
