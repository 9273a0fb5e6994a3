"""The oneDNN dense layer: same numbers, gradients and state_dict as nn.Linear; falls back."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlforge.models import onednn_linear as mod
from dlforge.models.onednn_linear import OneDNNLinear, set_dense_kernel, uses_onednn

needs_op = pytest.mark.skipif(not mod.onednn_linear_available(), reason="torch without oneDNN linear")


def _pair(bias: bool) -> tuple[nn.Linear, nn.Linear]:
    torch.manual_seed(0)
    plain = nn.Linear(12, 5, bias=bias)
    fast = nn.Linear(12, 5, bias=bias)
    fast.load_state_dict(plain.state_dict())
    set_dense_kernel(fast, onednn=True)
    return plain, fast


def _grads(layer: nn.Linear, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    y = layer(x)
    (y * torch.arange(y.numel(), dtype=y.dtype).reshape(y.shape)).sum().backward()
    grads = (y.detach(), x.grad, layer.weight.grad)
    return grads + ((layer.bias.grad,) if layer.bias is not None else ())


@needs_op
@pytest.mark.parametrize("shape", [(7, 12), (3, 4, 12)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("views", [True, False])
def test_outputs_and_gradients_equal_f_linear(shape, bias, views, monkeypatch):
    calls = []
    real = mod._gemm
    monkeypatch.setattr(mod, "_gemm", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(mod, "reads_transposed", lambda: views)
    plain, fast = _pair(bias)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    expected, got = _grads(plain, x), _grads(fast, x)
    assert len(calls) == 3  # forward, grad-input and grad-weight all went through oneDNN
    # the backward passes transposed views (no copies) where the op reads them right
    contiguous = [t.is_contiguous() for a in calls[1:] for t in a[:2]]
    assert contiguous == ([True, False, False, False] if views else [True] * 4)
    assert got[0].shape == shape[:-1] + (5,)
    assert len(got) == (4 if bias else 3)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=0)


@needs_op
def test_a_frozen_weight_and_an_input_without_grad_skip_their_gemms(monkeypatch):
    mod.reads_transposed()  # its one-time check of the op runs before the count starts
    calls = []
    real = mod._gemm
    monkeypatch.setattr(mod, "_gemm", lambda *a: calls.append(1) or real(*a))
    _, fast = _pair(True)
    fast.weight.requires_grad_(False)
    fast(torch.ones(2, 12)).sum().backward()
    assert len(calls) == 1  # the forward only
    assert fast.bias.grad.tolist() == [2.0] * 5


@needs_op
def test_this_torch_reads_transposed_views_right():
    mod.reads_transposed.cache_clear()
    assert mod.reads_transposed() is True  # torch 2.13's oneDNN linear honours strides


@pytest.mark.parametrize("gemm", ["as_if_contiguous", "raises"])
def test_transposed_views_are_not_used_when_the_op_misreads_or_refuses_them(gemm, monkeypatch):
    def as_if_contiguous(a, b, bias=None):  # an op that ignores strides: wrong numbers
        flat = [t.t().contiguous().view(t.shape) if not t.is_contiguous() else t for t in (a, b)]
        return flat[0] @ flat[1].t()

    def raises(a, b, bias=None):
        raise RuntimeError("mkldnn: unsupported strides")

    monkeypatch.setattr(mod, "onednn_linear_available", lambda: True)
    monkeypatch.setattr(mod, "_gemm", as_if_contiguous if gemm == "as_if_contiguous" else raises)
    mod.reads_transposed.cache_clear()
    try:
        assert mod.reads_transposed() is False
    finally:
        mod.reads_transposed.cache_clear()


def test_state_dict_keys_and_values_are_unchanged():
    plain, fast = _pair(True)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2, bias=False)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    set_dense_kernel(model, onednn=True)
    assert [type(m).__name__ for m in model.modules()] == [
        "Sequential", "OneDNNLinear", "ReLU", "Sequential", "OneDNNLinear"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.0.weight"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert uses_onednn(model) is True
    assert uses_onednn(set_dense_kernel(model, onednn=False)) is False


def test_a_checkpoint_of_a_switched_model_loads_into_a_plain_one(tmp_path):
    torch.manual_seed(3)
    fast = set_dense_kernel(nn.Sequential(nn.Linear(6, 3)), onednn=True)
    torch.save(fast.state_dict(), tmp_path / "ck.pt")
    plain = nn.Sequential(nn.Linear(6, 3))
    assert plain.load_state_dict(torch.load(tmp_path / "ck.pt")).missing_keys == []
    assert type(plain[0]) is nn.Linear
    assert torch.equal(plain[0].weight, fast[0].weight)
    x = torch.randn(4, 6)
    torch.testing.assert_close(plain(x), fast(x), atol=1e-5, rtol=0)


def test_other_linear_subclasses_are_left_alone():
    class Mine(nn.Linear):
        pass

    model = set_dense_kernel(nn.Sequential(Mine(2, 2)), onednn=True)
    assert type(model[0]) is Mine


@pytest.mark.parametrize("why", ["missing", "raises"])
def test_it_falls_back_to_f_linear_when_the_op_is_missing_or_raises(why, monkeypatch):
    if why == "missing":
        monkeypatch.setattr(mod, "onednn_linear_available", lambda: False)
    else:
        monkeypatch.setattr(mod, "onednn_linear_available", lambda: True)
        monkeypatch.setattr(mod, "_gemm", lambda *a: (_ for _ in ()).throw(RuntimeError("no")))
    plain, fast = _pair(True)
    x = torch.randn(5, 12)
    for e, g in zip(_grads(plain, x), _grads(fast, x), strict=True):
        torch.testing.assert_close(g, e, atol=0, rtol=0)


def test_float64_and_bf16_autocast_keep_f_linear(monkeypatch):
    monkeypatch.setattr(mod, "_gemm", lambda *a: pytest.fail("oneDNN path taken"))
    _, fast = _pair(True)
    x = torch.randn(2, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast(x).dtype == torch.bfloat16
    fast.double()
    torch.testing.assert_close(fast(x.double()), F.linear(x.double(), fast.weight, fast.bias))


@needs_op
def test_double_backward_is_refused():
    _, fast = _pair(True)
    x = torch.randn(2, 12, requires_grad=True)
    (gx,) = torch.autograd.grad(fast(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="marked with @once_differentiable"):
        gx.sum().backward()


def test_the_switched_class_is_a_linear():
    assert issubclass(OneDNNLinear, nn.Linear)
