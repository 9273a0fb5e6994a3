"""``nn.MaxPool2d`` with a faster inference path for 2x2 windows of stride 2.

Without gradients torch's CPU max-pool still computes (and writes) an int64 argmax index per
output, and walks each window element by element. Two element-wise maxima over strided views
(rows, then columns) give the same values 2-3x faster on channels_last feature maps (Basic
CNN, batch 1024, 32x28x28: 4.9 ms against 16 ms; batch 32: 0.046 against 0.10 ms; NaN
propagates as in torch). With gradients on (training), or under a tracer, exporter or compiler
(`fast_paths.eager_inference`), it is torch's kernel. Same module, no state.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dlforge.models.fast_paths import eager_inference


def _pairs(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value, value)


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d``; a 2x2, stride-2, unpadded, floor-mode pool of a 4-D input with
    gradients off is two ``torch.maximum`` passes over strided views.

    Example:
        >>> x = torch.randn(2, 3, 5, 6)
        >>> with torch.no_grad():
        ...     torch.equal(MaxPool2d(2)(x), nn.MaxPool2d(2)(x))
        True
    """

    def _simple(self) -> bool:
        return (_pairs(self.kernel_size) == (2, 2) and _pairs(self.stride) == (2, 2)
                and _pairs(self.padding) == (0, 0) and _pairs(self.dilation) == (1, 1)
                and not self.ceil_mode and not self.return_indices)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or min(x.shape[2:]) < 2 or not eager_inference() or not self._simple():
            return super().forward(x)  # (a side under 2: torch's "output size too small")
        h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
        rows = torch.maximum(x[:, :, 0:h:2], x[:, :, 1:h:2])
        return torch.maximum(rows[:, :, :, 0:w:2], rows[:, :, :, 1:w:2])
