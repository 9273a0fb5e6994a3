from __future__ import annotations

import pytest
import torch
from torch import nn

from dlforge.config.schema import TrainConfig
from dlforge.data.dataset import TaskSpec
from dlforge.errors import DataError
from dlforge.train.losses import build_loss, check_labels, l2_penalty, penalized_weights

MULTI = TaskSpec("multiclass", ("a", "b", "c", "d", "e"))
BINARY = TaskSpec("binary", ("ok", "ng"))
MULTILABEL = TaskSpec("multilabel", ("x", "y"))
REGRESSION = TaskSpec("regression", ("t",))


def test_multiclass_cross_entropy_with_smoothing_and_weights():
    loss = build_loss(MULTI, TrainConfig(label_smoothing=0.1), [1.0, 2.0, 1.0, 1.0, 1.0])
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]])
    y = torch.tensor([0, 1])
    expected = nn.functional.cross_entropy(
        logits, y, weight=torch.tensor([1.0, 2.0, 1.0, 1.0, 1.0]), label_smoothing=0.1)
    assert loss(logits, y).item() == pytest.approx(expected.item(), abs=1e-7)


def test_binary_flattens_n_by_1_logits_and_uses_pos_weight_ratio():
    loss = build_loss(BINARY, TrainConfig(), [0.5, 2.0])
    assert loss.criterion.pos_weight.tolist() == [4.0]
    logits = torch.tensor([[0.3], [-1.0]])
    y = torch.tensor([1.0, 0.0])
    expected = nn.functional.binary_cross_entropy_with_logits(
        logits[:, 0], y, pos_weight=torch.tensor([4.0]))
    assert loss(logits, y).item() == pytest.approx(expected.item(), abs=1e-7)


@pytest.mark.parametrize("task", [BINARY, MULTILABEL])
def test_binary_and_multilabel_smoothing_pulls_the_targets_toward_one_half(task):
    loss = build_loss(task, TrainConfig(label_smoothing=0.2))
    logits, y = torch.tensor([[1.5, -0.5]]).T, torch.tensor([[1.0], [0.0]])
    if task is BINARY:
        y = y[:, 0]
    expected = nn.functional.binary_cross_entropy_with_logits(
        logits.view(-1), torch.tensor([0.9, 0.1]))
    assert loss(logits, y).item() == pytest.approx(expected.item(), abs=1e-7)
    assert build_loss(MULTI, TrainConfig(label_smoothing=0.2)).smoothing == 0.0  # CE smooths


def test_multilabel_is_elementwise_bce():
    loss = build_loss(MULTILABEL, TrainConfig())
    logits, y = torch.tensor([[1.0, -1.0]]), torch.tensor([[1.0, 1.0]])
    expected = nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert loss(logits, y).item() == pytest.approx(expected.item(), abs=1e-7)


@pytest.mark.parametrize(("name", "value"), [("auto", 2.5), ("mse", 2.5), ("mae", 1.5)])
def test_regression_loss(name, value):
    loss = build_loss(REGRESSION, TrainConfig(loss=name))
    assert loss(torch.tensor([[1.0], [2.0]]), torch.tensor([0.0, 4.0])).item() == value


def test_l2_penalty_covers_weights_not_biases_or_batch_norm():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Linear(2, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    weights = penalized_weights(model)
    assert [tuple(w.shape) for w in weights] == [(2, 2), (1, 2)]
    assert l2_penalty(weights).item() == 6.0


def test_multiclass_label_outside_head():
    with pytest.raises(DataError) as err:
        check_labels(torch.tensor([0, 3, 7, 2]), MULTI)
    assert str(err.value) == (
        "data: label 7 is outside the model head's range 0..4 (task multiclass with 5 classes)")


def test_negative_multiclass_label():
    with pytest.raises(DataError, match=r"^data: label -1 is outside the model head's range 0\.\.4"):
        check_labels(torch.tensor([0, -1]), MULTI)


def test_binary_labels_must_be_0_or_1():
    with pytest.raises(DataError) as err:
        check_labels(torch.tensor([0.0, 1.0, 2.0, 2.0]), BINARY)
    assert str(err.value) == "data: binary labels must be 0 or 1; got 2 (task binary with classes ok, ng)"


def test_valid_labels_pass():
    check_labels(torch.tensor([0, 4, 2]), MULTI)
    check_labels(torch.tensor([0.0, 1.0]), BINARY)
    check_labels(torch.tensor([[0.0, 1.0]]), MULTILABEL)
    check_labels(torch.tensor([3.5, -2.0]), REGRESSION)


def test_regression_loss_in_standard_deviations_of_the_targets():
    import torch

    from dlforge.config.schema import TrainConfig
    from dlforge.data.dataset import TaskSpec
    from dlforge.train.losses import build_loss

    task = TaskSpec("regression", ("a", "b"))
    outputs, target = torch.tensor([[110.0, 2.0], [90.0, 4.0]]), torch.tensor([[100.0, 3.0], [100.0, 3.0]])
    std = torch.tensor([10.0, 0.5])
    mse = build_loss(task, TrainConfig(), target_std=std)
    assert mse(outputs, target).item() == 2.5  # (1 + 1 + 4 + 4) / 4
    assert build_loss(task, TrainConfig())(outputs, target).item() == 50.5  # target units
    mae = build_loss(task, TrainConfig(loss="mae"), target_std=std)
    assert mae(outputs, target).item() == 1.5
    one = build_loss(TaskSpec("regression", ("y",)), TrainConfig(), target_std=torch.tensor([2.0]))
    assert one(torch.tensor([[4.0], [0.0]]), torch.tensor([0.0, 0.0])).item() == 2.0  # (4 + 0) / 2
