"""Autoencoders for anomaly detection: the output is a reconstruction of the input.

``dense``: flatten -> hidden... -> latent -> hidden reversed -> reshape to the input shape.
``conv``: one stride-2 3x3 conv per ``hidden`` entry (its channels), a Linear bottleneck of
``latent_dim``, then stride-2 transposed convs back up, cropped to the input's exact H and W.
``num_outputs`` is ignored: the output always has the input's shape.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlforge.config.schema import AutoencoderConfig
from dlforge.errors import ConfigError
from dlforge.models.flatten import Flatten


class DenseAutoencoder(nn.Module):
    """Fully connected encoder/decoder mirrored around a linear latent layer."""

    family = "dense"
    reconstructs = True  # outputs its input's reconstruction (a table's: a vector, not scores)

    def __init__(self, input_shape: tuple[int, ...], *, hidden: list[int],
                 latent_dim: int) -> None:
        super().__init__()
        size = math.prod(input_shape)
        widths = [size, *hidden]
        encoder: list[nn.Module] = [nn.Flatten()]
        for w_in, w_out in zip(widths, widths[1:], strict=False):
            encoder += [nn.Linear(w_in, w_out), nn.ReLU()]
        encoder.append(nn.Linear(widths[-1], latent_dim))
        decoder: list[nn.Module] = []
        back = [latent_dim, *reversed(hidden)]
        for w_in, w_out in zip(back, back[1:], strict=False):
            decoder += [nn.Linear(w_in, w_out), nn.ReLU()]
        decoder += [nn.Linear(back[-1], size), nn.Unflatten(1, tuple(input_shape))]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class ConvAutoencoder(nn.Module):
    """Stride-2 conv encoder, Linear bottleneck, stride-2 transposed-conv decoder."""

    family = "conv"
    reconstructs = True

    def __init__(self, input_shape: tuple[int, int, int], *, hidden: list[int],
                 latent_dim: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.out_hw = (height, width)
        encoder: list[nn.Module] = []
        prev = channels
        for ch in hidden:
            encoder += [nn.Conv2d(prev, ch, 3, stride=2, padding=1), nn.ReLU()]
            prev = ch
            height, width = (height + 1) // 2, (width + 1) // 2  # 3x3, stride 2, padding 1
        coded = (prev, height, width)
        encoder += [Flatten(), nn.Linear(math.prod(coded), latent_dim)]
        decoder: list[nn.Module] = [nn.Linear(latent_dim, math.prod(coded)), nn.ReLU(),
                                    nn.Unflatten(1, coded)]
        outs = [*reversed(hidden[:-1]), channels]
        for i, ch in enumerate(outs):
            # output_padding=1 makes each layer exactly double H and W; the result is at
            # least the input size (ceil halvings) and forward() crops the excess.
            decoder.append(nn.ConvTranspose2d(prev, ch, 3, stride=2, padding=1,
                                              output_padding=1))
            if i < len(outs) - 1:
                decoder.append(nn.ReLU())
            prev = ch
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.out_hw
        return self.decoder(self.encoder(x))[..., :height, :width]


def build(cfg: AutoencoderConfig, *, input_shape: tuple[int, ...], num_outputs: int,
          vocab_size: int | None = None) -> nn.Module:
    """Build a dense or conv autoencoder (``cfg.kind``) reconstructing ``input_shape``.

    Raises:
        ConfigError: a conv autoencoder with an empty ``model.hidden``.
    """
    if cfg.kind == "dense":
        return DenseAutoencoder(input_shape, hidden=list(cfg.hidden), latent_dim=cfg.latent_dim)
    if not cfg.hidden:
        raise ConfigError("model.hidden: a conv autoencoder needs at least one entry, the "
                          "channels of each stride-2 conv (got []). Use e.g. [16, 32].")
    return ConvAutoencoder(input_shape, hidden=list(cfg.hidden),  # type: ignore[arg-type]
                           latent_dim=cfg.latent_dim)
