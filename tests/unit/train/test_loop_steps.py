"""What one optimizer step of `fit` does: clipping, the explicit L2 penalty, class weights,
memory format; and the per-epoch metrics."""

from __future__ import annotations

import pytest
import torch
from test_loop_support import TASKS, make_data, make_loaders, train_cfg
from torch import nn

from dlforge.data.loader import BatchLoader, Loaders
from dlforge.train.epoch_metrics import EpochMetrics
from dlforge.train.loop import fit


def one_step(model, **cfg):
    """Fit one epoch of one full batch (a single SGD step) on the multiclass data."""
    x, y = make_data("multiclass")
    cfg = train_cfg(epochs=1, batch_size=64, optimizer="sgd", momentum=0.0, **cfg)
    return fit(model, make_loaders(x, y, batch_size=64), cfg, TASKS["multiclass"], device="cpu",
               progress=False)


def linear(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(8, 3)


def test_grad_clip_bounds_the_step():
    model = linear()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    one_step(model, lr=1.0, grad_clip=1e-3)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-4)


def test_l2_penalty_shrinks_weights_not_biases_and_is_not_logged():
    plain, penalized = linear(), linear()
    w0 = plain.weight.detach().clone()
    r0 = one_step(plain, lr=0.5)
    r1 = one_step(penalized, lr=0.5, l2=0.1)
    # d(0.1 * sum w^2)/dw = 0.2 w, times lr 0.5
    torch.testing.assert_close(penalized.weight - plain.weight, -0.5 * 0.2 * w0)
    assert torch.equal(penalized.bias, plain.bias)
    assert r1.history[0]["loss"] == r0.history[0]["loss"]


def test_class_weights_from_the_loaders_weigh_the_loss():
    x, y = make_data("multiclass")
    weights = torch.tensor([0.2, 1.0, 3.0])
    loaders = Loaders(train=BatchLoader(x, y, batch_size=16, shuffle=True),
                      val=BatchLoader(x, y, batch_size=64), class_weights=weights)
    result = fit(linear(), loaders, train_cfg(epochs=1), TASKS["multiclass"], device="cpu",
                 progress=False)
    with torch.no_grad():
        expected = nn.functional.cross_entropy(result.model(x), y, weight=weights).item()
    assert result.history[0]["val_loss"] == pytest.approx(expected, rel=1e-6)


class TinyConv(nn.Sequential):
    family = "conv"


@pytest.mark.parametrize(("setting", "channels_last"), [("auto", True), ("off", False)])
def test_conv_models_train_channels_last(setting, channels_last):
    torch.manual_seed(0)
    model = TinyConv(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    x = torch.randn(64, 2, 8, 8)
    y = torch.randint(0, 3, (64,))
    result = fit(model, make_loaders(x, y), train_cfg(epochs=1, channels_last=setting),
                 TASKS["multiclass"], device="cpu", progress=False)
    weight = result.model[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert weight.is_contiguous() != channels_last


@pytest.mark.parametrize(
    ("kind", "outputs", "target", "metric"),
    [
        ("multiclass", [[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]], [0, 0, 0], 2 / 3),
        ("binary", [[0.5], [-1.0], [2.0], [-0.1]], [1.0, 1.0, 0.0, 0.0], 0.5),
        ("multilabel", [[1.0, -1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]], 0.5),
        ("regression", [[1.0], [2.0], [4.0]], [1.5, 2.0, 3.0], 0.5),
    ],
)
def test_epoch_metric_per_task(kind, outputs, target, metric):
    meter = EpochMetrics(kind)
    outputs, target = torch.tensor(outputs), torch.tensor(target)
    meter.update(torch.tensor(1.0), outputs[:1], target[:1])
    meter.update(torch.tensor(4.0), outputs[1:], target[1:])
    n = len(target)
    name = "val_mae" if kind == "regression" else "val_accuracy"
    assert meter.result("val_") == pytest.approx({"val_loss": (1.0 + 4.0 * (n - 1)) / n,
                                                  name: metric})
    assert meter.samples == n
