"""Multi-layer perceptron: flatten, a dense stack, a Linear head."""

from __future__ import annotations

import math

import torch
from torch import nn

from dlforge.config.schema import MLPConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU,
}


class MLP(nn.Module):
    """``Flatten -> [Linear -> BatchNorm? -> activation -> Dropout?] x len(hidden) -> Linear``.

    Batch norm sits before the activation (Ioffe & Szegedy); dropout after it.
    """

    family = "dense"

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, *, hidden: list[int],
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def chain(self) -> list[nn.Module]:
        """The layers whose composition is `forward` (pipeline stages cut this list)."""
        return [*self.body, self.head]


def build(cfg: MLPConfig, *, input_shape: tuple[int, ...], num_outputs: int,
          vocab_size: int | None = None) -> MLP:
    """Build an :class:`MLP` from ``cfg`` for samples of ``input_shape``."""
    return MLP(input_shape, num_outputs, hidden=list(cfg.hidden), activation=cfg.activation,
               dropout=cfg.dropout, batch_norm=cfg.batch_norm)
