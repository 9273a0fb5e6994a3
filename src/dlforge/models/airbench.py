"""The CIFAR-10 recipe's net, after the published fast-training work (Keller Jordan's airbench,
David Page's "How to train your ResNet", hlb-CIFAR10), written here from their descriptions.

- A patch-whitening first layer: a ``whiten_size`` x ``whiten_size`` convolution (no padding)
  whose filters are the eigenvectors of the training images' patch covariance, each scaled by
  1 / sqrt(eigenvalue), and their negatives (``2 * C * k * k`` output channels). Its weights
  are a buffer, not a parameter: frozen, saved with the model, never decayed; only its bias
  trains. `fit_to_inputs(x)` sets them from training images when the model is built for the
  data (`candidate.build.build_for_data`); until then they are the identity basis.
- VGG-like blocks with batch norm: conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU,
  one per entry of ``widths``, each halving H and W.
- A global max-pool and a bias-free linear head whose logits are scaled by 1/9 (a cooler
  softmax at initialisation, as airbench does).
- Test-time flip: in eval mode (``test_flip``) the logits are the mean of the image's and its
  mirror image's, so validation, test, the registered bundle and the server all see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dlforge.config.schema import AirbenchConfig
from dlforge.errors import ConfigError

HEAD_SCALE = 1 / 9
WHITEN_EPS = 5e-4  # added to the eigenvalues: patches of flat regions have near-0 variance
WHITEN_SAMPLES = 5000  # images the covariance is estimated from (evenly spaced over the split)


class Whitening(nn.Module):
    """A frozen ``k x k`` convolution (weights a buffer) plus a trainable bias."""

    def __init__(self, in_ch: int, k: int) -> None:
        super().__init__()
        n = in_ch * k * k
        basis = torch.eye(n).view(n, in_ch, k, k)
        self.register_buffer("weight", torch.cat([basis, -basis]))
        self.bias = nn.Parameter(torch.zeros(2 * n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Set the filters from images ``x`` (N, C, H, W) as airbench does: the eigenvectors of
        the (uncentred) second-moment matrix of all their ``k x k`` patches, scaled by
        1 / sqrt(eigenvalue + WHITEN_EPS), and their negatives, so that the layer's outputs on
        those patches have (near) unit variance."""
        n_out, in_ch, k, _ = self.weight.shape
        # evenly spaced, not the first: a split kept in its source's (e.g. class) order
        picked = torch.linspace(0, len(x) - 1, min(len(x), WHITEN_SAMPLES)).round().long()
        patches = F.unfold(x[picked].float(), k).transpose(1, 2).reshape(-1, in_ch * k * k)
        cov = patches.T @ patches / max(len(patches), 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov.double())
        filters = (eigenvectors.T / (eigenvalues.clamp(min=0) + WHITEN_EPS).sqrt()[:, None]).float()
        filters = filters.view(-1, in_ch, k, k).flip(0)  # largest variance first
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight))


@dataclass(frozen=True)
class BlockOptions:
    """How the blocks' batch norms, convolutions and pools are set up (`AirbenchConfig`)."""

    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    bn_scale: bool = True
    dirac_init: bool = False
    pool_floor: bool = False

    def norm(self, channels: int) -> nn.BatchNorm2d:
        """Batch norm with these statistics; a frozen scale stays at 1 (only the shift trains)."""
        bn = nn.BatchNorm2d(channels, eps=self.bn_eps, momentum=self.bn_momentum)
        bn.weight.requires_grad_(self.bn_scale)
        return bn

    @staticmethod
    def conv(in_ch: int, out_ch: int) -> nn.Conv2d:
        """A bias-free 3x3 convolution."""
        return nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)


def conv_block(in_ch: int, out_ch: int, opts: BlockOptions = BlockOptions()) -> nn.Sequential:
    """conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU (airbench's block)."""
    return nn.Sequential(
        opts.conv(in_ch, out_ch),
        nn.MaxPool2d(2, ceil_mode=not opts.pool_floor),
        opts.norm(out_ch), nn.GELU(),
        opts.conv(out_ch, out_ch),
        opts.norm(out_ch), nn.GELU(),
    )


