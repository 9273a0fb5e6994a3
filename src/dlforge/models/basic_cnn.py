"""The classic small CNN: blocks of [conv3x3-ReLU, conv3x3-ReLU, max-pool 2, dropout], then dense.

Each block pools before its second ReLU (conv-ReLU-conv-pool-ReLU): the same function and
gradient, since max commutes with a non-decreasing function, while the ReLU and its backward
touch a quarter of the data (1.045x per fp32 training step, 1.025x in bf16, paired;
benchmarks/bf16_paths.py "textbook"). Parameter names are those of the textbook order.
"""

from __future__ import annotations

import torch
from torch import nn

from dlforge.config.schema import BasicCNNConfig
from dlforge.errors import ConfigError
from dlforge.models.conv_relu import ConvReLUSequential
from dlforge.models.flatten import Flatten
from dlforge.models.max_pool import MaxPool2d


def _block(in_ch: int, out_ch: int, dropout: float, batch_norm: bool,
           stride: int = 1) -> ConvReLUSequential:
    layers: list[nn.Module] = []
    for c_in, s in ((in_ch, stride), (out_ch, 1)):
        # padding=1 keeps H and W ("same"), so only the pools (and a stride-2 stem) shrink it.
        layers.append(nn.Conv2d(c_in, out_ch, 3, stride=s, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.ReLU())
    layers[-1:] = [MaxPool2d(2), nn.ReLU()]  # pool first: relu(pool(x)) == pool(relu(x))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return ConvReLUSequential(*layers)  # conv + ReLU as one primitive without gradients


class BasicCNN(nn.Module):
    """Conv blocks with ``filters[i]`` channels, then ``Flatten -> Linear(dense) -> ReLU ->
    Dropout -> Linear(num_outputs)``. Each block halves H and W (floor); ``downscale > 1``
    average-pools the input by that factor first; ``stem_stride=2`` makes the first
    convolution stride 2 (sides halved, rounded up), so the rest costs a quarter."""

    family = "conv"
    cpu_bf16 = True  # bfloat16 autocast measured 1.75x faster per step on 28x28 (precision.py)

    def __init__(self, input_shape: tuple[int, int, int], num_outputs: int, *,
                 filters: list[int], dense: int = 512, dropout: float = 0.25,
                 dense_dropout: float = 0.5, batch_norm: bool = False, downscale: int = 1,
                 stem_stride: int = 1) -> None:
        super().__init__()
        channels, height, width = input_shape
        blocks: list[nn.Module] = []
        if downscale > 1:
            blocks.append(nn.AvgPool2d(downscale))
            height, width = height // downscale, width // downscale
        height, width = -(-height // stem_stride), -(-width // stem_stride)
        for i, f in enumerate(filters):
            blocks.append(_block(channels, f, dropout, batch_norm, stem_stride if i == 0 else 1))
            channels, height, width = f, height // 2, width // 2
        self.features = nn.Sequential(*blocks)
        classifier: list[nn.Module] = [Flatten(), nn.Linear(channels * height * width, dense),
                                       nn.ReLU()]
        if dense_dropout > 0:
            classifier.append(nn.Dropout(dense_dropout))
        self.classifier = nn.Sequential(*classifier)
        self.head = nn.Linear(dense, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.classifier(self.features(x)))

    def chain(self) -> list[nn.Module]:
        """The layers whose composition is `forward` (pipeline stages cut this list)."""
        blocks = [list(b) if isinstance(b, nn.Sequential) else [b] for b in self.features]
        return [*(layer for block in blocks for layer in block), *self.classifier, self.head]


def check_pools_fit(input_shape: tuple[int, int, int], n_blocks: int) -> None:
    """Raise ConfigError if ``n_blocks`` 2x2 max-pools do not fit images of ``input_shape``.

    Raises:
        ConfigError: naming ``model.filters``, the first pool that would get less than 2x2,
            the size it would get and the most blocks the input allows.
    """
    _, height, width = input_shape
    for block in range(1, n_blocks + 1):
        if height < 2 or width < 2:
            need = 2 ** n_blocks
            most = _most_blocks(input_shape)
            fix = f"Use at most {most} entries in model.filters, or larger images." if most \
                else "Use larger images."
            raise ConfigError(
                f"model.filters: {n_blocks} pooling blocks need inputs of at least "
                f"{need}x{need}; block {block} max-pool would get {height}x{width} from input "
                f"{tuple(input_shape)}. {fix}"
            )
        height, width = height // 2, width // 2


def _most_blocks(input_shape: tuple[int, int, int]) -> int:
    side = min(input_shape[1], input_shape[2])
    return max(0, side.bit_length() - 1)  # floor(log2(side)) halvings keep >= 1 pixel


def build(cfg: BasicCNNConfig, *, input_shape: tuple[int, ...], num_outputs: int,
          vocab_size: int | None = None) -> BasicCNN:
    """Build a :class:`BasicCNN` for images of ``input_shape`` (C, H, W).

    Raises:
        ConfigError: the images are too small for ``len(cfg.filters)`` pools.
    """
    c, h, w = input_shape
    stem = cfg.stem_stride
    check_pools_fit((c, -(-(h // cfg.downscale) // stem), -(-(w // cfg.downscale) // stem)),
                    len(cfg.filters))
    return BasicCNN(input_shape, num_outputs, filters=list(cfg.filters),  # type: ignore[arg-type]
                    dense=cfg.dense, dropout=cfg.dropout, dense_dropout=cfg.dense_dropout,
                    batch_norm=cfg.batch_norm, downscale=cfg.downscale, stem_stride=stem)
