"""The pieces of anomaly detection on hand-made data: selection, normal-only splits, the
reconstruction step, scores, the threshold on normal validation scores, metrics, baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlforge.config.schema import DataConfig, ThresholdConfig
from dlforge.data.anomaly import normal_only
from dlforge.data.dataset import Dataset, Provenance, Splits, TaskSpec
from dlforge.data.select import select
from dlforge.errors import DataError
from dlforge.evaluate.baseline import fit_baseline
from dlforge.evaluate.metrics import evaluate_scores
from dlforge.evaluate.threshold import choose_threshold
from dlforge.models.scores import predict_scores
from dlforge.train.steps import ReconstructionMeter, ReconstructionStep, SupervisedStep, step_for

ANOMALY = TaskSpec("anomaly", ("normal", "anomaly"))
THREE = TaskSpec("multiclass", ("a", "b", "c"))


def table(y, task=THREE) -> Dataset:
    y = np.asarray(y, dtype=np.int64)
    return Dataset(np.arange(len(y), dtype=float)[:, None], y, task, "table", Provenance("t"))


def test_normal_classes_become_label_0_and_every_other_class_label_1():
    ds = select(table([0, 1, 2, 0, 2]), DataConfig(normal_classes=["a"]), seed=0)
    assert ds.task == ANOMALY
    assert ds.y.tolist() == [0, 1, 1, 0, 1]
    assert ds.provenance.details["selection"]["anomaly_classes"] == ["(every other class)"]


def test_anomaly_classes_pick_the_anomalies_and_drop_the_rest():
    ds = select(table([0, 1, 2, 0, 2]), DataConfig(normal_classes=["a"], anomaly_classes=["c"]),
                seed=0)
    assert ds.y.tolist() == [0, 1, 0, 1]
    assert ds.x[:, 0].tolist() == [0.0, 2.0, 3.0, 4.0]


def test_an_unknown_normal_class_is_a_data_error():
    with pytest.raises(DataError) as info:
        select(table([0, 1]), DataConfig(normal_classes=["z"]), seed=0)
    assert str(info.value) == ("data.normal_classes: unknown classes ['z'] (got ['z']); available "
                               "classes: ['a', 'b', 'c']")


def test_normal_classes_naming_every_class_is_a_data_error():
    """It failed later, advising data.classes, which an anomaly task refuses."""
    with pytest.raises(DataError) as info:
        select(table([0, 1, 2]), DataConfig(normal_classes=["c", "a", "b"]), seed=0)
    assert str(info.value) == ("data.normal_classes: names every class ['a', 'b', 'c'], which "
                               "leaves no anomaly to test on; leave the anomalous classes out of it")


@pytest.mark.parametrize("normal", [["a"], ["c", "a", "b"]])
def test_an_empty_anomaly_class_list_is_one_line_naming_both_keys(normal):
    """A RunConfig refuses it (config.rules); a DataConfig alone, given to `select`, gets the
    same line: the normal classes listed, for the case they are every class (which was a
    second error after the first was fixed)."""
    with pytest.raises(DataError) as info:
        select(table([0, 1, 2]), DataConfig(normal_classes=normal, anomaly_classes=[]), seed=0)
    assert str(info.value) == (
        f"data.anomaly_classes: [] names no class, which leaves no anomaly to test on; name the "
        f"anomalous classes (classes data.normal_classes {normal} leaves out), or leave "
        f"data.anomaly_classes out to make every class data.normal_classes leaves out an anomaly")


def test_anomalies_leave_train_and_validation_with_counts_and_stay_in_test():
    splits = Splits(table([0, 1, 0, 1, 1], ANOMALY), table([0, 1], ANOMALY),
                    table([0, 1, 1], ANOMALY))
    kept, warning = normal_only(splits)
    assert (kept.train.y.tolist(), kept.val.y.tolist(), kept.test.y.tolist()) == (
        [0, 0], [0], [0, 1, 1])
    assert kept.info["anomalies_left_out"] == {"train": 3, "val": 1}
    assert warning == ("data: the anomaly task trains on normal samples only; left out 3 "
                       "anomalies of the training split (kept 2 normal) and 1 of validation "
                       "(kept 1); the test split keeps its 2 anomalies")
    assert normal_only(kept) == (kept, None)


def test_the_reconstruction_step_targets_the_inputs_and_logs_loss_and_mae():
    assert isinstance(step_for("anomaly"), ReconstructionStep)
    assert type(step_for("binary")) is SupervisedStep
    x = torch.ones(4, 3)
    assert step_for("anomaly").target(x, torch.zeros(4)) is x
    assert step_for("anomaly").logged("anomaly") == ("loss", "mae")
    meter = ReconstructionMeter()
    meter.update(torch.tensor(1.0), torch.zeros(2, 3), torch.ones(2, 3))    # |error| 1
    meter.update(torch.tensor(4.0), torch.zeros(6, 3), torch.full((6, 3), 2.0))  # |error| 2
    assert meter.samples == 8
    assert meter.result("val_") == {"val_loss": 3.25, "val_mae": 1.75}


def test_the_score_is_the_mean_squared_reconstruction_error_per_sample():
    x = torch.tensor([[1.0, 3.0], [2.0, 2.0], [0.0, 0.0]])
    zero = nn.Linear(2, 2)
    nn.init.zeros_(zero.weight), nn.init.zeros_(zero.bias)
    assert predict_scores(zero, x, ANOMALY).tolist() == [5.0, 4.0, 0.0]
    assert predict_scores(nn.Identity(), x, ANOMALY, batch_size=2).tolist() == [0.0, 0.0, 0.0]
    assert predict_scores(zero, x[:0], ANOMALY).shape == (0,)


NORMAL = np.arange(1, 21) / 20  # 0.05, 0.10, ... 1.00 on normal validation samples


@pytest.mark.parametrize(("objective", "value", "cut", "flagged"), [
    ("false_alarm_rate", 0.1, 0.95, 0.1),  # the two highest normal scores are flagged
    ("false_alarm_rate", 0.01, np.nextafter(1.0, 2), 0.0),  # 1 in 20 would be too many
    ("percentile", 50, 0.55, 0.5),
])
def test_the_threshold_flags_the_asked_share_of_normal_validation_samples(objective, value,
                                                                          cut, flagged):
    y = np.r_[np.zeros(20, np.int64), np.ones(3, np.int64)]
    scores = np.r_[NORMAL, [0.01, 0.02, 0.03]]  # anomalies are ignored, even low ones
    t = choose_threshold(ANOMALY, y, scores, ThresholdConfig(objective=objective, value=value))
    assert t.value == cut
    assert t.achieved == {"false_alarm_rate": flagged, "normal_samples": 20}


def test_no_normal_validation_sample_is_a_data_error():
    with pytest.raises(DataError) as info:
        choose_threshold(ANOMALY, np.ones(3), np.ones(3),
                         ThresholdConfig(objective="false_alarm_rate", value=0.01))
    assert str(info.value) == ("evaluate.threshold: the validation split has no normal sample "
                               "to calibrate the anomaly threshold on; raise data.val_fraction")


def test_anomaly_metrics_lead_with_roc_auc_and_report_the_false_alarm_rate():
    y = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.95])
    result = evaluate_scores(ANOMALY, y, scores, threshold=0.5)
    assert result["headline"] == [["roc_auc", 0.875], ["pr_auc", pytest.approx(0.8333333)],
                                  ["recall_at_threshold", 1.0], ["false_alarm_rate", 0.25]]
    assert result["confusion_matrix"] == [[3, 1], [0, 2]]
    assert result["threshold"] == 0.5


def test_the_isolation_forest_baseline_trains_on_normal_rows_and_scores_outliers_higher():
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, (200, 4))
    test = np.r_[rng.normal(0, 1, (20, 4)), rng.normal(8, 1, (5, 4))]
    y_test = np.r_[np.zeros(20, np.int64), np.ones(5, np.int64)]
    val = (rng.normal(0, 1, (50, 4)), np.zeros(50, np.int64))
    out = fit_baseline(ANOMALY, "table", normal, np.zeros(200, np.int64), test, y_test,
                       validation=val,
                       threshold=ThresholdConfig(objective="false_alarm_rate", value=0.05))
    assert out["name"] == "isolation forest (standardized)"
    assert out["metrics"]["roc_auc"] == 1.0
    assert out["metrics"]["recall_at_threshold"] == 1.0


def test_rare_anomalies_earn_no_advice_to_balance_the_classes():
    from dlforge.data.validate import validate

    y = [0] * 10 + [1]
    binary = TaskSpec("binary", ("ok", "ng"))
    assert [w for w in validate(table(y, binary)).warnings if "imbalanced" in w] != []
    assert [w for w in validate(table(y, ANOMALY)).warnings if "imbalanced" in w] == []
