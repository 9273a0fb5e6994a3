"""`Flatten`: nn.Flatten whose gradient keeps a channels_last input's layout."""

from __future__ import annotations

import torch
from torch import nn

from dlforge.models.flatten import Flatten


def grads(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output and the gradient it hands back (to a non-leaf: a leaf's .grad is
    re-laid out like the leaf by autograd, which would hide the layout)."""
    leaf = x.detach().requires_grad_()
    inner = leaf * 1
    seen = []
    inner.register_hook(seen.append)
    out = layer(inner)
    out.backward(torch.arange(out.numel(), dtype=out.dtype).view(out.shape))
    return out, seen[0]


def test_a_channels_last_input_gets_torchs_values_and_gradient_in_channels_last():
    x = torch.randn(3, 4, 5, 6).contiguous(memory_format=torch.channels_last)
    out, grad = grads(Flatten(), x)
    ref_out, ref_grad = grads(nn.Flatten(), x)
    assert torch.equal(out, ref_out) and torch.equal(grad, ref_grad)
    assert not ref_grad.is_contiguous(memory_format=torch.channels_last)  # torch's: NCHW
    assert grad.is_contiguous(memory_format=torch.channels_last)


def test_other_inputs_and_dims_are_plain_flatten():
    x = torch.randn(3, 4, 5, 6)
    out, grad = grads(Flatten(), x)
    assert out.shape == (3, 120) and torch.equal(grad, grads(nn.Flatten(), x)[1])
    assert grad.is_contiguous() and type(out.grad_fn).__name__ == "ViewBackward0"
    leaf = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    cl = leaf * 1
    out = Flatten(2)(cl)  # may be a view: torch's path, so in-place ops on it work
    assert out.shape == (3, 4, 30) and not type(out.grad_fn).__name__.startswith("_Flatten")
    nn.ReLU(inplace=True)(out).sum().backward()
    assert leaf.grad.shape == (3, 4, 5, 6)
    assert type(Flatten()(cl).grad_fn).__name__ == "_FlattenFnBackward"
    with torch.no_grad():
        assert Flatten()(cl).grad_fn is None and torch.equal(Flatten()(cl), cl.flatten(1))


def test_it_is_an_nn_flatten_with_no_state():
    layer = Flatten()
    assert isinstance(layer, nn.Flatten) and layer.state_dict() == {}


def test_a_tracer_records_torchs_flatten_with_gradients_on():
    x = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    traced = torch.jit.trace(Flatten(), x, check_trace=False)
    graph = str(traced.inlined_graph)
    assert "aten::flatten" in graph and "PythonOp" not in graph
