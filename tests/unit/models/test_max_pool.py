"""`MaxPool2d`: torch's max-pool, with 2x2/stride-2 inference as two strided maxima."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlforge.models.max_pool import MaxPool2d


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 3, 7, 9), (1, 1, 2, 2)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_inference_values_and_layout_are_torchs(shape, channels_last):
    x = torch.randn(*shape)
    x[0, 0, 0, 0] = float("nan")
    x[-1, -1, -1, :2] = float("-inf")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ours, torchs = MaxPool2d(2)(x), nn.MaxPool2d(2)(x)
    assert ours.shape == torchs.shape
    assert torch.equal(ours.nan_to_num(7.0), torchs.nan_to_num(7.0))
    assert ours[0, 0, 0, 0].isnan()
    assert ours.is_contiguous(memory_format=torch.channels_last) == channels_last or shape[1] == 1


def test_the_fast_path_is_taken_only_for_2x2_stride_2_without_gradients(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "maximum", lambda a, b: calls.append(1) or torch.max(a, b))
    x = torch.randn(1, 2, 4, 4)
    with torch.no_grad():
        MaxPool2d(2)(x)
        assert len(calls) == 2
        for layer in (MaxPool2d(3), MaxPool2d(2, stride=1), MaxPool2d(2, padding=1),
                      MaxPool2d(2, ceil_mode=True), MaxPool2d(2, dilation=2)):
            layer(torch.randn(1, 2, 6, 6))
    MaxPool2d(2)(x.requires_grad_())
    assert len(calls) == 2


def test_training_keeps_torchs_kernel_and_gradient():
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    (grad,) = torch.autograd.grad(MaxPool2d(2)(x).sum(), x)
    (ref,) = torch.autograd.grad(nn.MaxPool2d(2)(x).sum(), x)
    assert torch.equal(grad, ref) and int(grad.sum()) == 2 * 3 * 9


def test_a_side_under_two_gets_torchs_error():
    with torch.no_grad(), pytest.raises(RuntimeError, match="too small"):
        MaxPool2d(2)(torch.randn(1, 1, 1, 4))
