"""Convolutions whose bias gradient torch sums, not the convolution kernel (issue #19).

On CPU, torch's float32 convolutions run oneDNN's kernels, and oneDNN's weight-gradient kernel
(``jit:avx512_core`` / ``jit:avx2`` backward_weights) also computes the bias gradient, in a loop
of plain C++ (``compute_diff_bias``): 4 % of the Basic CNN's fp32 training step in `perf`.
`SumBiasConv2d` asks oneDNN for the input and weight gradients only and sums the output
gradient over batch, height and width itself (``grad.sum((0, 2, 3))``, vectorized and
threaded): the same gradient up to float rounding, 1.047x per fp32 Basic-CNN step with AVX-512
and 1.010x under the AVX2 emulation, paired (benchmarks/RESULTS.md, "Session 9").

It has the parameters and state_dict keys of ``nn.Conv2d``: `set_conv_bias_grad` swaps a
layer's class in place. It computes this way only where that path applies: a float32 CPU input
outside autocast with gradients on, a bias, ``padding_mode="zeros"`` and numeric padding;
anything else (evaluation included) is ``nn.Conv2d``'s forward. The backward is first-order only (``create_graph=True`` raises).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from dlforge.models.layer_swap import swap_layers

_conv_backward = torch.ops.aten.convolution_backward


class _SumBiasConvFn(torch.autograd.Function):
    """conv2d(x, w, b); backward: the kernel's input and weight gradients, the bias's a sum."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, geometry: tuple) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.geometry = geometry
        stride, padding, dilation, groups = geometry
        return torch.ops.aten.convolution(x, weight, bias, stride, padding, dilation, False,
                                          [0, 0], groups)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.geometry
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        grad_x, grad_w, _ = _conv_backward(
            grad, x, weight, None, stride, padding, dilation, False, [0, 0], groups,
            [need_x, need_w, False])
        return grad_x, grad_w, grad.sum((0, 2, 3)) if need_b else None, None


class SumBiasConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose bias gradient is ``grad.sum((0, 2, 3))`` where that applies (float32
    on CPU with gradients on, no autocast, zero padding given as numbers), else ``nn.Conv2d``. Built by
    `set_conv_bias_grad`: same parameters, same keys.

    Example:
        >>> layer = set_conv_bias_grad(nn.Sequential(nn.Conv2d(1, 2, 3)), sum_bias=True)[0]
        >>> type(layer).__name__, tuple(layer(torch.ones(1, 1, 5, 5)).shape)
        ('SumBiasConv2d', (1, 2, 3, 3))
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self._sums_bias(x):
            return super().forward(x)
        geometry = (list(self.stride), list(self.padding), list(self.dilation), self.groups)
        return _SumBiasConvFn.apply(x, self.weight, self.bias, geometry)

    def _sums_bias(self, x: Tensor) -> bool:
        return (self.bias is not None and x.device.type == "cpu" and x.dtype == torch.float32
                and self.weight.dtype == torch.float32 and self.padding_mode == "zeros"
                and not isinstance(self.padding, str) and x.dim() == 4
                and torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu"))


def set_conv_bias_grad(model: nn.Module, *, sum_bias: bool) -> nn.Module:
    """Switch every ``nn.Conv2d`` of `model` to `SumBiasConv2d` (`sum_bias` True) or back to
    ``nn.Conv2d``, in place, by class: parameters, state_dict keys and hooks are untouched.
    Other subclasses of ``nn.Conv2d`` are left alone.

    Args:
        model: any module; its submodules are visited recursively.
        sum_bias: True for the summed bias gradient, False for plain ``nn.Conv2d``.

    Returns:
        `model` itself.

    Example:
        >>> m = set_conv_bias_grad(nn.Sequential(nn.Conv2d(1, 1, 1)), sum_bias=True)
        >>> type(set_conv_bias_grad(m, sum_bias=False)[0]).__name__
        'Conv2d'
    """
    return swap_layers(model, nn.Conv2d, SumBiasConv2d, on=sum_bias)
