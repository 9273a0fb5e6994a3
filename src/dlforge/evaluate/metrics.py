"""Metrics of scores against true labels, as JSON-safe dicts, from scikit-learn's functions.

Accuracy alone hides a model that never finds the rare class, so every classification result
carries per-class precision/recall/F1 and the confusion matrix, and binary results put the
rare (positive) class's recall first in the `headline`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn import metrics as skm

from dlforge.errors import DataError
from dlforge.models.scores import DEFAULT_THRESHOLD, check_finite, labels_from_scores

if TYPE_CHECKING:
    from dlforge.data.dataset import TaskSpec

MAX_CURVE_POINTS = 200


def evaluate_scores(
    task: TaskSpec,
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float | Sequence[float] | None = None,
) -> dict[str, Any]:
    """Measure scores against the truth.

    Args:
        task: the task (kind and class names).
        y_true: int64 `(N,)` class indices (binary: 1 = positive), int64 `(N, K)` 0/1
            (multilabel) or float `(N,)`/`(N, T)` (regression).
        scores: as returned by `predict_scores`.
        threshold: binary decision threshold, or multilabel per-label thresholds (one number
            or a list), or the `Threshold` that `choose_threshold` returned; default 0.5.
            Ignored otherwise.

    Returns:
        A JSON-safe dict (floats, ints, lists, dicts; NaN becomes None). Always `task`,
        `n_samples` and `headline` (ordered `[name, value]` pairs). Classification: `accuracy`,
        `per_class` ({name: {precision, recall, f1, support}}), `macro_avg`, `weighted_avg`,
        `confusion_matrix` (counts, rows = true, columns = predicted),
        `confusion_matrix_normalized` (each row sums to 1), `class_names`. Binary also
        `roc_auc`, `pr_auc` (average precision), `roc_curve` {fpr, tpr}, `pr_curve`
        {precision, recall} (at most 200 points each) and `threshold`. Anomaly (scores are
        reconstruction errors, 1 = anomaly): as binary, plus `false_alarm_rate` and
        `recall_at_threshold` (the anomalies flagged), headline ROC-AUC first. Multilabel: `per_label`,
        `subset_accuracy`, `hamming_loss`, `micro_f1`, `macro_f1`, `thresholds`. Regression:
        `mae`, `rmse`, `r2`.

    Raises:
        DataError: `y_true` and `scores` have different numbers of samples, or some scores
            are NaN/infinite (a diverged model).

    Example:
        >>> from dlforge.data.dataset import TaskSpec
        >>> task = TaskSpec("binary", ("ok", "ng"))
        >>> result = evaluate_scores(task, np.array([0, 1, 1]), np.array([0.2, 0.7, 0.4]))
        >>> [name for name, _ in result["headline"]]
        ['recall[ng]', 'precision[ok]', 'f1[ng]', 'pr_auc', 'accuracy']
    """
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    threshold = getattr(threshold, "value", threshold)  # a Threshold from choose_threshold
    if task.kind == "binary" and scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if len(y_true) != len(scores):
        raise DataError(f"y_true has {len(y_true)} samples but scores has {len(scores)}; "
                        f"score the same split the labels come from")
    check_finite(scores, "evaluate")
    base = {"task": task.kind, "n_samples": len(y_true)}
    if task.kind == "regression":
        return base | _regression(y_true, scores)
    if task.kind == "multilabel":
        return base | _multilabel(task, y_true, scores, threshold)
    result = base | _classification(task, y_true, labels_from_scores(task, scores, threshold))
    if task.kind in ("binary", "anomaly"):
        result |= _binary_extras(y_true, scores, threshold)
        result |= _anomaly_extras(result) if task.kind == "anomaly" else {
            "headline": _binary_headline(task, result)}
    else:
        result["headline"] = [["accuracy", result["accuracy"]], ["macro_f1", result["macro_avg"]["f1"]]]
    return result


def _classification(task: TaskSpec, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class and averaged P/R/F1, and the confusion matrix over every class."""
    labels = list(range(len(task.class_names)))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_class = {name: {"precision": _num(p[i]), "recall": _num(r[i]), "f1": _num(f[i]),
                        "support": int(s[i])} for i, name in enumerate(task.class_names)}
    return {
        "class_names": list(task.class_names),
        "accuracy": _num(skm.accuracy_score(y_true, y_pred)),
        "per_class": per_class,
        "macro_avg": _averaged(y_true, y_pred, labels, "macro"),
        "weighted_avg": _averaged(y_true, y_pred, labels, "weighted"),
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "confusion_matrix_normalized": _floats(
            skm.confusion_matrix(y_true, y_pred, labels=labels, normalize="true")),
    }


def _averaged(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int], average: str) -> dict:
    p, r, f, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=average, zero_division=0)
    return {"precision": _num(p), "recall": _num(r), "f1": _num(f)}


