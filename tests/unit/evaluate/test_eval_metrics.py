"""evaluate_scores against hand-computed values on tiny arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlforge.data.dataset import TaskSpec
from dlforge.errors import DataError
from dlforge.evaluate.metrics import evaluate_scores

BINARY = TaskSpec("binary", ("ok", "defect"))


def _plain_types(obj):
    """Every leaf is a builtin (no numpy scalars) so the dict survives json.dumps."""
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain_types(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain_types(v) for v in obj)
    return obj is None or type(obj) in (int, float, str, bool)


def test_binary_counts_and_headline_order():
    # 6 ok, 2 defect; at t=0.5: TP 1, FN 1, FP 1, TN 5
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.45, 0.7, 0.8, 0.35])
    r = evaluate_scores(BINARY, y, s)
    assert r["confusion_matrix"] == [[5, 1], [1, 1]]
    assert r["confusion_matrix_normalized"] == [[5 / 6, 1 / 6], [0.5, 0.5]]
    assert r["per_class"] == {
        "ok": {"precision": 5 / 6, "recall": 5 / 6, "f1": pytest.approx(5 / 6), "support": 6},
        "defect": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
    }
    assert r["accuracy"] == 0.75
    # ranking: positives at .8 (above all 6 negatives) and .35 (above 3): ROC-AUC 9/12
    assert r["roc_auc"] == 0.75
    # AP: recall 0.5 at precision 1 (t=.8), recall 1 at precision 2/5 (t=.35)
    assert r["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 0.4)
    assert [name for name, _ in r["headline"]] == [
        "recall[defect]", "precision[ok]", "f1[defect]", "pr_auc", "accuracy"]
    assert r["headline"][:3] == [["recall[defect]", 0.5], ["precision[ok]", 5 / 6],
                                 ["f1[defect]", 0.5]]
    assert r["threshold"] == 0.5
    assert _plain_types(r)
    json.dumps(r, allow_nan=False)


def test_binary_threshold_is_applied():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.3, 0.35, 0.9])
    assert evaluate_scores(BINARY, y, s)["confusion_matrix"] == [[2, 0], [1, 1]]
    r = evaluate_scores(BINARY, y, s, threshold=0.3)
    assert r["confusion_matrix"] == [[1, 1], [0, 2]]
    assert r["threshold"] == 0.3


def test_binary_curves_are_downsampled_to_200_points():
    rng = np.random.default_rng(0)
    y = np.arange(1000) % 2
    s = np.clip(y * 0.3 + rng.random(1000) * 0.7, 0, 1)
    r = evaluate_scores(BINARY, y, s)
    assert len(r["roc_curve"]["fpr"]) == len(r["roc_curve"]["tpr"]) <= 200
    assert len(r["pr_curve"]["precision"]) == len(r["pr_curve"]["recall"]) <= 200
    assert (r["roc_curve"]["fpr"][0], r["roc_curve"]["fpr"][-1]) == (0.0, 1.0)
    assert (r["pr_curve"]["recall"][0], r["pr_curve"]["recall"][-1]) == (1.0, 0.0)


def test_binary_with_one_class_has_no_auc():
    r = evaluate_scores(BINARY, np.array([0, 0]), np.array([0.2, 0.6]))
    assert (r["roc_auc"], r["pr_auc"], r["roc_curve"], r["pr_curve"]) == (None, None, None, None)
    assert r["headline"][3] == ["pr_auc", None]
    json.dumps(r, allow_nan=False)


def test_multiclass_per_class_averages_and_headline():
    task = TaskSpec("multiclass", ("a", "b", "c"))
    y = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 2, 0])
    r = evaluate_scores(task, y, np.eye(3)[pred])
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert r["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert r["per_class"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                                   "support": 1}
    assert r["per_class"]["c"] == {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    assert r["macro_avg"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(13 / 18),
                              "f1": pytest.approx((0.5 + 2 / 3 + 0.8) / 3)}
    assert r["weighted_avg"]["recall"] == pytest.approx(4 / 6)
    assert r["headline"] == [["accuracy", 4 / 6], ["macro_f1", pytest.approx((0.5 + 2 / 3 + 0.8) / 3)]]
    assert "roc_auc" not in r and "threshold" not in r


def test_multiclass_class_never_seen_counts_as_zero():
    task = TaskSpec("multiclass", ("a", "b", "c"))
    r = evaluate_scores(task, np.array([0, 1]), np.eye(3)[[0, 1]])
    assert r["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert r["confusion_matrix_normalized"][2] == [0.0, 0.0, 0.0]


def test_multilabel_metrics_and_per_label_thresholds():
    task = TaskSpec("multilabel", ("cat", "dog"))
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[0.9, 0.2], [0.6, 0.35], [0.7, 0.4], [0.1, 0.1]])
    r = evaluate_scores(task, y, s, threshold=[0.5, 0.3])
    # predicted: [1,0] [1,1] [1,1] [0,0] -> cat FP 1, dog exact
    assert r["per_label"]["cat"] == {"precision": pytest.approx(2 / 3), "recall": 1.0,
                                     "f1": 0.8, "support": 2}
    assert r["per_label"]["dog"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert r["subset_accuracy"] == 0.75
    assert r["hamming_loss"] == 0.125
    assert r["micro_f1"] == pytest.approx(2 * (4 / 5) * 1 / (4 / 5 + 1))
    assert r["macro_f1"] == pytest.approx(0.9)
    assert r["thresholds"] == [0.5, 0.3]
    assert [n for n, _ in r["headline"]] == ["micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"]


def test_regression_mae_rmse_r2():
    r = evaluate_scores(TaskSpec("regression", ("y",)), np.array([1.0, 2.0, 3.0]),
                        np.array([1.5, 2.0, 2.0]))
    assert r["mae"] == 0.5
    assert r["rmse"] == pytest.approx((1.25 / 3) ** 0.5)
    assert r["r2"] == pytest.approx(1 - 1.25 / 2)
    assert r["headline"] == [["mae", 0.5], ["rmse", r["rmse"]], ["r2", r["r2"]]]


def test_regression_accepts_column_scores_and_one_sample():
    r = evaluate_scores(TaskSpec("regression", ("y",)), np.array([2.0]), np.array([[3.0]]))
    assert (r["mae"], r["rmse"], r["r2"]) == (1.0, 1.0, None)


def test_length_mismatch_is_a_data_error():
    with pytest.raises(DataError, match=r"^y_true has 3 samples but scores has 2; score the "
                                        r"same split the labels come from$"):
        evaluate_scores(BINARY, np.array([0, 1, 1]), np.array([0.2, 0.3]))


def test_threshold_object_and_column_scores_are_accepted():
    from dlforge.evaluate.threshold import Threshold

    y = np.array([0, 0, 1, 1])
    s = np.array([[0.1], [0.3], [0.35], [0.9]])
    r = evaluate_scores(BINARY, y, s, Threshold(0.3, "fixed"))
    assert r["confusion_matrix"] == [[1, 1], [0, 2]]
    assert r["threshold"] == 0.3


def test_nan_scores_name_the_fix():
    with pytest.raises(DataError, match=r"^evaluate: 1 of 2 model scores are NaN or infinite; "
                                        r"training diverged\. Lower train\.lr, set train\.grad_clip, "
                                        r"or standardize the inputs$"):
        evaluate_scores(BINARY, np.array([0, 1]), np.array([0.2, np.nan]))
