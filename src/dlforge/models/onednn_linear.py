"""fp32 dense layers through oneDNN's GEMM instead of MKL's (issue #19, "Fast on every CPU").

On CPUs not made by Intel, torch's float32 ``F.linear`` goes to Intel MKL's ``sgemm``, which
does not give them its best kernels: on the AMD EPYC of benchmarks/RESULTS.md the Basic CNN's
3136x512 dense layer ran at 17-27 GFLOP/s where oneDNN's GEMMs reach 200. `OneDNNLinear` is an
``nn.Linear`` whose forward, grad-input and grad-weight GEMMs go through oneDNN
(``torch.ops.mkldnn._linear_pointwise``). It has the same parameters and state_dict keys as
``nn.Linear``: `set_dense_kernel` swaps a layer's class in place, so a checkpoint of a switched
model loads into a plain one and back.

It computes through oneDNN only where that path applies: a float32 CPU input and weight, no
CPU autocast (bf16 keeps autocast's own kernels). Anything else (GPU, bf16, float64, a torch
without the op, the op raising) goes through ``F.linear``. The backward is first-order only:
differentiating it again (``create_graph=True``) raises; nothing in dlforge does.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from dlforge.models.layer_swap import swap_layers


@functools.cache
def onednn_linear_available() -> bool:
    """True when this torch has oneDNN and its fp32 linear op (``mkldnn._linear_pointwise``).

    Returns:
        False on builds without oneDNN or without the op; never raises.

    Example:
        >>> isinstance(onednn_linear_available(), bool)
        True
    """
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and hasattr(torch.ops.mkldnn, "_linear_pointwise"))
    except (AttributeError, RuntimeError):
        return False


def _gemm(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """``a @ b.T (+ bias)`` by oneDNN; `a` (m, k) and `b` (n, k) float32, contiguous or (where
    `reads_transposed` holds) transposed views."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


@functools.cache
def reads_transposed() -> bool:
    """True when this torch's oneDNN linear computes right on transposed (column-major) views,
    checked once on small exact products, so the backward GEMMs need not copy their operands.

    Copying the 3136x512 weight's transpose and the input's each step was 1.3 ms of a 48 ms
    fp32 Basic-CNN step (benchmarks/RESULTS.md, "Session 9").

    Returns:
        False when the op refuses the views or reads them as if contiguous; never raises.

    Example:
        >>> isinstance(reads_transposed(), bool)
        True
    """
    if not onednn_linear_available():
        return False
    a = torch.arange(40.0).view(5, 8) % 7
    b = torch.arange(24.0).view(8, 3) % 5
    c = torch.arange(15.0).view(5, 3) % 4
    try:  # the grad-input product (a transposed weight), the grad-weight one (both transposed)
        return bool(torch.equal(_gemm(a, b.t()), a @ b) and torch.equal(_gemm(a.t(), c.t()), a.t() @ c))
    except RuntimeError:
        return False


class _OneDNNLinearFn(torch.autograd.Function):
    """y = x W^T + b with the forward and both backward GEMMs by oneDNN; x is 2-D."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _gemm(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        need_x, need_w, need_b = ctx.needs_input_grad
        views = reads_transposed()

        def t(m: Tensor) -> Tensor:
            return m.t() if views else m.t().contiguous()

        grad_x = _gemm(grad, t(weight)) if need_x else None
        grad_w = _gemm(t(grad), t(x)) if need_w else None
        grad_b = grad.sum(0) if need_b and ctx.has_bias else None
        return grad_x, grad_w, grad_b


def _onednn_applies(x: Tensor, weight: Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and onednn_linear_available())


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` computing through oneDNN where it applies (float32 on CPU), else as
    ``nn.Linear``. Built by `set_dense_kernel`, not directly: same parameters, same keys.

    Example:
        >>> layer = set_dense_kernel(nn.Sequential(nn.Linear(4, 2)), onednn=True)[0]
        >>> type(layer).__name__, tuple(layer(torch.ones(3, 5, 4)).shape)
        ('OneDNNLinear', (3, 5, 2))
    """

    def forward(self, x: Tensor) -> Tensor:
        if not _onednn_applies(x, self.weight):
            return F.linear(x, self.weight, self.bias)
        lead = x.shape[:-1]
        try:
            y = _OneDNNLinearFn.apply(x.reshape(-1, self.in_features).contiguous(),
                                      self.weight.contiguous(), self.bias)
        except RuntimeError:  # an op that exists but refuses these tensors: the aten path
            return F.linear(x, self.weight, self.bias)
        return y.reshape(*lead, self.out_features)


def set_dense_kernel(model: nn.Module, *, onednn: bool) -> nn.Module:
    """Switch every ``nn.Linear`` of `model` to `OneDNNLinear` (`onednn` True) or back to
    ``nn.Linear``, in place, by class: parameters, state_dict keys and hooks are untouched.

    Subclasses of ``nn.Linear`` other than these two (e.g. quantized or lazy layers) are left
    alone.

    Args:
        model: any module; its submodules are visited recursively.
        onednn: True for the oneDNN path, False for plain ``nn.Linear``.

    Returns:
        `model` itself.

    Example:
        >>> m = set_dense_kernel(nn.Sequential(nn.Linear(3, 1)), onednn=True)
        >>> type(m[0]).__name__, type(set_dense_kernel(m, onednn=False)[0]).__name__
        ('OneDNNLinear', 'Linear')
    """
    return swap_layers(model, nn.Linear, OneDNNLinear, on=onednn)


def uses_onednn(model: nn.Module) -> bool:
    """True when some dense layer of `model` is switched to `OneDNNLinear`.

    Example:
        >>> uses_onednn(nn.Sequential(nn.Linear(3, 1)))
        False
    """
    return any(type(m) is OneDNNLinear for m in model.modules())
