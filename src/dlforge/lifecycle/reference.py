"""Reference statistics of a model's TRAINING split, stored in its bundle as reference.json.

Built once at registration (`reference_for`), read back by `dlforge drift` and the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from dlforge.config.drift_schema import DriftConfig
from dlforge.lifecycle.drift_features import Feature, input_features, model_features
from dlforge.lifecycle.drift_stats import summarise

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig
    from dlforge.data.dataset import TaskSpec
    from dlforge.data.prepare import PreparedData
    from dlforge.data.preprocess import Preprocessor

FORMAT = 1
# Training rows summarised: enough for a 101-quantile sketch and tests with a reference of
# this size, small enough that registration stays quick (one forward pass over them).
MAX_ROWS = 10_000


def build_reference(x: np.ndarray, *, model: nn.Module, preprocessor: Preprocessor, task: TaskSpec,
                    threshold: Any = None, cfg: DriftConfig | None = None) -> dict[str, Any]:
    """The reference of preprocessed training inputs `x`: every feature's summary and the
    embedding projection (PCA of the penultimate layer, fitted on `x`).

    Args:
        x: preprocessed training inputs (as the model takes them).
        model: the trained model.
        preprocessor: the fitted preprocessor.
        task: the model's task.
        threshold: the decision threshold (binary, multilabel).
        cfg: `embedding_dims` is read from it.

    Returns:
        the JSON document ``{"format", "modality", "rows", "sample_shape", "columns",
        "embedding", "features": {name: summary}}``.

    Example:
        >>> ref = build_reference(pre.transform(train_x), model=net, preprocessor=pre,
        ...                       task=task)                                # doctest: +SKIP
        >>> sorted(ref["features"])[:3]                                     # doctest: +SKIP
        ['emb_pc1', 'emb_pc2', 'emb_pc3']
    """
    cfg = cfg or DriftConfig()
    features, embedding = model_features(x, model, task, threshold, projection=None)
    projection = None if embedding is None else _pca(embedding, cfg.embedding_dims)
    if projection is not None:
        projected = (embedding - np.asarray(projection["mean"])) @ np.asarray(projection["components"]).T
        features |= {f"emb_pc{i + 1}": Feature("numeric", projected[:, i]) for i in range(projected.shape[1])}
    features = input_features(x, preprocessor) | features
    return {"format": FORMAT, "modality": preprocessor.kind, "rows": int(len(x)),
            "sample_shape": [int(s) for s in x.shape[1:]],
            "columns": _columns(preprocessor), "embedding": projection,
            "features": {name: summarise(f) for name, f in features.items()}}


def reference_for(model: nn.Module, data: PreparedData, cfg: RunConfig, threshold: Any) -> dict[str, Any]:
    """The reference of a run's training split (at most `MAX_ROWS` rows, drawn with the run's
    seed; before balancing, so the class mix is the data's own)."""
    raw = data.splits.train.x
    rows = np.random.default_rng(cfg.seed).permutation(len(raw))[:MAX_ROWS]
    rows.sort()
    subset = raw.iloc[rows] if hasattr(raw, "iloc") else raw[rows]
    x = data.preprocessor.transform(subset)
    return build_reference(x, model=model, preprocessor=data.preprocessor, task=data.task,
                           threshold=threshold, cfg=cfg.drift)


def _pca(embedding: np.ndarray, dims: int) -> dict[str, list] | None:
    """Mean and the top `dims` principal axes of `embedding` (rows are samples)."""
    dims = min(dims, embedding.shape[1], len(embedding))
    if dims < 1:
        return None
    mean = embedding.mean(axis=0)
    _, _, vt = np.linalg.svd(embedding - mean, full_matrices=False)
    # fix each axis's sign (largest loading positive) so the same data gives the same features
    signs = np.sign(vt[:dims][np.arange(dims), np.abs(vt[:dims]).argmax(axis=1)])
    return {"mean": mean.tolist(), "components": (vt[:dims] * signs[:, None]).tolist()}


def _columns(preprocessor: Any) -> list[str] | None:
    if preprocessor.kind != "table":
        return None
    return [str(s["name"]) for s in preprocessor.numeric + preprocessor.categorical]
