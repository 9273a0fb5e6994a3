"""Which floating-point precision a training run computes in, and the autocast that gives it.

`train.precision: auto` is chosen from measurements, not habit (benchmarks/RESULTS.md, Speed):
- CUDA: float16 autocast with a gradient scaler (bfloat16 without one where the GPU has it).
- CPU with native bfloat16 (AVX512-BF16 / AMX): bfloat16 autocast for the model types that
  measured faster with it on 28x28 and larger images (Basic CNN 1.75x, ResNet-small 1.7x per
  step); float32 for the rest, which bfloat16 made slower (depthwise convolutions 0.28x,
  1-D text convolutions 0.08x, small images and small dense models 0.2-0.8x).
- Any other CPU: float32.

Weights, optimizer state and the loss stay float32 under autocast ("mixed" precision); only
the layers autocast lists (convolutions, matmuls) run in the lower precision.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dlforge.errors import ConfigError
from dlforge.runtime import cpu_has_native_bf16

# Smallest image side for which bfloat16 paid on CPU (8x8 digits: 0.79x; 28x28: 1.75x).
_MIN_BF16_SIDE = 16


@dataclass(frozen=True)
class Precision:
    """The resolved precision of one run.

    Attributes:
        name: ``fp32``, ``bf16`` or ``fp16``.
        dtype: the autocast dtype, or None for plain float32.
        scaled: float16 on CUDA: scale the loss so small gradients do not underflow.
    """

    name: str
    dtype: torch.dtype | None = None
    scaled: bool = False

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The context the forward pass and loss run in."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


FP32 = Precision("fp32")


def resolve_precision(setting: str, model: nn.Module, device: torch.device,
                      sample_shape: tuple[int, ...] | None) -> Precision:
    """Turn `train.precision` into the precision this model trains in on this device.

    Args:
        setting: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        model: the model; `auto` on CPU asks its ``cpu_bf16`` attribute (True where measured
            faster).
        device: the training device.
        sample_shape: shape of one input sample, e.g. ``(1, 28, 28)``; None when unknown.

    Raises:
        ConfigError: ``fp16`` off CUDA, or ``bf16`` on a device without it.

    Example:
        >>> resolve_precision("fp32", nn.Linear(2, 1), torch.device("cpu"), (2,)).name
        'fp32'
    """
    if setting == "fp32":
        return FP32
    if setting == "fp16":
        if device.type != "cuda":
            raise ConfigError(f"train.precision: 'fp16' needs a CUDA device (training on "
                              f"{device.type}); use auto, bf16 or fp32")
        return Precision("fp16", torch.float16, scaled=True)
    if setting == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("train.precision: 'bf16' is not supported by this GPU; use auto, "
                              "fp16 or fp32")
        if device.type not in ("cpu", "cuda"):
            raise ConfigError(f"train.precision: 'bf16' is supported on cpu and cuda, not "
                              f"{device.type}; use auto or fp32")
        return Precision("bf16", torch.bfloat16)
    return _auto(model, device, sample_shape)


def _auto(model: nn.Module, device: torch.device, sample_shape: tuple[int, ...] | None) -> Precision:
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision("bf16", torch.bfloat16)
        return Precision("fp16", torch.float16, scaled=True)
    if device.type != "cpu" or not getattr(model, "cpu_bf16", False) or not cpu_has_native_bf16():
        return FP32
    if sample_shape is None or len(sample_shape) != 3 or min(sample_shape[1:]) < _MIN_BF16_SIDE:
        return FP32
    return Precision("bf16", torch.bfloat16)


def sample_shape(loader: Any) -> tuple[int, ...] | None:
    """Shape of one input sample of a `BatchLoader`-like loader (its ``x`` tensor), if known."""
    x = getattr(loader, "x", None)
    return tuple(x.shape[1:]) if isinstance(x, torch.Tensor) else None
