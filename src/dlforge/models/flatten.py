"""``nn.Flatten`` whose backward hands the gradient back in the input's memory layout.

Flattening a channels_last (NHWC in memory) feature map copies it into NCHW order, and torch's
backward of that copy returns an NCHW-contiguous gradient. The layers before it (the ReLU and
max-pool of a conv block) then mix an NCHW gradient with their channels_last saved tensors,
which sends their backward kernels down a strided, unvectorized path: in the fp32 Basic CNN
step the last block's ReLU backward took 0.65 ms for 0.4 million elements, ten times its
channels_last speed (benchmarks/RESULTS.md, "Session 10: the fp32 step's layouts and masks;
inference fast paths"). `Flatten` copies the gradient
back to channels_last once (~0.05 ms) instead; tracers, exporters and torch.compile see
torch's flatten. Same module, no state: checkpoints and state_dicts are unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dlforge.models.fast_paths import exporting


class _FlattenFn(torch.autograd.Function):
    """Flatten a channels_last 4-D tensor; the gradient comes back channels_last."""

    @staticmethod
    def forward(ctx, x: Tensor, start_dim: int, end_dim: int) -> Tensor:  # noqa: ANN001
        ctx.shape = x.shape
        return x.flatten(start_dim, end_dim)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # noqa: ANN001
        return grad.reshape(ctx.shape).contiguous(memory_format=torch.channels_last), None, None


def _channels_last_only(x: Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() \
        and x.is_contiguous(memory_format=torch.channels_last)


class Flatten(nn.Flatten):
    """``nn.Flatten``; a channels_last 4-D input flattened whole (the default dims) that needs a
    gradient gets it channels_last.

    Example:
        >>> x = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
        >>> x = x.requires_grad_()
        >>> (grad,) = torch.autograd.grad(Flatten()(x).sum(), x)
        >>> grad.is_contiguous(memory_format=torch.channels_last), tuple(grad.shape)
        (True, (2, 3, 4, 4))
    """

    def forward(self, x: Tensor) -> Tensor:
        # (1, -1) only: the whole feature map, always a copy (other dims may return a view,
        # which a Function's output must not be: in-place ops on it would then raise)
        if (x.requires_grad and torch.is_grad_enabled() and _channels_last_only(x)
                and self.start_dim == 1 and self.end_dim in (-1, 3) and not exporting()):
            return _FlattenFn.apply(x, self.start_dim, self.end_dim)
        return super().forward(x)
