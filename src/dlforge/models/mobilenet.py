"""MobileNet-style network: a stem conv, depthwise-separable blocks, global pooling, small head."""

from __future__ import annotations

import torch
from torch import nn

from dlforge.config.schema import MobileNetConfig
from dlforge.errors import ConfigError

# Stride-2 layers halve the image only while it stays at least this big, so small inputs
# (8x8 digits) keep some spatial extent for the later 3x3 depthwise filters.
_MIN_SIDE_FOR_STRIDE = 4
# The stem downsamples only large (ImageNet-like) images; 28x28 or 32x32 keep full resolution.
_MIN_SIDE_FOR_STEM_STRIDE = 64


def scale_channels(channels: int, width: float) -> int:
    """Apply the width multiplier: ``round(channels * width)``, kept at least 8 (or at least
    ``channels`` when the configured value is already below 8) and at least 1.

    Example:
        >>> scale_channels(64, 0.5), scale_channels(32, 0.1), scale_channels(4, 0.5)
        (32, 8, 4)
    """
    return max(1, min(8, channels), round(channels * width))


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    # No conv bias: the batch norm that follows has its own shift.
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(),
    )


def separable_block(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 (+BN+ReLU6) then pointwise 1x1 (+BN+ReLU6), as in MobileNet v1."""
    return nn.Sequential(_conv_bn(in_ch, in_ch, 3, stride, groups=in_ch),
                         _conv_bn(in_ch, out_ch, 1, 1))


class MobileNet(nn.Module):
    """Stem 3x3 conv, one depthwise-separable block per entry of ``channels[1:]`` (stride 2
    while the image is at least 4x4), global average pooling, dropout, Linear head."""

    family = "conv"

    def __init__(self, input_shape: tuple[int, int, int], num_outputs: int, *,
                 channels: list[int], width: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        in_ch, height, w = input_shape
        sizes = [scale_channels(c, width) for c in channels]
        stride = 2 if min(height, w) >= _MIN_SIDE_FOR_STEM_STRIDE else 1
        layers: list[nn.Module] = [_conv_bn(in_ch, sizes[0], 3, stride)]
        height, w = _after_stride(height, stride), _after_stride(w, stride)
        for prev, out in zip(sizes, sizes[1:], strict=False):
            stride = 2 if min(height, w) >= _MIN_SIDE_FOR_STRIDE else 1
            layers.append(separable_block(prev, out, stride))
            height, w = _after_stride(height, stride), _after_stride(w, stride)
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sizes[-1], num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.features(x))))


def _after_stride(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # 3x3, padding 1


def build(cfg: MobileNetConfig, *, input_shape: tuple[int, ...], num_outputs: int,
          vocab_size: int | None = None) -> MobileNet:
    """Build a :class:`MobileNet` for images of ``input_shape`` (C, H, W).

    Raises:
        ConfigError: ``cfg.channels`` is empty (the stem needs a width).
    """
    if not cfg.channels:
        raise ConfigError("model.channels: needs at least one entry, the stem's channels "
                          "(got []). Use e.g. [32, 64, 128, 256].")
    return MobileNet(input_shape, num_outputs, channels=list(cfg.channels),  # type: ignore[arg-type]
                     width=cfg.width, dropout=cfg.dropout)
