"""On-the-fly augmentation of TRAINING image batches, in pure batched torch.

Every op draws one decision (and one parameter) per sample from the given generator and works on
the whole batch at once: no Python loop over samples, no torchvision. Ops run in a fixed order:
hflip, vflip, crop, rotate, brightness, contrast, noise. The same generator state gives the
same output, so an epoch's augmentation follows from the loader's (seed, epoch).

Alternating flip (`augment.hflip.alternate`, airbench's scheme): instead of a fresh coin per
image and epoch, each image has ONE coin for the run, `flip_coins(seed, positions)`, a hash of
the loader's seed and the image's position in its split (so independent of the batch size,
the order, the process count and a resume point). Even epochs flip the images whose coin is
heads, odd epochs the others. The generator's hflip draw is still made, so the other ops see
the same stream with and without it.

Augmentation runs after preprocessing, on float tensors that are scaled to [0, 1] or
standardized, so the photometric ops are additive/relative and never clamp to a range.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from dlforge.config.schema import AugmentConfig
from dlforge.errors import DataError


class Augmenter:
    """Callable `(x (N, C, H, W) float, generator) -> augmented x`, built from an AugmentConfig.

    - hflip / vflip: mirror left-right / top-bottom with probability p; hflip `alternate`:
      one coin per sample for the run, flipped on even epochs iff heads, on odd iff tails.
    - crop: pad by `padding` pixels on every side (`pad_mode`: the background, or the image
      reflected at its border), then cut an (H, W) window at a uniform random offset, i.e.
      shift the image by up to `padding` pixels each way (p: chance of a random offset; the
      rest stay put).
    - rotate: rotate by an angle uniform in [-degrees, degrees] about the centre (bilinear,
      zero fill), one affine_grid + grid_sample call for the batch.
    - brightness: add a value uniform in [-amount, amount] to the whole image.
    - contrast: scale each image's deviation from its own mean by a factor uniform in
      [1 - amount, 1 + amount].
    - noise: add gaussian noise of standard deviation `std`.

    Example:
        >>> aug = Augmenter(AugmentConfig(hflip={"p": 1.0}))
        >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
        >>> aug(x, torch.Generator().manual_seed(0)).flatten().tolist()
        [1.0, 0.0, 3.0, 2.0]
    """

    def __init__(self, cfg: AugmentConfig, fill: torch.Tensor | None = None) -> None:
        self.cfg = cfg
        # Crop and rotate uncover pixels. They must look like the images' background (raw 0,
        # black), which after standardization is -mean/std per channel, not 0.
        self.fill = None if fill is None else torch.as_tensor(fill, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor, generator: torch.Generator, *,
                 index: torch.Tensor | None = None, epoch: int = 0, seed: int = 0) -> torch.Tensor:
        """Augment a batch; `x` is not modified.

        Args:
            x: float images (N, C, H, W), preprocessed.
            generator: the source of every random draw (the loader's per-epoch stream).
            index: the samples' positions in their split (N,); needed by an alternating flip.
            epoch: the epoch the batch belongs to (an alternating flip's parity).
            seed: the loader's seed (with `index`, an alternating flip's coins).

        Returns:
            A new contiguous tensor of the same shape and dtype.

        Raises:
            DataError: `x` is not a batch of images, or `augment.hflip.alternate` is on and
                `index` is missing or of another length.
        """
        cfg = self.cfg
        if x.ndim != 4:
            raise DataError(f"augment: applies to image batches (N, C, H, W) only, got shape "
                            f"{tuple(x.shape)}; remove the augment section for this data")
        if cfg.hflip is not None:
            chosen = _chosen(x, cfg.hflip.p, generator)  # drawn either way: same stream after
            if cfg.hflip.alternate:
                chosen = _alternating(x, index, epoch, seed)
            x = torch.where(chosen, x.flip(-1), x)
        if cfg.vflip is not None:
            x = torch.where(_chosen(x, cfg.vflip.p, generator), x.flip(-2), x)
        if cfg.crop is not None or cfg.rotate is not None:
            x = self._geometric(x, generator)
        if cfg.brightness is not None:
            delta = _uniform(x, -cfg.brightness.amount, cfg.brightness.amount, generator)
            # Zeroing the delta of unchosen samples costs one pass over x instead of two.
            x = x + delta * _chosen(x, cfg.brightness.p, generator)
        if cfg.contrast is not None:
            factor = _uniform(x, 1 - cfg.contrast.amount, 1 + cfg.contrast.amount, generator)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = torch.where(_chosen(x, cfg.contrast.p, generator), (x - mean) * factor + mean, x)
        if cfg.noise is not None:
            noise = torch.randn(x.shape, generator=generator, device=generator.device).to(x)
            x = x + noise * (cfg.noise.std * _chosen(x, cfg.noise.p, generator))
        return x.contiguous()

    def _geometric(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Shift and rotate with zero fill, measured from the background value."""
        fill = None if self.fill is None else self.fill.to(x)
        if fill is not None:
            x = x - fill
        if self.cfg.crop is not None:
            crop = self.cfg.crop
            x = random_shift(x, crop.padding, crop.p, generator, pad_mode=crop.pad_mode)
        if self.cfg.rotate is not None:
            x = random_rotate(x, self.cfg.rotate.degrees, self.cfg.rotate.p, generator)
        return x if fill is None else x + fill


def build_augmenter(cfg: AugmentConfig, fill: torch.Tensor | None = None) -> Augmenter | None:
    """The augmenter for `cfg`, or None when no op is enabled (so the loader skips the call).

    Args:
        cfg: the `augment` section.
        fill: per-channel value of uncovered pixels (the preprocessed background); default 0.

    Example:
        >>> build_augmenter(AugmentConfig()) is None
        True
    """
    return Augmenter(cfg, fill) if cfg.enabled else None


def random_shift(x: torch.Tensor, padding: int, p: float, generator: torch.Generator, *,
                 pad_mode: str = "zeros") -> torch.Tensor:
    """Pad by `padding` (`pad_mode` zeros, or reflect: mirrored at the border) and crop back
    at a random offset per sample.

    One gather over the flattened padded images (half the time of a row gather followed by a
    column gather).
    """
    n, c, h, w = x.shape
    span = 2 * padding + 1
    chosen = _chosen(x, p, generator).view(n)
    dy = torch.randint(span, (n,), generator=generator, device=generator.device).to(x.device)
    dx = torch.randint(span, (n,), generator=generator, device=generator.device).to(x.device)
    dy = torch.where(chosen, dy, padding)
    dx = torch.where(chosen, dx, padding)
    mode = "reflect" if pad_mode == "reflect" else "constant"
    padded = F.pad(x, (padding, padding, padding, padding), mode=mode).reshape(n, c, -1)
    rows = dy[:, None, None] + torch.arange(h, device=x.device)[None, :, None]
    cols = dx[:, None, None] + torch.arange(w, device=x.device)[None, None, :]
    flat = (rows * (w + 2 * padding) + cols).view(n, 1, h * w)
    return padded.gather(2, flat.expand(n, c, h * w)).view(n, c, h, w)


def random_rotate(x: torch.Tensor, degrees: float, p: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each chosen sample by a uniform angle in [-degrees, degrees]."""
    angles = _uniform(x, -degrees, degrees, generator).view(-1)
    return torch.where(_chosen(x, p, generator), rotate(x, angles), x)


def rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate sample i counter-clockwise by `angles[i]` degrees about its centre, bilinear
    with zero fill: one affine_grid + grid_sample call for the whole batch."""
    rad = angles.to(x) * (math.pi / 180)
    cos, sin, zero = torch.cos(rad), torch.sin(rad), torch.zeros_like(rad)
    # affine_grid maps OUTPUT to INPUT coordinates and its y axis points down, so this matrix
    # turns the picture counter-clockwise as seen on screen (90 degrees == torch.rot90).
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


_COIN_STREAM = 0xF11F  # keeps the coins apart from epoch_generator's streams of the same seed
_GOLDEN, _MIX1, _MIX2 = (np.uint64(v) for v in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9,
                                                 0x94D049BB133111EB))


def flip_coins(seed: int, index: torch.Tensor) -> torch.Tensor:
    """An alternating flip's coin (True: heads, p 0.5) of the samples at positions `index`,
    a splitmix64 hash of (seed, position): cheap, vectorised, the same for a sample whatever
    batch, order or process it comes in.

    Args:
        seed: the loader's seed (non-negative).
        index: positions in the split (any integer shape).

    Returns:
        A bool tensor shaped like `index`, on the CPU.

    Example:
        >>> flip_coins(0, torch.arange(6)).tolist()
        [True, False, False, True, True, True]
        >>> flip_coins(0, torch.tensor([4, 1])).tolist()  # a sample's coin, wherever it comes
        [True, False]
    """
    key = np.random.SeedSequence([seed, _COIN_STREAM]).generate_state(1, dtype=np.uint64)
    z = index.detach().cpu().numpy().astype(np.uint64) * _GOLDEN + key  # uint64 arrays wrap
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return torch.from_numpy((z >> np.uint64(63)).astype(bool))


def _alternating(x: torch.Tensor, index: torch.Tensor | None, epoch: int, seed: int) -> torch.Tensor:
    """The (N, 1, 1, 1) alternating-flip mask: the coin on even epochs, its opposite on odd."""
    if index is None or len(index) != x.shape[0]:
        got = "none" if index is None else f"{len(index)} positions for {x.shape[0]} images"
        raise DataError(f"augment.hflip.alternate: needs each image's position in its split "
                        f"(got {got}); call augment(x, generator, index=positions, epoch=epoch, "
                        f"seed=seed) as the loaders do, or set alternate: false")
    return (flip_coins(seed, index) ^ bool(epoch % 2)).to(x.device).view(-1, 1, 1, 1)


def _chosen(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """A (N, 1, 1, 1) bool mask: which samples this op touches (always drawn, to keep the
    generator's sequence independent of p)."""
    draw = torch.rand(x.shape[0], generator=generator, device=generator.device)
    return (draw < p).to(x.device).view(-1, 1, 1, 1)


def _uniform(x: torch.Tensor, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """One value per sample, uniform in [low, high), shaped (N, 1, 1, 1) like x's dtype."""
    draw = torch.rand(x.shape[0], generator=generator, device=generator.device)
    return (low + (high - low) * draw).to(x).view(-1, 1, 1, 1)

