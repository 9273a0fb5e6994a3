"""Regression outputs in the target's units, learned on standardized targets.

A regression network with default initialisation outputs values near 0 with spread near 1;
targets such as a disease-progression score (mean 152, std 77) then take many epochs in which
training mostly moves the head's bias. `TargetScale` wraps the network as
``y = mean + std * net(x)`` with `mean` and `std` fixed buffers fitted on the TRAINING
targets, so the network learns standardized targets (what an optimizer's default learning
rate suits) while its outputs (metrics, predictions, exports) stay in the target's units. The
training loss is measured in standard deviations of the targets (`build_loss(target_std=...)`),
so learning rate, weight decay and gradient clipping mean the same whatever the target scale. The network's head starts at zero, so training starts from predicting the training mean
(the naive baseline) rather than from noise of the target's spread. The buffers are part of the
state dict, so a saved model predicts the same everywhere.

Measured on diabetes (test MAE after 30 epochs; ridge regression 46.1): a [8]-unit MLP 147.0
unscaled, 50.7 scaled, 46.6 scaled with the zero head; a [64, 32] MLP 57.5, 46.1 and 47.0.
"""

from __future__ import annotations

import torch
from torch import nn


class TargetScale(nn.Module):
    """``mean + std * net(x)``, one mean and std per regression target."""

    def __init__(self, net: nn.Module, num_outputs: int) -> None:
        super().__init__()
        self.net = net
        self.family = net.family
        self.cpu_bf16 = getattr(net, "cpu_bf16", False)
        self.register_buffer("mean", torch.zeros(num_outputs))
        self.register_buffer("std", torch.ones(num_outputs))
        head = getattr(net, "head", None)
        if isinstance(head, nn.Linear):  # start at the training mean ("init well"), not at noise
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.std + self.mean

    def chain(self) -> list[nn.Module]:
        """The network's chain of layers (`net.chain()`), then the rescaling."""
        return [*self.net.chain(), Rescale(self.mean, self.std)]


class Rescale(nn.Module):
    """``x * std + mean`` with the fitted (fixed) tensors of a `TargetScale`, held as plain
    attributes: the `TargetScale` owns and saves them."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def fit_target_scale(model: nn.Module, y_train: torch.Tensor) -> nn.Module:
    """Set a `TargetScale` model's mean and std from the training targets `(N,)` or `(N, T)`;
    other models are returned unchanged. A constant target keeps std 1."""
    if not isinstance(model, TargetScale):
        return model
    y = torch.as_tensor(y_train, dtype=torch.float64).reshape(len(y_train), -1)
    std = y.std(dim=0, unbiased=False) if len(y) > 1 else torch.ones(y.shape[1], dtype=torch.float64)
    model.mean.copy_(y.mean(dim=0).to(model.mean))
    model.std.copy_(torch.where(std > 0, std, torch.ones_like(std)).to(model.std))
    return model
