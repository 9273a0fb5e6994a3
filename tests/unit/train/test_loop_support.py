"""Shared helpers for the train tests (no tests here): tiny data, loaders and models."""

from __future__ import annotations

import torch
from torch import nn

from dlforge.config.schema import TrainConfig
from dlforge.data.dataset import TaskSpec

TASKS = {
    "multiclass": TaskSpec("multiclass", ("a", "b", "c")),
    "binary": TaskSpec("binary", ("ok", "ng")),
    "multilabel": TaskSpec("multilabel", ("x", "y", "z")),
    "regression": TaskSpec("regression", ("target",)),
}


def make_data(kind: str, n: int = 64, features: int = 8, seed: int = 0):
    """Synthetic, learnable data for one task kind."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    if kind == "multiclass":
        y = x[:, :3].argmax(1)
    elif kind == "binary":
        y = (x[:, 0] + x[:, 1] > 0).float()
    elif kind == "multilabel":
        y = (x[:, :3] > 0).float()
    else:
        y = x[:, 0] * 2.0 + x[:, 1]
    return x, y


def make_loaders(x, y, *, batch_size=16, seed=0, val=None):
    from dlforge.data.loader import BatchLoader, Loaders

    train = BatchLoader(x, y, batch_size=batch_size, shuffle=True, seed=seed)
    xv, yv = val if val is not None else (x, y)
    return Loaders(train=train, val=BatchLoader(xv, yv, batch_size=64))


def tiny_model(kind: str, features: int = 8, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    outputs = {"multiclass": 3, "binary": 1, "multilabel": 3, "regression": 1}[kind]
    return nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(16, outputs))


def train_cfg(**overrides) -> TrainConfig:
    base = {"epochs": 5, "batch_size": 16, "lr": 0.01, "early_stopping": None}
    return TrainConfig(**{**base, **overrides})
