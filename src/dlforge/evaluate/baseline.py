"""A classical scikit-learn model on the same split, so every deep model is shown beside one.

A deep model that does not beat logistic regression on standardized inputs is not worth its
cost; the report puts both side by side. The baseline must stay cheap: the training split is
subsampled to `max_train` and the solvers' iterations are bounded.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from dlforge.errors import DataError
from dlforge.evaluate.metrics import evaluate_scores
from dlforge.evaluate.threshold import choose_threshold

if TYPE_CHECKING:
    from dlforge.config.schema import ThresholdConfig
    from dlforge.data.dataset import TaskSpec

MAX_ITER = 200  # enough for standardized inputs to get close; a baseline needs no more
TFIDF_FEATURES = 20000


def fit_baseline(
    task: TaskSpec,
    modality: str,
    x_train: Any,
    y_train: np.ndarray,
    x_test: Any,
    y_test: np.ndarray,
    *,
    seed: int = 0,
    max_train: int = 20000,
    validation: tuple[Any, np.ndarray] | None = None,
    threshold: ThresholdConfig | None = None,
) -> dict[str, Any]:
    """Fit a classical model on the training split and score it on the test split.

    Models: logistic regression (OneVsRest for multilabel), Ridge regression or (anomaly, fitted
    on the normal training samples it is given) an isolation forest on standardized, flattened
    inputs; for text, TF-IDF of the raw strings in front of the same models. A binary,
    multi-label or anomaly baseline's decision threshold is chosen on `validation` with the same
    objective as the deep model's (`threshold`), so thresholded metrics compare like with like;
    without them it is 0.5.

    Args:
        task: the task (kind and class names).
        modality: "image", "table" or "text".
        x_train, x_test: images or tables as numeric arrays (preprocessed or raw, any shape
            `(N, ...)`, flattened here); texts as raw strings (a sequence of `str`).
        y_train, y_test: labels as in `Dataset.y`.
        seed: seeds the subsampling and the solvers.
        max_train: at most this many training samples (a seeded random subset).
        validation: `(x_val, y_val)`, shaped like the test inputs and labels.
        threshold: `evaluate.threshold`, the objective the threshold is chosen for.

    Returns:
        `{"name": str, "metrics": evaluate_scores(...) of the test split, "fit_seconds": float,
        "n_train": int, "threshold": float | list[float] | None}`.

    Raises:
        DataError: non-numeric image/table inputs, or a classification training split with
            a single class.

    Example:
        >>> fit_baseline(task, "table", x_tr, y_tr, x_te, y_te)["name"]  # doctest: +SKIP
        'logistic regression (standardized)'
    """
    y_train = np.asarray(y_train)
    keep = _subsample(len(y_train), max_train, seed)
    x_train, y_train = _take(x_train, keep), y_train[keep]
    if task.kind in ("binary", "multiclass") and len(np.unique(y_train)) < 2:
        raise DataError(f"baseline: the training split has only class "
                        f"{task.class_names[int(y_train[0])]!r}; a classifier needs two or more")
    name, model = _build(task.kind, modality, seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # the iteration cap is deliberate (speed over the last digit), not a problem to report
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(_inputs(x_train, modality, "x_train"), y_train)
    fit_seconds = time.perf_counter() - start
    cut = _threshold(model, task, modality, validation, threshold)
    scores = _scores(model, task, _inputs(x_test, modality, "x_test"))
    return {"name": name, "metrics": evaluate_scores(task, y_test, scores, cut),
            "fit_seconds": round(fit_seconds, 4), "n_train": int(len(y_train)), "threshold": cut}


def _threshold(model: Pipeline, task: TaskSpec, modality: str, validation: tuple[Any, np.ndarray] | None,
               cfg: ThresholdConfig | None) -> float | list[float] | None:
    """The baseline's own threshold, chosen on validation like the deep model's (else 0.5)."""
    if task.kind not in ("binary", "multilabel", "anomaly"):
        return None
    if validation is None or cfg is None or len(validation[1]) == 0:
        return 0.5 if task.kind == "binary" else [0.5] * len(task.class_names)
    x_val, y_val = validation
    scores = _scores(model, task, _inputs(x_val, modality, "x_val"))
    return choose_threshold(task, np.asarray(y_val), scores, cfg).value


def _build(kind: str, modality: str, seed: int) -> tuple[str, Pipeline]:
    """The estimator for a task kind and modality, and its name for the report."""
    if kind == "anomaly":
        head, name = IsolationForest(random_state=seed), "isolation forest"
    elif kind == "regression":
        head, name = Ridge(alpha=1.0), "ridge regression"
    else:
        head = LogisticRegression(max_iter=MAX_ITER, random_state=seed)
        name = "logistic regression"
        if kind == "multilabel":
            head, name = OneVsRestClassifier(head), "one-vs-rest logistic regression"
    if modality == "text":
        vectorizer = TfidfVectorizer(max_features=TFIDF_FEATURES, sublinear_tf=True)
        return f"TF-IDF + {name}", make_pipeline(vectorizer, head)
    return f"{name} (standardized)", make_pipeline(StandardScaler(), head)


def _scores(model: Pipeline, task: TaskSpec, x: Any) -> np.ndarray:
    """Scores shaped like `predict_scores` output, one column per class of the task."""
    if task.kind == "regression":
        return np.asarray(model.predict(x), dtype=np.float64)
    if task.kind == "anomaly":  # score_samples is high for normal samples
        return -np.asarray(model.score_samples(x), dtype=np.float64)
    proba = model.predict_proba(x)
    if task.kind == "binary":
        return proba[:, list(model.classes_).index(1)]
    if task.kind == "multilabel":
        return proba
    # a class absent from the (subsampled) training split gets score 0
    full = np.zeros((proba.shape[0], len(task.class_names)))
    full[:, np.asarray(model.classes_, dtype=np.int64)] = proba
    return full


def _inputs(x: Any, modality: str, name: str) -> Any:
    """Raw strings for TF-IDF; otherwise a float matrix `(N, features)`."""
    if modality == "text":
        return [str(t) for t in (x.tolist() if isinstance(x, (np.ndarray, pd.Series)) else x)]
    try:
        matrix = np.asarray(x.to_numpy() if isinstance(x, pd.DataFrame) else x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"baseline: {name} must be numeric for {modality} data (preprocess "
                        f"categorical columns first); got {exc}") from exc
    return matrix.reshape(len(matrix), -1)


def _subsample(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _take(x: Any, index: np.ndarray) -> Any:
    if isinstance(x, (pd.DataFrame, pd.Series)):
        return x.iloc[index]
    if isinstance(x, np.ndarray):
        return x[index]
    return [x[i] for i in index]
