"""fit_baseline: a classical model on the same split, beating chance on separable data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlforge.data.dataset import TaskSpec
from dlforge.errors import DataError
from dlforge.evaluate.baseline import fit_baseline


def _blobs(n: int, k: int, seed: int, shape=(4,)):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(0, 0.3, size=(n, *shape)).astype(np.float32)
    x.reshape(n, -1)[:, :k] += 3 * np.eye(k)[y]  # class c lights up feature c
    return x, y.astype(np.int64)


def test_table_binary_baseline_separates_the_classes():
    task = TaskSpec("binary", ("ok", "ng"))
    x_tr, y_tr = _blobs(64, 2, 0)
    x_te, y_te = _blobs(32, 2, 1)
    out = fit_baseline(task, "table", pd.DataFrame(x_tr), y_tr, x_te, y_te)
    assert out["name"] == "logistic regression (standardized)"
    assert out["metrics"]["accuracy"] == 1.0
    assert out["metrics"]["headline"][0] == ["recall[ng]", 1.0]
    assert out["n_train"] == 64
    assert out["fit_seconds"] >= 0


def test_image_multiclass_baseline_flattens_and_subsamples():
    task = TaskSpec("multiclass", ("a", "b", "c"))
    x_tr, y_tr = _blobs(64, 3, 0, shape=(1, 3, 3))
    x_te, y_te = _blobs(30, 3, 1, shape=(1, 3, 3))
    out = fit_baseline(task, "image", x_tr, y_tr, x_te, y_te, max_train=30)
    assert out["n_train"] == 30
    assert out["metrics"]["accuracy"] == 1.0  # chance is 1/3


def test_text_baseline_uses_tfidf_on_raw_strings():
    task = TaskSpec("binary", ("neg", "pos"))
    good, bad = ["great fine movie", "good great fun"], ["awful bad plot", "bad boring awful"]
    x_tr = np.array((good + bad) * 8, dtype=object)
    y_tr = np.array([1, 1, 0, 0] * 8)
    out = fit_baseline(task, "text", x_tr, y_tr, ["good fun", "awful boring"], np.array([1, 0]))
    assert out["name"] == "TF-IDF + logistic regression"
    assert out["metrics"]["accuracy"] == 1.0


def test_regression_and_multilabel_baselines():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = (2 * x[:, 0] - x[:, 1]).astype(np.float32)
    out = fit_baseline(TaskSpec("regression", ("y",)), "table", x[:48], y[:48], x[48:], y[48:])
    assert out["name"] == "ridge regression (standardized)"
    assert out["metrics"]["r2"] > 0.99
    ml = TaskSpec("multilabel", ("p", "q"))
    labels = np.stack([x[:, 0] > 0, x[:, 1] > 0], axis=1).astype(np.int64)
    out = fit_baseline(ml, "table", x[:48], labels[:48], x[48:], labels[48:])
    assert out["name"] == "one-vs-rest logistic regression (standardized)"
    assert out["metrics"]["micro_f1"] > 0.9


def test_single_class_training_split_is_a_data_error():
    task = TaskSpec("binary", ("ok", "ng"))
    with pytest.raises(DataError, match=r"^baseline: the training split has only class 'ok'; "
                                        r"a classifier needs two or more$"):
        fit_baseline(task, "table", np.zeros((4, 2)), np.zeros(4, dtype=np.int64),
                     np.zeros((2, 2)), np.zeros(2, dtype=np.int64))


def test_non_numeric_table_is_a_data_error():
    task = TaskSpec("binary", ("ok", "ng"))
    x = pd.DataFrame({"colour": ["red", "blue"] * 4})
    with pytest.raises(DataError, match=r"^baseline: x_train must be numeric for table data"):
        fit_baseline(task, "table", x, np.array([0, 1] * 4), x, np.array([0, 1] * 4))


def test_binary_baseline_threshold_is_chosen_on_validation_like_the_deep_models():
    from dlforge.config.schema import ThresholdConfig

    task = TaskSpec("binary", ("ok", "ng"))
    x_tr, y_tr = _blobs(64, 2, 0)
    x_va, y_va = _blobs(40, 2, 2)
    x_te, y_te = _blobs(32, 2, 1)
    plain = fit_baseline(task, "table", x_tr, y_tr, x_te, y_te)
    assert plain["threshold"] == 0.5
    fixed = fit_baseline(task, "table", x_tr, y_tr, x_te, y_te, validation=(x_va, y_va),
                         threshold=ThresholdConfig(objective="fixed", value=0.8))
    assert fixed["threshold"] == 0.8
    assert fixed["metrics"]["threshold"] == 0.8
    chosen = fit_baseline(task, "table", x_tr, y_tr, x_te, y_te, validation=(x_va, y_va),
                          threshold=ThresholdConfig(objective="max_f1"))
    assert 0 < chosen["threshold"] < 1 and chosen["threshold"] != 0.5
    assert chosen["metrics"]["threshold"] == chosen["threshold"]


def test_multiclass_and_regression_baselines_have_no_threshold():
    from dlforge.config.schema import ThresholdConfig

    x_tr, y_tr = _blobs(64, 3, 0)
    out = fit_baseline(TaskSpec("multiclass", ("a", "b", "c")), "table", x_tr, y_tr, x_tr, y_tr,
                       validation=(x_tr, y_tr), threshold=ThresholdConfig())
    assert out["threshold"] is None
