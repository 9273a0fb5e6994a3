"""Model outputs as scores: probabilities for classification, values for regression, the
reconstruction error for anomaly detection.

The task type decides the link function, exactly as it decided the loss: softmax for one
label among K, sigmoid for binary and for each of K independent labels, identity for regression.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from dlforge.errors import DataError

if TYPE_CHECKING:
    from dlforge.data.dataset import TaskSpec

DEFAULT_THRESHOLD = 0.5


def predict_scores(
    model: nn.Module,
    x: Tensor,
    task: TaskSpec,
    *,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Score preprocessed inputs with `model`, batch by batch, without gradients.

    The model is put in eval mode (dropout off, batch-norm running statistics) for the call
    and given back in the mode it came in, so calling this between epochs is harmless.

    Args:
        model: a dlforge model giving raw logits `(N, num_outputs)`.
        x: preprocessed inputs (float images/tables, int64 token ids for text).
        task: the task the model was built for.
        batch_size: samples per forward pass.
        device: where to run the model (it is moved there).

    Returns:
        float32 array: multiclass softmax `(N, K)`; binary sigmoid of the positive class
        `(N,)`; multilabel sigmoid `(N, K)`; regression values `(N,)`, or `(N, T)` for
        several targets; anomaly the mean squared reconstruction error `(N,)`.

    Example:
        >>> predict_scores(model, x_test, TaskSpec("binary", ("ok", "ng")))  # doctest: +SKIP
        array([0.03, 0.91, ...], dtype=float32)
    """
    device = torch.device(device)
    was_training = model.training
    # Both calls walk every module (~0.5 ms for the Basic CNN): skip them when nothing changes,
    # since a service calls this once per request.
    first = next(model.parameters(), None)
    if first is not None and first.device != device:
        model.to(device)
    if was_training:
        model.eval()
    chunks = []
    try:
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                xb = x[start:start + batch_size].to(device)
                out = model(xb).float()
                score = reconstruction_error(out, xb) if task.kind == "anomaly" else _link(out, task.kind)
                chunks.append(score.cpu())
    finally:
        if was_training:
            model.train()
    if not chunks:
        width = () if task.kind in ("binary", "regression", "anomaly") else (task.num_outputs,)
        return np.zeros((0, *width), dtype=np.float32)
    return torch.cat(chunks).numpy()


def reconstruction_error(reconstruction: Tensor, x: Tensor) -> Tensor:
    """Mean squared error of each sample's reconstruction `(N,)`: the anomaly score.

    Example:
        >>> reconstruction_error(torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2))
        tensor([1., 1.])
    """
    return (reconstruction - x.float()).pow(2).flatten(1).mean(dim=1)


def _link(logits: Tensor, kind: str) -> Tensor:
    """Turn raw model outputs into scores; `(N, 1)` heads become `(N,)`."""
    if kind == "multiclass":
        return torch.softmax(logits, dim=1)
    if logits.ndim == 2 and logits.shape[1] == 1 and kind in ("binary", "regression"):
        logits = logits[:, 0]
    if kind == "regression":
        return logits
    return torch.sigmoid(logits)


def labels_from_scores(
    task: TaskSpec, scores: np.ndarray, threshold: float | Sequence[float] | None = None
) -> np.ndarray:
    """Decide labels from scores.

    A sample is positive when its score is at or above the threshold (`>=`, the convention of
    scikit-learn's `precision_recall_curve`, so a threshold chosen there reproduces its
    precision and recall).

    Args:
        task: the task the scores belong to.
        scores: as returned by `predict_scores`.
        threshold: binary and anomaly: one number; multilabel: one number for every label or
            one per label; or the `Threshold` that `choose_threshold` returned; default 0.5.
            Ignored for multiclass (argmax) and regression.

    Returns:
        int64 class indices `(N,)` (multiclass, binary, anomaly: 1 = anomaly), int64 0/1
        `(N, K)` (multilabel),
        or the scores unchanged (regression).

    Raises:
        DataError: a multilabel threshold list whose length differs from the number of labels.
    """
    scores = np.asarray(scores)
    threshold = getattr(threshold, "value", threshold)  # a Threshold from choose_threshold
    if task.kind == "regression":
        return scores
    if task.kind == "multiclass":
        return scores.argmax(axis=1).astype(np.int64)
    t = np.asarray(DEFAULT_THRESHOLD if threshold is None else threshold, dtype=np.float64)
    if task.kind == "multilabel" and t.ndim == 1 and t.shape[0] != scores.shape[1]:
        raise DataError(
            f"threshold: got {t.shape[0]} per-label thresholds for {scores.shape[1]} labels "
            f"({', '.join(task.class_names)}); give one per label or a single number"
        )
    return (scores >= t).astype(np.int64)


def check_finite(scores: np.ndarray, where: str) -> None:
    """Fail with advice when a diverged model produced NaN or infinite scores.

    Raises:
        DataError: naming how many scores are not finite and what to change.
    """
    bad = int(np.size(scores) - np.isfinite(scores).sum())
    if bad:
        raise DataError(
            f"{where}: {bad} of {np.size(scores)} model scores are NaN or infinite; training "
            f"diverged. Lower train.lr, set train.grad_clip, or standardize the inputs"
        )
