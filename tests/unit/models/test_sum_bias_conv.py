"""`SumBiasConv2d`: nn.Conv2d's numbers and gradients, the bias gradient summed by torch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlforge.models import sum_bias_conv as mod
from dlforge.models.sum_bias_conv import SumBiasConv2d, set_conv_bias_grad


def _pair(**kwargs) -> tuple[nn.Conv2d, nn.Conv2d]:
    torch.manual_seed(0)
    plain = nn.Conv2d(4, 6, 3, **kwargs)
    summed = nn.Conv2d(4, 6, 3, **kwargs)
    summed.load_state_dict(plain.state_dict())
    set_conv_bias_grad(summed, sum_bias=True)
    return plain, summed


def _grads(layer: nn.Conv2d, x: torch.Tensor, x_grad: bool = True) -> list[torch.Tensor | None]:
    x = x.clone().requires_grad_(x_grad)
    y = layer(x)
    (y * torch.arange(y.numel(), dtype=y.dtype).reshape(y.shape).sin()).sum().backward()
    return [y.detach(), x.grad, layer.weight.grad, None if layer.bias is None else layer.bias.grad]


@pytest.fixture
def masks(monkeypatch) -> list[list[bool]]:
    """The output masks the backward asked the convolution kernel for, one per call."""
    calls: list[list[bool]] = []
    real = mod._conv_backward
    monkeypatch.setattr(mod, "_conv_backward", lambda *a: calls.append(list(a[-1])) or real(*a))
    return calls


@pytest.mark.parametrize("kwargs", [
    {"padding": 1}, {"stride": 2}, {"padding": 2, "dilation": 2}, {"padding": 1, "groups": 2},
])
@pytest.mark.parametrize("channels_last", [False, True])
def test_outputs_and_gradients_equal_conv2d(kwargs, channels_last, masks):
    plain, summed = _pair(**kwargs)
    x = torch.randn(3, 4, 9, 9, generator=torch.Generator().manual_seed(1))
    if channels_last:
        plain, summed = (m.to(memory_format=torch.channels_last) for m in (plain, summed))
        x = x.contiguous(memory_format=torch.channels_last)
    expected, got = _grads(plain, x), _grads(summed, x)
    assert masks == [[True, True, False]]  # the kernel computed input and weight grads only
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-5)


def test_an_input_without_grad_asks_for_the_weight_gradient_only(masks):
    plain, summed = _pair(padding=1)
    x = torch.randn(2, 4, 5, 5)
    expected, got = _grads(plain, x, x_grad=False), _grads(summed, x, x_grad=False)
    assert masks == [[False, True, False]]
    assert got[1] is None
    torch.testing.assert_close(got[3], expected[3], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("case", ["no_bias", "reflect", "same", "float64", "bf16_autocast",
                                  "no_grad"])
def test_other_cases_compute_as_conv2d(case, masks):
    kwargs = {"no_bias": {"bias": False}, "reflect": {"padding": 1, "padding_mode": "reflect"},
              "same": {"padding": "same"}}.get(case, {"padding": 1})
    plain, summed = _pair(**kwargs)
    x = torch.randn(2, 4, 6, 6)
    if case == "float64":
        plain, summed, x = plain.double(), summed.double(), x.double()
    if case == "no_grad":
        with torch.no_grad():
            assert torch.equal(summed(x), plain(x))
    elif case == "bf16_autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _grads(summed, x)
    else:
        for e, g in zip(_grads(plain, x), _grads(summed, x), strict=True):
            assert (e is None and g is None) or torch.equal(g, e)
    assert masks == []


def test_double_backward_is_refused():
    _, summed = _pair(padding=1)
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    (grad,) = torch.autograd.grad(summed(x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad.sum().backward()


def test_state_dict_keys_are_conv2d_s_and_the_switch_goes_both_ways():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1))
    keys = list(model.state_dict())
    set_conv_bias_grad(model, sum_bias=True)
    assert [type(m).__name__ for m in model] == ["SumBiasConv2d", "ReLU", "SumBiasConv2d"]
    assert list(model.state_dict()) == keys
    set_conv_bias_grad(model, sum_bias=False)
    assert [type(m) for m in model] == [nn.Conv2d, nn.ReLU, nn.Conv2d]
    assert isinstance(set_conv_bias_grad(nn.Conv2d(1, 1, 1), sum_bias=True), SumBiasConv2d)


def test_other_conv2d_subclasses_are_left_alone():
    class Mine(nn.Conv2d):
        pass

    model = set_conv_bias_grad(nn.Sequential(Mine(1, 1, 1), nn.ConvTranspose2d(1, 1, 2)), sum_bias=True)
    assert [type(m).__name__ for m in model] == ["Mine", "ConvTranspose2d"]