class Airbench(nn.Module):
    """Whitening (or a plain conv) -> GELU -> blocks -> global max-pool -> linear head / 9."""

    family = "conv"

    def __init__(self, input_shape: tuple[int, int, int], num_outputs: int, *,
                 widths: list[int], whiten: bool = True, whiten_size: int = 2,
                 test_flip: bool = True, tta_translate: bool = False,
                 whiten_bias_epochs: int | None = None,
                 blocks: BlockOptions = BlockOptions()) -> None:
        super().__init__()
        in_ch, k = input_shape[0], whiten_size
        self.stem: nn.Module = Whitening(in_ch, k) if whiten else nn.Conv2d(in_ch, 2 * in_ch * k * k, k)
        channels = 2 * in_ch * k * k
        layers = []
        for width in widths:
            layers.append(conv_block(channels, width, blocks))
            channels = width
        self.features = nn.Sequential(nn.GELU(), *layers)
        self.head = nn.Linear(channels, num_outputs, bias=False)
        self.test_flip, self.tta_translate = test_flip, tta_translate
        self.whiten_bias_epochs = whiten_bias_epochs
        self.dirac_init = blocks.dirac_init

    @property
    def changes_trainable(self) -> bool:
        """Whether training freezes a parameter midway (the whitening bias), which the fit
        loop's DDP wrapper must expect."""
        return self.whiten_bias_epochs is not None

    @torch.no_grad()
    def after_init(self) -> None:
        """Called by `build_model` after `model.init`: with `dirac_init`, the first in-channels
        filters of each block convolution become the identity (airbench)."""
        if not self.dirac_init:
            return
        for layer in self.features.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.dirac_(layer.weight[:layer.in_channels])

    def fit_to_inputs(self, x: torch.Tensor) -> None:
        """Initialise what is fitted to the training inputs: the whitening filters."""
        if isinstance(self.stem, Whitening):
            self.stem.fit(x)

    def epoch_started(self, epoch: int) -> None:
        """Called by the fit loop before each training epoch (from 0): the whitening bias
        trains for the first `whiten_bias_epochs` epochs only (a frozen parameter has no
        gradient, so the optimizer skips it)."""
        if self.whiten_bias_epochs is not None:
            self.stem.bias.requires_grad_(epoch < self.whiten_bias_epochs)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self.stem(x))
        return self.head(torch.amax(h, dim=(2, 3))) * HEAD_SCALE

    def flip_averaged(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the logits of `x` and of its mirror image."""
        return (self.logits(x) + self.logits(x.flip(-1))) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.test_flip:
            return self.logits(x)
        if not self.tta_translate:
            return self.flip_averaged(x)
        h, w = x.shape[-2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = (self.flip_averaged(padded[..., :h, :w])
                   + self.flip_averaged(padded[..., 2:, 2:])) / 2
        return (self.flip_averaged(x) + shifted) / 2


def build(cfg: AirbenchConfig, *, input_shape: tuple[int, ...], num_outputs: int,
          vocab_size: int | None = None) -> Airbench:
    """Build an :class:`Airbench` for images of ``input_shape`` (C, H, W).

    Example:
        >>> net = build(AirbenchConfig(widths=[4]), input_shape=(3, 8, 8), num_outputs=2)
        >>> tuple(net.stem.weight.shape), tuple(net.eval()(torch.zeros(1, 3, 8, 8)).shape)
        ((24, 3, 2, 2), (1, 2))

    Raises:
        ConfigError: images smaller than the whitening patches.
    """
    if min(input_shape[1:]) < cfg.whiten_size:
        raise ConfigError(f"model.whiten_size: patches of {cfg.whiten_size} px do not fit images "
                          f"of {input_shape[1]}x{input_shape[2]} px; use at most "
                          f"{min(input_shape[1:])}")
    blocks = BlockOptions(bn_momentum=cfg.bn_momentum, bn_eps=cfg.bn_eps, bn_scale=cfg.bn_scale,
                          dirac_init=cfg.dirac_init, pool_floor=cfg.pool_floor)
    return Airbench(input_shape, num_outputs, widths=list(cfg.widths),  # type: ignore[arg-type]
                    whiten=cfg.whiten, whiten_size=cfg.whiten_size, test_flip=cfg.test_flip,
                    tta_translate=cfg.tta_translate, whiten_bias_epochs=cfg.whiten_bias_epochs,
                    blocks=blocks)
