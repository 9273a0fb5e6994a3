"""choose_threshold: each objective on a hand-made validation array, exact thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from dlforge.config.schema import ThresholdConfig
from dlforge.data.dataset import TaskSpec
from dlforge.errors import DataError
from dlforge.evaluate.threshold import Threshold, choose_threshold

BINARY = TaskSpec("binary", ("ok", "ng"))
# positive when score >= t:   t=.1 P.5 R1 | .2 P4/7 R1 | .3 P2/3 R1 (F1 .8, the best)
# .4 P.6 R.75 | .5 P.75 R.75 | .6 P2/3 R.5 | .7 P.5 R.25 | .8 P1 R.25
Y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
S = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])


@pytest.mark.parametrize(("objective", "value", "expected"), [
    ("max_f1", 0.5, 0.3),
    ("min_recall", 0.75, 0.5),   # highest threshold keeping recall >= 0.75
    ("min_recall", 0.9, 0.3),
    ("min_recall", 1.0, 0.3),
    ("min_precision", 0.7, 0.5),  # lowest threshold with precision >= 0.7
    ("min_precision", 1.0, 0.8),
    ("fixed", 0.42, 0.42),
])
def test_binary_objectives(objective, value, expected):
    t = choose_threshold(BINARY, Y, S, ThresholdConfig(objective=objective, value=value,
                                                        confidence=None))  # the point estimate
    assert t.value == expected
    assert t.objective == objective
    assert t.warning is None


def test_achieved_is_measured_at_the_threshold():
    t = choose_threshold(BINARY, Y, S, ThresholdConfig(objective="min_precision", value=0.7))
    assert t.achieved == {"precision": 0.75, "recall": 0.75, "f1": 0.75}
    assert t.to_dict() == {"value": 0.5, "objective": "min_precision",
                           "achieved": {"precision": 0.75, "recall": 0.75, "f1": 0.75},
                           "warning": None}


def test_max_f1_tie_goes_to_the_lower_threshold():
    y = np.array([0, 0, 1, 0, 0, 1])  # F1 2/3 at both 0.3 and 0.6
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert choose_threshold(BINARY, y, s, ThresholdConfig()).value == 0.3


def test_unreachable_precision_falls_back_with_a_warning():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.2, 0.4, 0.6, 0.9])  # best precision 0.5 (at 0.2 and 0.6)
    t = choose_threshold(BINARY, y, s, ThresholdConfig(objective="min_precision", value=0.8))
    assert t.value == 0.2
    assert t.achieved == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3)}
    assert t.warning == (
        "evaluate.threshold: no threshold reaches precision 0.8 for class 'ng' on validation "
        "(best 0.500); using the threshold of the highest precision instead. Lower "
        "evaluate.threshold.value or improve the model")


def test_no_positive_in_validation_keeps_half_with_a_warning():
    t = choose_threshold(BINARY, np.array([0, 0, 0]), np.array([0.1, 0.6, 0.9]), ThresholdConfig())
    assert t == Threshold(0.5, "max_f1", {"precision": 0.0, "recall": 0.0, "f1": 0.0}, (
        "evaluate.threshold: the validation split has no sample of class 'ng', so max_f1 "
        "cannot be measured; using 0.5"))


def test_multilabel_gets_one_threshold_per_label():
    task = TaskSpec("multilabel", ("a", "b"))
    y = np.stack([Y, 1 - Y], axis=1)
    s = np.stack([S, 1 - S], axis=1)
    t = choose_threshold(task, y, s, ThresholdConfig())
    # label b (scores .9 .8 .7 .6 .5 .4 .3 .2, positives at .9 .8 .6 .3): best F1 is at 0.6,
    # TP 3, FP 1, FN 1 -> P = R = F1 = 0.75
    assert t.value == [0.3, 0.6]
    assert t.achieved == {"precision": [pytest.approx(2 / 3), 0.75], "recall": [1.0, 0.75],
                          "f1": [pytest.approx(0.8), 0.75]}
    assert t.warning is None


@pytest.mark.parametrize("task", [TaskSpec("multiclass", ("a", "b", "c")), TaskSpec("regression", ("y",))])
def test_no_threshold_for_multiclass_and_regression(task):
    assert choose_threshold(task, np.zeros(3), np.zeros((3, 3)), ThresholdConfig()) is None


def test_nan_validation_scores_are_a_data_error():
    with pytest.raises(DataError, match=r"^evaluate\.threshold: 1 of 3 model scores are NaN"):
        choose_threshold(BINARY, np.array([0, 1, 1]), np.array([0.1, np.inf, 0.3]), ThresholdConfig())


# 100 negatives scored below 100 positives scored 0.01, 0.02, ..., 1.00: a threshold of k/100
# finds 101 - k positives.
Y_RANK = np.r_[np.zeros(100, int), np.ones(100, int)]
S_RANK = np.r_[np.arange(100) / 10000, np.arange(1, 101) / 100]


def test_min_recall_keeps_a_margin_for_the_validation_size():
    point = choose_threshold(BINARY, Y_RANK, S_RANK, ThresholdConfig(
        objective="min_recall", value=0.9, confidence=None))
    bound = choose_threshold(BINARY, Y_RANK, S_RANK, ThresholdConfig(objective="min_recall", value=0.9))
    assert (point.value, point.achieved["recall"]) == (0.11, 0.9)
    assert "recall_lower_bound" not in point.achieved
    # 96 of 100 found: the 95% Clopper-Pearson lower bound is 0.9108 >= 0.9; 95 of 100 gives 0.8975
    assert (bound.value, bound.achieved["recall"]) == (0.05, 0.96)
    assert bound.achieved["recall_lower_bound"] == pytest.approx(0.91080375, abs=1e-8)
    assert bound.achieved["confidence"] == 0.95
    assert bound.warning is None


def test_too_few_positives_for_the_bound_flags_every_positive_and_warns():
    t = choose_threshold(BINARY, Y_RANK[:120], S_RANK[:120],
                         ThresholdConfig(objective="min_recall", value=0.9))
    assert t.value == 0.01
    assert t.achieved["recall_lower_bound"] == pytest.approx(0.05 ** (1 / 20))
    assert t.warning == (
        "evaluate.threshold: 20 validation samples of class 'ng' are too few to show recall 0.9 "
        "at confidence 0.95 (the bound is 0.861 even when all are found); using the highest "
        "threshold that finds all of them. Give the validation split more positives "
        "(data.val_fraction) or lower evaluate.threshold.confidence")
