"""Per-sample margins of the training samples over epochs, for the area under the margin
(Pleiss et al. 2020): a callback of the one fit loop.

The loader yields `(x, y)` batches without sample ids, and augments them; so instead of
reading margins off the training forward passes, the callback scores the training samples it
was given, in their order, in eval mode at the end of every epoch. Margins are then free of
augmentation and dropout noise, and each sample keeps its id (its position); the price is one
extra forward pass over the training set per epoch, run as validation runs (inference mode,
the run's memory layout; float32, so margins do not depend on `train.precision`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dlforge.train.callbacks import Callback

if TYPE_CHECKING:
    from dlforge.train.state import LoopState


class MarginTracker(Callback):
    """Sum, over epochs, of each sample's margin: its label's logit minus the largest other
    logit (a binary model's single logit z counts as the logits (0, z)).

    Args:
        x: the training inputs, one row per sample (preprocessed, unaugmented).
        y: their integer labels.
        batch_size: samples per forward pass.

    Example:
        >>> tracker = MarginTracker(*data.training_samples(), batch_size=256)  # doctest: +SKIP
        >>> train_candidate(TrainingPlan(cfg, data, callbacks=(tracker,)), device=cpu)  # doctest: +SKIP
        >>> tracker.mean_margin()[:3]  # doctest: +SKIP
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> None:
        self.x, self.y, self.batch_size = x, y.long(), batch_size
        self.on_fit_start(None)

    def on_fit_start(self, state: LoopState | None) -> None:
        self.epochs = 0
        self.margin_sum = torch.zeros(len(self.y), dtype=torch.float64)
        self.logit_sum: torch.Tensor | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState) -> None:
        logits = self._logits(state.model, state.device, state.channels_last).double()
        self.margin_sum += margins(logits, self.y)
        self.logit_sum = logits if self.logit_sum is None else self.logit_sum + logits
        self.epochs += 1

    def mean_margin(self) -> np.ndarray:
        """The area under the margin: each sample's margin averaged over the epochs seen."""
        return (self.margin_sum / max(self.epochs, 1)).numpy()

    def mean_logits(self) -> np.ndarray:
        """Each sample's logits `(N, K)` averaged over epochs (binary: `(N, 2)`)."""
        if self.logit_sum is None:
            return np.zeros((len(self.y), 0))
        return (self.logit_sum / self.epochs).numpy()

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "margin_sum": self.margin_sum, "logit_sum": self.logit_sum}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs = int(state_dict["epochs"])
        self.margin_sum, self.logit_sum = state_dict["margin_sum"], state_dict["logit_sum"]

    @torch.inference_mode()
    def _logits(self, model: torch.nn.Module, device: torch.device,
                channels_last: bool = False) -> torch.Tensor:
        was_training = model.training
        model.eval()
        try:
            out = [model(_layout(self.x[i:i + self.batch_size].to(device), channels_last)).float().cpu()
                   for i in range(0, len(self.x), self.batch_size)]
        finally:
            model.train(was_training)
        logits = torch.cat(out) if out else torch.zeros((0, 1))
        return torch.cat([torch.zeros_like(logits), logits], dim=1) if logits.shape[1] == 1 else logits


def _layout(xb: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """`xb` in the memory layout the run's model computes in (channels_last for images)."""
    return xb.contiguous(memory_format=torch.channels_last) if channels_last and xb.ndim == 4 else xb


def margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Assigned logit minus the largest other logit, per row.

    Example:
        >>> margins(torch.tensor([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0]]), torch.tensor([0, 2])).tolist()
        [1.0, -2.0]
    """
    rows = torch.arange(len(y))
    assigned = logits[rows, y]
    others = logits.clone()
    others[rows, y] = -torch.inf
    return assigned - others.max(dim=1).values
