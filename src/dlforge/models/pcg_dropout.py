"""Dropout whose random bits come from numpy's PCG64 instead of torch's CPU bernoulli (issue #19).

On CPUs not made by Intel, torch fills a dropout mask (``bernoulli_``) one element at a time
from its Mersenne Twister, in one thread: on the AMD EPYC of benchmarks/RESULTS.md that was
a fifth of the Basic CNN's bf16 training step (9 ms of 45 for 1.3 million mask elements).
`PCGDropout` draws one seed from torch's global generator per call (so `torch.manual_seed`
and a checkpoint's RNG state reproduce it exactly, as they do torch's dropout) and gives
each element a ``b``-bit random number from numpy's PCG64 (``random_raw``, vectorized),
bit-sliced: ``b`` planes of one bit per element, compared with ``round((1 - p) * 2**b)``
64 elements per word operation; ``b`` is the fewest bits that make the keep probability
exact (1 for p = 0.5, 2 for 0.25 and 0.75, at most 16: ``1 - p`` rounded to a multiple of
1/65536 otherwise). Kept elements are scaled by ``1 / (1 - p)`` in the input's dtype, as
``torch.nn.functional.dropout`` does; the masks are not torch's (another generator), so a
run's trajectory differs as with another seed. Two bits per element at p = 0.25 instead of
16 make a mask 3x cheaper (benchmarks/bf16_paths.py ``pcg16``).

It has no parameters or buffers: `set_dropout_kernel` swaps an ``nn.Dropout``'s class in
place, so state_dicts and checkpoints are unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dlforge.models.layer_swap import swap_layers

_MAX_BITS = 16


def _bits_for(keep: float) -> tuple[int, int]:
    """The fewest bits ``b`` (at most 16) for which ``keep * 2**b`` is a whole number, and that
    number rounded: an element is kept when its ``b``-bit random number is below it."""
    for bits in range(1, _MAX_BITS):
        if (keep * 2**bits).is_integer():
            return bits, int(keep * 2**bits)
    return _MAX_BITS, round(keep * 2**_MAX_BITS)


def _keep_words(planes: np.ndarray, below: int) -> np.ndarray:
    """Bit-sliced ``r < below`` for 64 elements per uint64 word: ``planes[i]`` holds bit
    ``b - 1 - i`` (most significant first) of every element's ``b``-bit random number ``r``."""
    less = np.zeros_like(planes[0])
    equal = np.full_like(planes[0], np.uint64(2**64 - 1))
    bits = len(planes)
    for i, plane in enumerate(planes):
        if below >> (bits - 1 - i) & 1:  # r's bit 0 where below's is 1: r is smaller
            less |= equal & ~plane
            equal &= plane
        else:
            equal &= ~plane
    return less


def keep_noise(x: Tensor, p: float) -> Tensor:
    """The dropout noise for `x`: ``1 / (1 - p)`` where kept, 0 where dropped, in x's dtype,
    shape and (contiguous or channels_last) memory layout.

    Args:
        x: the input; its dtype and layout are the noise's.
        p: the drop probability, 0 < p < 1 (exact when ``1 - p`` is a multiple of 1/65536,
            rounded to one otherwise: below 2**-17 nothing is dropped).

    Returns:
        A tensor like `x`; draws one seed from torch's global generator.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> keep_noise(torch.ones(2, 4), 0.5).tolist()
        [[2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 2.0, 0.0]]
    """
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    bits, below = _bits_for(1 - p)
    scale = 1 / (1 - p)
    if below >= 2**bits:  # p < 2**-17: every element kept
        return torch.full_like(x, scale)
    n = x.numel()
    words = -(-n // 64)
    planes = np.random.PCG64(seed).random_raw(bits * words).reshape(bits, words)
    kept = np.unpackbits(_keep_words(planes, below).view(np.uint8), bitorder="little")[:n]
    # 1 kept / 0 dropped as x's dtype, then x 1/(1 - p) (rounded to that dtype, as torch does)
    noise = torch.from_numpy(kept).to(x.dtype).mul_(torch.tensor(scale, dtype=x.dtype))
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return noise.as_strided(x.shape, x.stride())  # the bits in x's memory order
    return noise.view(x.shape)


class PCGDropout(nn.Dropout):
    """``nn.Dropout`` with its mask from `keep_noise` for CPU tensors (others: ``nn.Dropout``'s).
    Built by `set_dropout_kernel`.

    Example:
        >>> layer = set_dropout_kernel(nn.Sequential(nn.Dropout(0.5)), pcg=True)[0]
        >>> type(layer).__name__, layer.eval()(torch.ones(3)).tolist()
        ('PCGDropout', [1.0, 1.0, 1.0])
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":  # the bits are made on the CPU: GPUs keep torch's dropout
            return super().forward(x)
        if self.p == 1:
            return x * 0 if not self.inplace else x.zero_()
        noise = keep_noise(x, self.p)
        return x.mul_(noise) if self.inplace else x * noise


def set_dropout_kernel(model: nn.Module, *, pcg: bool) -> nn.Module:
    """Switch every ``nn.Dropout`` of `model` to `PCGDropout` (`pcg` True) or back, in place,
    by class. Other dropouts (``Dropout2d``, ``AlphaDropout``, ...) are left alone.

    Args:
        model: any module; its submodules are visited recursively.
        pcg: True for `PCGDropout`, False for ``nn.Dropout``.

    Returns:
        `model` itself.

    Example:
        >>> m = set_dropout_kernel(nn.Sequential(nn.Dropout(0.1)), pcg=True)
        >>> type(m[0]).__name__, type(set_dropout_kernel(m, pcg=False)[0]).__name__
        ('PCGDropout', 'Dropout')
    """
    return swap_layers(model, nn.Dropout, PCGDropout, on=pcg)
