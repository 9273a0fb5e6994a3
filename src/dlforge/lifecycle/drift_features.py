"""The features drift is measured on, computed from PREPROCESSED inputs and the model.

One function serves the reference (training split, at registration), `dlforge drift --data`
and the server's sample of served inputs, so the three always measure the same things:

- tables: each numeric column (scaled; scaling does not change a distribution's shape) and
  each categorical column (its one-hot block read back as the category, ``<unseen>`` for a
  category training never saw), or the principal components when preprocessing projects;
- images: each image's mean and standard deviation of pixel intensity, and its mean per
  channel (colour images);
- texts: length in tokens (up to ``maxlen``) and vocabulary coverage (share of tokens known);
- every classifier and regressor (not an anomaly autoencoder or a GAN: `model_features`): the
  penultimate layer (the input of the last linear layer) projected on the principal
  components fitted on the training split (``emb_pc1``...), and the predictions: the
  predicted class and its score (classification), the value (regression), the number of
  labels on (multilabel).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dlforge.data.preprocess.text import PAD, START, UNK
from dlforge.models.scores import labels_from_scores, predict_scores

if TYPE_CHECKING:
    from dlforge.data.dataset import TaskSpec
    from dlforge.data.preprocess import Preprocessor

UNSEEN = "<unseen>"
PREDICTION_KINDS = ("multiclass", "binary", "multilabel", "regression")


@dataclass(frozen=True)
class Feature:
    """One drift feature's values: ``kind`` is "numeric" (floats) or "categorical" (strings)."""

    kind: str
    values: np.ndarray


def input_features(x: np.ndarray, preprocessor: Preprocessor) -> dict[str, Feature]:
    """The input features of preprocessed `x` (see the module docstring).

    Example:
        >>> pre = ImagePreprocessor(ImagePreprocess()).fit(images)      # doctest: +SKIP
        >>> sorted(input_features(pre.transform(images), pre))          # doctest: +SKIP
        ['pixel_mean', 'pixel_std']
    """
    if preprocessor.kind == "image":
        return _image_features(x)
    if preprocessor.kind == "text":
        return _text_features(x)
    return _table_features(x, preprocessor)


def model_features(x: np.ndarray, model: nn.Module, task: TaskSpec, threshold: Any,
                   projection: dict[str, list] | None) -> tuple[dict[str, Feature], np.ndarray | None]:
    """The prediction features of `x`, and the penultimate-layer embedding (None if the model
    has no linear layer), projected by `projection` when given (``mean``, ``components``).

    One forward pass gives both: a hook on the last linear layer keeps its input, from this
    thread's passes only (a server's inference thread may run the same model meanwhile). A
    task whose outputs are not predictions of these kinds, or a model that does not predict
    (`predicts = False`: a GAN generates), has no model features.
    """
    if task.kind not in PREDICTION_KINDS or not getattr(model, "predicts", True):
        return {}, None
    last = _last_linear(model)
    captured: list[torch.Tensor] = []
    me = threading.get_ident()

    def keep(_module: nn.Module, args: tuple, _out: torch.Tensor) -> None:
        if threading.get_ident() == me:
            captured.append(args[0].detach().flatten(1).float().cpu())

    hook = None if last is None else last.register_forward_hook(keep)
    try:
        scores = predict_scores(model, torch.from_numpy(np.ascontiguousarray(x)), task, batch_size=256)
    finally:
        if hook is not None:
            hook.remove()
    features = _prediction_features(scores, task, threshold)
    embedding = torch.cat(captured).numpy().astype(np.float64) if captured else None
    if embedding is not None and projection is not None:
        projected = (embedding - np.asarray(projection["mean"])) @ np.asarray(projection["components"]).T
        features |= {f"emb_pc{i + 1}": Feature("numeric", projected[:, i]) for i in range(projected.shape[1])}
    return features, embedding


def _image_features(x: np.ndarray) -> dict[str, Feature]:
    flat = x.reshape(len(x), -1).astype(np.float64)
    features = {"pixel_mean": Feature("numeric", flat.mean(axis=1)),
                "pixel_std": Feature("numeric", flat.std(axis=1))}
    if x.ndim == 4 and x.shape[1] > 1:
        per_channel = x.reshape(len(x), x.shape[1], -1).astype(np.float64).mean(axis=2)
        features |= {f"channel{c}_mean": Feature("numeric", per_channel[:, c]) for c in range(x.shape[1])}
    return features


def _text_features(ids: np.ndarray) -> dict[str, Feature]:
    tokens = (ids != PAD) & (ids != START)
    length = tokens.sum(axis=1)
    known = (tokens & (ids != UNK)).sum(axis=1)
    coverage = np.where(length > 0, known / np.maximum(length, 1), 1.0)
    return {"length": Feature("numeric", length.astype(np.float64)),
            "vocab_coverage": Feature("numeric", coverage.astype(np.float64))}


def _table_features(x: np.ndarray, preprocessor: Any) -> dict[str, Feature]:
    names = preprocessor.feature_names
    if preprocessor.pca is not None:
        return {name: Feature("numeric", x[:, i].astype(np.float64)) for i, name in enumerate(names)}
    features = {s["name"]: Feature("numeric", x[:, i].astype(np.float64))
                for i, s in enumerate(preprocessor.numeric)}
    start = len(preprocessor.numeric)
    for spec in preprocessor.categorical:
        block = x[:, start:start + len(spec["categories"])]
        start += len(spec["categories"])
        names = np.asarray([*map(str, spec["categories"]), UNSEEN], dtype=object)
        index = np.where(block.max(axis=1) > 0, block.argmax(axis=1), len(spec["categories"]))
        features[str(spec["name"])] = Feature("categorical", names[index])
    return features


def _prediction_features(scores: np.ndarray, task: TaskSpec, threshold: Any) -> dict[str, Feature]:
    if task.kind == "regression":
        values = scores if scores.ndim == 1 else scores.mean(axis=1)
        return {"prediction": Feature("numeric", values.astype(np.float64))}
    labels = labels_from_scores(task, scores, threshold)
    if task.kind == "multilabel":
        return {"labels_predicted": Feature("numeric", labels.sum(axis=1).astype(np.float64))}
    names = np.asarray(task.class_names, dtype=object)
    score = scores if scores.ndim == 1 else scores.max(axis=1)
    return {"predicted_class": Feature("categorical", names[labels.astype(np.int64)]),
            "score": Feature("numeric", score.astype(np.float64))}


def _last_linear(model: nn.Module) -> nn.Linear | None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None
