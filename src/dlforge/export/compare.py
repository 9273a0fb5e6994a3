"""How far an exported model is from the PyTorch one: output differences and test metrics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from dlforge.evaluate.metrics import evaluate_scores
from dlforge.export.source import ExportSource
from dlforge.models.scores import predict_scores

BATCH_SIZE = 256


@torch.inference_mode()
def max_abs_diff(reference: nn.Module, candidate: nn.Module, x: torch.Tensor,
                 batch_size: int = BATCH_SIZE) -> float:
    """Largest absolute difference between the raw outputs of two models on `x`, batch by batch.

    Batches of `batch_size` and a smaller last one also check that the batch size is free.
    NaN when any output (of either model) is NaN, so that ``diff > atol`` checks cannot miss it.
    """
    worst = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        ref, got = reference(xb).float(), candidate(xb).float()
        assert ref.shape == got.shape, (ref.shape, got.shape)
        diff = float((ref - got).abs().max()) if ref.numel() else 0.0
        if math.isnan(diff):  # Python's max(0.0, nan) is 0.0: it would hide the NaN
            return math.nan
        worst = max(worst, diff)
    return worst


def split_metrics(module: nn.Module, source: ExportSource) -> dict[str, float] | None:
    """The headline test metrics of `module` (accuracy, macro F1, ...; MAE for regression),
    with the bundle's decision threshold; None without a test split or for the autoencoder."""
    if source.test is None or source.outputs != "logits":
        return None
    task = source.bundle.task
    scores = predict_scores(module, source.test.x, task, batch_size=BATCH_SIZE)
    metrics = evaluate_scores(task, source.test.y, scores, source.bundle.threshold)
    return {str(name): float(value) for name, value in metrics["headline"]}


def metric_drop(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, Any] | None:
    """``before - after`` per metric: positive is a loss for scores (accuracy, F1), a gain for
    errors (MAE, RMSE)."""
    if before is None or after is None:
        return None
    return {name: float(np.float64(before[name]) - np.float64(after[name])) for name in before}
