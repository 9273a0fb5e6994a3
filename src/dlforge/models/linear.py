"""Linear model: flatten, then one Linear layer (logistic or linear regression)."""

from __future__ import annotations

import math

import torch
from torch import nn

from dlforge.config.schema import LinearConfig


class LinearModel(nn.Module):
    """``Flatten -> Linear(prod(input_shape), num_outputs)``; outputs raw logits."""

    family = "dense"

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.head = nn.Linear(math.prod(input_shape), num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(x))


def build(cfg: LinearConfig, *, input_shape: tuple[int, ...], num_outputs: int,
          vocab_size: int | None = None) -> LinearModel:
    """Build a :class:`LinearModel` for samples of ``input_shape``."""
    return LinearModel(input_shape, num_outputs)
