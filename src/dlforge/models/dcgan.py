"""DCGAN: a generator and a discriminator sized to the image shape (Radford et al., 2016).

The generator maps z (latent_dim) through a Linear layer to `2 * width` channels at a quarter
of the image's height and width, then two stride-2 transposed convs (BatchNorm, ReLU) up to
(C, H, W) with a sigmoid: pixels in [0, 1], the range of images preprocessed with
`preprocess.image.scale: true, standardize: false` (a config rule). The discriminator mirrors
it: two stride-2 convs (LeakyReLU 0.2; spectral norm on every layer when asked) and a Linear
layer to one logit. Two stride-2 stages need sides divisible by 4 and at least 8 (digits' 8x8
gives a 2x2 start; Fashion-MNIST's 28x28 a 7x7 one).

Each network names its dense layer (`models.head`): the generator's Linear projection of z as
its input layer, the discriminator's Linear layer as its output layer; `train.optimizer: muon`
leaves these to SGD and gives Muon every convolution (measured better than SGD on the outer
convolutions, benchmarks/RESULTS.md).
"""

from __future__ import annotations

import torch
from torch import nn

from dlforge.config.schema import DCGANConfig
from dlforge.errors import ConfigError
from dlforge.models.flatten import Flatten

MIN_SIDE = 8
STAGES = 2  # stride-2 stages in G and in D: sides must be divisible by 2**STAGES


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, C, H, W) in [0, 1]."""

    # Muon (train/muon.py) takes the convolutions; the dense projection of z takes SGD.
    input_layer_name = "project.0"

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: int) -> None:
        super().__init__()
        channels, height, width_px = image_shape
        self.start = (2 * width, height // 4, width_px // 4)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * self.start[1] * self.start[2]),
            nn.BatchNorm1d(2 * width * self.start[1] * self.start[2]), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.project(z).view(-1, *self.start))


class Discriminator(nn.Module):
    """images (N, C, H, W) -> one real-vs-generated logit (N,)."""

    # Muon takes the convolutions; the dense output layer takes SGD.
    output_layer_name = "net.5"

    def __init__(self, image_shape: tuple[int, int, int], width: int, spectral: bool) -> None:
        super().__init__()
        channels, height, width_px = image_shape
        norm = nn.utils.parametrizations.spectral_norm if spectral else (lambda layer: layer)
        self.net = nn.Sequential(
            norm(nn.Conv2d(channels, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            norm(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            Flatten(), norm(nn.Linear(2 * width * (height // 4) * (width_px // 4), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class GAN(nn.Module):
    """Both networks in one module (one state dict, one bundle); `forward(z)` generates."""

    family = "conv"
    predicts = False  # forward(z) generates images: nothing reads it as a prediction

    def __init__(self, image_shape: tuple[int, int, int], cfg: DCGANConfig) -> None:
        super().__init__()
        self.latent_dim = cfg.latent_dim
        self.generator = Generator(image_shape, cfg.latent_dim, cfg.width)
        self.discriminator = Discriminator(image_shape, cfg.width, cfg.spectral_norm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` images from z ~ N(0, I) drawn with `generator` (the global one when None)."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        return self.generator(z.to(next(self.parameters()).device))


def check_image_size(shape: tuple[int, ...]) -> None:
    """Raise ConfigError unless (C, H, W) fits the DCGAN's two stride-2 stages."""
    _, height, width = shape
    if min(height, width) < MIN_SIDE or height % 4 or width % 4:
        raise ConfigError(
            f"model.type: dcgan needs image sides of at least {MIN_SIDE} pixels, divisible by 4 "
            f"(two stride-2 stages); the data gives {height}x{width}. Set data.image_size to "
            f"such a size (e.g. {max(MIN_SIDE, -(-max(height, width) // 4) * 4)})")


def build(cfg: DCGANConfig, *, input_shape: tuple[int, ...], num_outputs: int,
          vocab_size: int | None = None) -> GAN:
    """Build a :class:`GAN` for images of ``input_shape``; ``num_outputs`` is ignored.

    Raises:
        ConfigError: images too small or not divisible by 4.

    Example:
        >>> build(DCGANConfig(width=4), input_shape=(1, 8, 8), num_outputs=10).sample(2).shape
        torch.Size([2, 1, 8, 8])
    """
    check_image_size(input_shape)
    return GAN(tuple(input_shape), cfg)
