"""A small ResNet for 32x32 colour images (He et al. 2016, the CIFAR variant).

Three stages of ``width``, ``2*width`` and ``4*width`` channels, ``blocks`` basic residual
blocks each; the first block of stages 2 and 3 halves H and W. Padding keeps every size valid,
so any (C, H, W) input works; below 8x8 the later stages see a 1x1 image.
"""

from __future__ import annotations

import torch
from torch import nn

from dlforge.config.schema import ResNetSmallConfig


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a shortcut (1x1 conv + BN when the shape changes), ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_ch))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNetSmall(nn.Module):
    """Stem conv3x3-BN-ReLU, 3 residual stages, global average pooling, Linear head."""

    family = "conv"
    cpu_bf16 = True  # bfloat16 autocast measured 1.7x faster per step on 32x32 (precision.py)

    def __init__(self, input_shape: tuple[int, int, int], num_outputs: int, *,
                 width: int = 16, blocks: int = 2) -> None:
        super().__init__()
        in_ch = input_shape[0]
        layers: list[nn.Module] = [nn.Conv2d(in_ch, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
        for stage, out_ch in enumerate((width, 2 * width, 4 * width)):
            for i in range(blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(BasicBlock(channels, out_ch, stride))
                channels = out_ch
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


def build(cfg: ResNetSmallConfig, *, input_shape: tuple[int, ...], num_outputs: int,
          vocab_size: int | None = None) -> ResNetSmall:
    """Build a :class:`ResNetSmall` for images of ``input_shape`` (C, H, W)."""
    return ResNetSmall(input_shape, num_outputs, width=cfg.width,  # type: ignore[arg-type]
                       blocks=cfg.blocks)
