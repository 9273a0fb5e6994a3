"""Handle class imbalance on the TRAINING split only.

Validation and test are never passed here: the test split keeps the real-world ratio
(`data.test_distribution: natural`), so its precision and recall mean what they will mean in
production. Methods: resample the rows (oversample, undersample), or keep them and weight the
loss (class_weight) or the sampler (weighted_sampler).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from dlforge.data.dataset import Dataset
from dlforge.errors import DataError

if TYPE_CHECKING:
    from dlforge.config.schema import BalanceConfig

_EPS = 1e-9  # 0.3 * 10 == 3.0000000000000004 must not round up to 4


@dataclass
class Balanced:
    """The training set after imbalance handling.

    Attributes:
        dataset: the (possibly resampled) training set.
        class_weights: class_weight: one loss weight per class, scikit-learn's "balanced"
            `n / (K * count)`. For binary it has 2 values; `pos_weight` of a BCE loss is
            `class_weights[1] / class_weights[0]` (= negatives / positives). Else None.
        sample_weights: weighted_sampler: one weight per row of `dataset`, `1 / count` of its
            class, so every class is drawn equally often. Else None.
        before: rows per class name before; for multilabel, positives per label.
        after: rows per class name in `dataset`.
    """

    dataset: Dataset
    class_weights: np.ndarray | None
    sample_weights: np.ndarray | None
    before: dict[str, int]
    after: dict[str, int]


def balance(train: Dataset, cfg: BalanceConfig, seed: int) -> Balanced:
    """Apply `balance.method` to the training set.

    Args:
        train: the TRAINING split (never validation or test).
        cfg: the balance section: `method` and `ratio`.
        seed: seed of the resampling; the same seed gives the same rows.

    Returns:
        Balanced: oversample appends random duplicates (with replacement) of every class below
        `ceil(ratio x largest)` up to that count; undersample keeps a random
        `floor(smallest / ratio)` rows of every class above it; class_weight and
        weighted_sampler leave the rows alone and return weights.

    Raises:
        DataError: a method other than none for a multilabel or regression task, or a class
            with no training rows.

    Example:
        >>> out = balance(train, BalanceConfig(method="oversample"), seed=0)  # doctest: +SKIP
        >>> out.before, out.after  # doctest: +SKIP
        ({'ok': 90, 'defect': 10}, {'ok': 90, 'defect': 90})
    """
    before = class_counts(train)
    if cfg.method == "none":
        return Balanced(train, None, None, before, dict(before))
    if train.task.kind not in ("multiclass", "binary"):
        raise DataError(
            f"balance.method: {cfg.method!r} supports multiclass and binary tasks only "
            f"(got a {train.task.kind} task); set balance.method to none"
        )
    empty = [name for name, n in before.items() if n == 0]
    if empty:
        raise DataError(
            f"balance.method: {cfg.method!r} needs training rows of every class; classes "
            f"{empty} have none; add samples or drop them with data.classes"
        )
    rng = np.random.default_rng(seed)
    y = train.y
    counts = np.bincount(y, minlength=len(train.task.class_names))
    if cfg.method == "oversample":
        index = _oversample(y, counts, cfg.ratio, rng)
    elif cfg.method == "undersample":
        index = _undersample(y, counts, cfg.ratio, rng)
    elif cfg.method == "class_weight":
        weights = compute_class_weight("balanced", classes=np.arange(len(counts)), y=y)
        return Balanced(train, weights.astype(np.float32), None, before, dict(before))
    else:  # weighted_sampler
        return Balanced(train, None, 1.0 / counts[y], before, dict(before))
    dataset = train.subset(index)
    return Balanced(dataset, None, None, before, class_counts(dataset))


def class_counts(ds: Dataset) -> dict[str, int]:
    """Rows per class name (single-label), positives per label (multilabel), {} (regression)."""
    names = ds.task.class_names
    if ds.task.kind == "multilabel":
        return {name: int(n) for name, n in zip(names, np.asarray(ds.y).sum(axis=0), strict=True)}
    if ds.task.kind == "regression":
        return {}
    counts = np.bincount(np.asarray(ds.y, dtype=np.int64), minlength=len(names))
    return {name: int(counts[i]) for i, name in enumerate(names)}


def _oversample(
    y: np.ndarray, counts: np.ndarray, ratio: float, rng: np.random.Generator
) -> np.ndarray:
    """All rows, plus random repeats of each class short of `ceil(ratio x largest)`."""
    target = math.ceil(ratio * counts.max() - _EPS)
    extra = [
        rng.choice(np.flatnonzero(y == c), size=target - n, replace=True)
        for c, n in enumerate(counts) if n < target
    ]
    return np.concatenate([np.arange(len(y)), *extra])


def _undersample(
    y: np.ndarray, counts: np.ndarray, ratio: float, rng: np.random.Generator
) -> np.ndarray:
    """A random `floor(smallest / ratio)` rows of every class larger than that; the rest kept."""
    cap = math.floor(counts.min() / ratio + _EPS)
    keep = [
        rng.choice(rows, size=cap, replace=False) if len(rows) > cap else rows
        for rows in (np.flatnonzero(y == c) for c in range(len(counts)))
    ]
    return np.sort(np.concatenate(keep))
