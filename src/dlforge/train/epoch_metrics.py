"""Per-epoch loss and metric, accumulated on the device: no `.item()` sync per batch."""

from __future__ import annotations

import torch
from torch import Tensor


def metric_name(kind: str) -> str:
    """The history metric of a task kind: `mae` for regression, `accuracy` otherwise."""
    return "mae" if kind == "regression" else "accuracy"


class EpochMetrics:
    """Running sums of loss and metric over one epoch.

    Accuracy: multiclass argmax, binary logit > 0, multilabel the mean over every label of
    every sample. MAE for regression.
    """

    def __init__(self, kind: str, device: torch.device) -> None:
        self.kind = kind
        self.loss_sum = torch.zeros((), device=device)
        self.metric_sum = torch.zeros((), device=device)
        self.samples = 0
        self.elements = 0

    @torch.no_grad()
    def update(self, loss: Tensor, outputs: Tensor, target: Tensor) -> None:
        """Add one batch: its mean `loss`, the model `outputs` and the `target`."""
        n = target.shape[0]
        self.loss_sum += loss.detach().float() * n
        self.samples += n
        outputs = outputs.detach()
        if self.kind == "multiclass":
            hits = outputs.argmax(1) == target
        elif self.kind == "regression":
            self.metric_sum += (outputs.reshape(target.shape).float() - target).abs().sum()
            self.elements += target.numel()
            return
        else:  # binary (N, 1) logits vs (N,) targets; multilabel (N, K) vs (N, K)
            hits = (outputs.reshape(target.shape) > 0) == (target > 0.5)
        self.metric_sum += hits.sum()
        self.elements += hits.numel()

    def result(self, prefix: str = "") -> dict[str, float]:
        """`{prefix+'loss': ..., prefix+metric: ...}` with one device sync."""
        loss_sum, metric_sum = torch.stack([self.loss_sum, self.metric_sum]).tolist()
        return {
            f"{prefix}loss": loss_sum / max(self.samples, 1),
            f"{prefix}{metric_name(self.kind)}": metric_sum / max(self.elements, 1),
        }
