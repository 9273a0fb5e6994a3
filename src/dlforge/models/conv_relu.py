"""A conv block that, without gradients, runs each Conv2d + ReLU pair as one oneDNN primitive.

Evaluation, prediction and serving spend a pass over memory on every ReLU that follows a
convolution: the Basic CNN's first ReLU at batch 1024 (1024x32x28x28, 100 MB) takes 4.7 ms
of a 116 ms forward. oneDNN applies the ReLU as a post-op while the convolution writes its
output (``torch.ops.mkldnn._convolution_pointwise``, the op torch's own inductor uses for
this fusion), so the pass disappears; the values are the same (one primitive computes both).

`ConvReLUSequential` is an ``nn.Sequential`` (same children, same state_dict keys) that fuses
only where nothing can tell: no gradients (``torch.no_grad``/``inference_mode``), float32 on
CPU outside autocast, oneDNN available, zero padding given as numbers, no hooks on the
pair or globally (`dlforge inspect` hooks a block or layer and gets what it always got), and
no tracer, exporter or compiler running (`fast_paths.eager_inference`).
Training and everything else is ``nn.Sequential``'s forward.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _module

from dlforge.models.fast_paths import eager_inference
from dlforge.models.sum_bias_conv import SumBiasConv2d

_PLAIN_CONVS = (nn.Conv2d, SumBiasConv2d)
_broken = False  # the op raised once in this process: never try it again
logger = logging.getLogger(__name__)


def _available() -> bool:
    return (not _broken and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))


def _hooked(layer: nn.Module) -> bool:
    return bool(layer._forward_hooks or layer._forward_pre_hooks)


def _global_hooks() -> bool:
    return bool(getattr(_module, "_global_forward_hooks", None)
                or getattr(_module, "_global_forward_pre_hooks", None))


def _fusable(conv: nn.Module, relu: nn.Module) -> bool:
    # exact classes: a subclass may compute otherwise (SumBiasConv2d's no-grad forward is
    # nn.Conv2d's, so it qualifies)
    return (type(relu) is nn.ReLU and type(conv) in _PLAIN_CONVS and not _hooked(conv)
            and not _hooked(relu) and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str) and conv.weight.dtype == torch.float32)


def _conv_relu(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """relu(conv(x)) by one oneDNN primitive; if this torch build's op refuses (an ISA or
    build without it), fusion is switched off for the process and the pair runs unfused."""
    global _broken
    try:
        return torch.ops.mkldnn._convolution_pointwise(
            x, conv.weight, conv.bias, list(conv.padding), list(conv.stride),
            list(conv.dilation), conv.groups, "relu", [None], "")
    except RuntimeError as exc:
        out = torch.relu(conv(x))  # the input's own fault (wrong channels...) raises here
        _broken = True
        logger.warning("fused conv+ReLU unavailable here (%s); running them apart",
                       str(exc).splitlines()[0][:200])
        return out


class ConvReLUSequential(nn.Sequential):
    """``nn.Sequential`` whose adjacent ``Conv2d``, ``ReLU`` pairs run as one oneDNN primitive
    when no gradient, autocast or hook could tell the difference.

    Example:
        >>> block = ConvReLUSequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        >>> x = torch.randn(2, 1, 6, 6)
        >>> with torch.no_grad():
        ...     torch.allclose(block(x), torch.relu(block[0](x)), atol=1e-6)
        True
    """

    def forward(self, x: Tensor) -> Tensor:
        if (not eager_inference() or x.dim() != 4 or x.device.type != "cpu"
                or x.dtype != torch.float32
                or torch.is_autocast_enabled("cpu") or _global_hooks() or not _available()):
            return super().forward(x)
        layers = list(self)
        i = 0
        while i < len(layers):
            if i + 1 < len(layers) and _fusable(layers[i], layers[i + 1]):
                x, i = _conv_relu(layers[i], x), i + 2
            else:
                x, i = layers[i](x), i + 1
        return x