def _binary_extras(y_true: np.ndarray, scores: np.ndarray, threshold: float | None) -> dict:
    """Threshold-free quality (ROC-AUC, PR-AUC) and the curves; None when a class is absent."""
    out: dict[str, Any] = {"threshold": float(DEFAULT_THRESHOLD if threshold is None else threshold)}
    if len(np.unique(y_true)) < 2:  # neither AUC is defined without both classes
        return out | {"roc_auc": None, "pr_auc": None, "roc_curve": None, "pr_curve": None}
    fpr, tpr, _ = skm.roc_curve(y_true, scores)
    precision, recall, _ = skm.precision_recall_curve(y_true, scores)
    keep_roc, keep_pr = _downsample(len(fpr)), _downsample(len(precision))
    return out | {
        "roc_auc": _num(skm.roc_auc_score(y_true, scores)),
        "pr_auc": _num(skm.average_precision_score(y_true, scores)),
        "roc_curve": {"fpr": _floats(fpr[keep_roc]), "tpr": _floats(tpr[keep_roc])},
        "pr_curve": {"precision": _floats(precision[keep_pr]), "recall": _floats(recall[keep_pr])},
    }


def _binary_headline(task: TaskSpec, result: dict[str, Any]) -> list[list[Any]]:
    """Rare-class recall first, common-class precision second, accuracy last (DESIGN.md)."""
    negative, positive = task.class_names
    per_class = result["per_class"]
    return [
        [f"recall[{positive}]", per_class[positive]["recall"]],
        [f"precision[{negative}]", per_class[negative]["precision"]],
        [f"f1[{positive}]", per_class[positive]["f1"]],
        ["pr_auc", result["pr_auc"]],
        ["accuracy", result["accuracy"]],
    ]


def _anomaly_extras(result: dict[str, Any]) -> dict[str, Any]:
    """The share of normal samples flagged, the share of anomalies found, and a headline that
    leads with ROC-AUC (threshold-free) as anomaly benchmarks report it."""
    (tn, fp), (fn, tp) = result["confusion_matrix"]
    far = _num(fp / (tn + fp)) if tn + fp else None
    recall = _num(tp / (tp + fn)) if tp + fn else None
    headline = [["roc_auc", result["roc_auc"]], ["pr_auc", result["pr_auc"]],
                ["recall_at_threshold", recall], ["false_alarm_rate", far]]
    return {"false_alarm_rate": far, "recall_at_threshold": recall, "headline": headline}


def _multilabel(task: TaskSpec, y_true: np.ndarray, scores: np.ndarray,
                threshold: float | Sequence[float] | None) -> dict[str, Any]:
    """Per-label P/R/F1 plus the set-level scores (subset accuracy, Hamming loss)."""
    y_pred = labels_from_scores(task, scores, threshold)
    k = len(task.class_names)
    thresholds = np.broadcast_to(
        np.asarray(DEFAULT_THRESHOLD if threshold is None else threshold, dtype=float), (k,))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    per_label = {name: {"precision": _num(p[i]), "recall": _num(r[i]), "f1": _num(f[i]),
                        "support": int(s[i])} for i, name in enumerate(task.class_names)}
    result = {
        "class_names": list(task.class_names),
        "per_label": per_label,
        "subset_accuracy": _num(skm.accuracy_score(y_true, y_pred)),
        "hamming_loss": _num(skm.hamming_loss(y_true, y_pred)),
        "micro_f1": _num(skm.f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": _num(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "thresholds": _floats(thresholds),
    }
    result["headline"] = [[name, result[name]] for name in
                          ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")]
    return result


def _regression(y_true: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    scores = scores.reshape(y_true.shape)
    mae = _num(skm.mean_absolute_error(y_true, scores))
    rmse = _num(math.sqrt(skm.mean_squared_error(y_true, scores)))
    # R2 is undefined for fewer than two samples; scikit-learn warns and returns NaN
    r2 = _num(skm.r2_score(y_true, scores)) if len(y_true) >= 2 else None
    return {"mae": mae, "rmse": rmse, "r2": r2,
            "headline": [["mae", mae], ["rmse", rmse], ["r2", r2]]}


def _downsample(n: int, limit: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Indices of at most `limit` evenly spaced points, always keeping the first and last."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _num(value: Any) -> float | None:
    """A plain float for JSON; None for NaN or infinity (json.dumps would write invalid NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _floats(array: np.ndarray) -> list:
    """Nested lists of plain floats (None for NaN)."""
    return [_floats(row) if np.ndim(row) else _num(row) for row in array]


def flat_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics of an `evaluate_scores` result under one name each, for conditions
    such as a gate's: top-level numbers (``accuracy``, ``roc_auc``, ``mae`` ...), ``precision[c]``
    / ``recall[c]`` / ``f1[c]`` per class or label, ``macro_f1`` / ``weighted_recall`` ... .
    Undefined values (None) are left out.

    Example:
        >>> from dlforge.data.dataset import TaskSpec
        >>> r = evaluate_scores(TaskSpec("multiclass", ("a", "b", "c")), np.array([0, 1, 2]),
        ...                     np.eye(3)[[0, 1, 1]])
        >>> m = flat_metrics(r)
        >>> m["accuracy"], m["recall[c]"], m["macro_f1"]
        (0.6666666666666666, 0.0, 0.5555555555555555)
    """
    flat: dict[str, Any] = {k: v for k, v in result.items()
                            if isinstance(v, (int, float)) and k not in ("n_samples", "threshold")}
    for group in ("per_class", "per_label"):
        for name, values in (result.get(group) or {}).items():
            flat |= {f"{k}[{name}]": values[k] for k in ("precision", "recall", "f1")}
    for average in ("macro", "weighted"):
        flat |= {f"{average}_{k}": v for k, v in (result.get(f"{average}_avg") or {}).items()}
    return {k: float(v) for k, v in flat.items() if v is not None}
