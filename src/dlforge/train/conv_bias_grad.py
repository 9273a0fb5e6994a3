"""Who computes a run's convolution bias gradients on CPU: `train.conv_bias_grad`.

`auto` is a decision from paired measurements on an AMD EPYC (benchmarks/RESULTS.md, "Session
9"): in float32 on CPU, oneDNN's weight-gradient kernel sums the bias gradient in plain C++, and
torch's vectorized ``grad.sum((0, 2, 3))`` (`dlforge.models.sum_bias_conv`) made the Basic
CNN's training step 1.047x faster with AVX-512 and 1.010x under the AVX2 emulation. So `auto` sums on a CPU device
in fp32; under bf16 autocast and on GPUs the kernel keeps it. ``kernel`` always leaves it to
the convolution kernel, ``sum`` always sums where the layer's path applies (float32 on CPU).
"""

from __future__ import annotations

import torch
from torch import nn

from dlforge.models.sum_bias_conv import set_conv_bias_grad
from dlforge.train.precision import Precision


def wants_sum_bias(setting: str, device: torch.device, precision: Precision) -> bool:
    """Whether this run's ``nn.Conv2d`` bias gradients are summed by torch.

    Args:
        setting: ``auto``, ``kernel`` or ``sum``.
        device: the training device.
        precision: the resolved precision; `auto` sums in fp32 only.

    Returns:
        ``sum``: True. ``kernel``: False. ``auto``: True on a CPU device in fp32.

    Example:
        >>> wants_sum_bias("auto", torch.device("cpu"), Precision("fp32"))
        True
    """
    if setting != "auto":
        return setting == "sum"
    return device.type == "cpu" and precision.dtype is None


def apply_conv_bias_grad(model: nn.Module, setting: str, device: torch.device,
                         precision: Precision) -> bool:
    """Switch `model`'s convolutions to the bias gradient `wants_sum_bias` picks (either way,
    so a model trained before with the other setting follows this one); returns whether the
    bias gradients are summed.

    Example:
        >>> m = nn.Sequential(nn.Conv2d(1, 1, 1))
        >>> apply_conv_bias_grad(m, "sum", torch.device("cpu"), Precision("fp32")), type(m[0]).__name__
        (True, 'SumBiasConv2d')
    """
    summed = wants_sum_bias(setting, device, precision)
    set_conv_bias_grad(model, sum_bias=summed)
    return summed
