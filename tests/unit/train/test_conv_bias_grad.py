"""`train.conv_bias_grad`: the auto decision per device and precision; fit applies it."""

from __future__ import annotations

import pytest
import torch
from tests.unit.train.tiny_fit import fit_tiny_cnn
from torch import nn

from dlforge.train.conv_bias_grad import apply_conv_bias_grad, wants_sum_bias
from dlforge.train.precision import FP32, Precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
BF16 = Precision("bf16", torch.bfloat16)


@pytest.mark.parametrize(("setting", "device", "precision", "expected"), [
    ("auto", CPU, FP32, True),
    ("auto", CPU, BF16, False),   # autocast keeps the kernel's (unmeasured there)
    ("auto", CUDA, FP32, False),
    ("kernel", CPU, FP32, False),
    ("sum", CPU, BF16, True),
    ("sum", CUDA, FP32, True),    # the layer itself computes as Conv2d off the CPU
])
def test_the_decision_per_setting_device_and_precision(setting, device, precision, expected):
    assert wants_sum_bias(setting, device, precision) is expected


def test_apply_switches_both_ways():
    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    assert apply_conv_bias_grad(model, "auto", CPU, FP32) is True
    assert type(model[0]).__name__ == "SumBiasConv2d"
    assert apply_conv_bias_grad(model, "auto", CPU, BF16) is False
    assert type(model[0]) is nn.Conv2d


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])  # adam: tiny_fit.py says why it can compare
def test_fit_trains_the_same_model_either_way(optimizer):
    kernel = fit_tiny_cnn(conv_bias_grad="kernel", optimizer=optimizer)
    summed = fit_tiny_cnn(optimizer=optimizer)
    convs = [{type(m).__name__ for m in r.model.modules() if isinstance(m, nn.Conv2d)}
             for r in (kernel, summed)]
    assert convs == [{"Conv2d"}, {"SumBiasConv2d"}]
    assert [round(r["val_loss"], 4) for r in kernel.history] == [round(r["val_loss"], 4) for r in summed.history]
    for (k, a), (_, b) in zip(kernel.model.state_dict().items(), summed.model.state_dict().items(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0, msg=k)
