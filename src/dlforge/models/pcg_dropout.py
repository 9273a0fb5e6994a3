"""Dropout whose random bits come from numpy's PCG64 instead of torch's CPU bernoulli (issue #19).

On CPUs not made by Intel, torch fills a dropout mask (``bernoulli_``) one element at a time
from its Mersenne Twister, in one thread: on the AMD EPYC of benchmarks/RESULTS.md that was
a fifth of the Basic CNN's bf16 training step (9 ms of 45 for 1.3 million mask elements).
`PCGDropout` draws one seed from torch's global generator per call (so `torch.manual_seed`
and a checkpoint's RNG state reproduce it exactly, as they do torch's dropout), takes 16
random bits per element from numpy's PCG64 (``random_raw``, vectorized) and keeps an element
when its bits fall below ``round((1 - p) * 65536)``: the keep probability is ``1 - p``
rounded to a multiple of 1/65536 (exact for p = 0.25 and 0.5). Kept elements are scaled by
``1 / (1 - p)`` in the input's dtype, as ``torch.nn.functional.dropout`` does; the masks are
not torch's (another generator), so a run's trajectory differs as with another seed.

It has no parameters or buffers: `set_dropout_kernel` swaps an ``nn.Dropout``'s class in
place, so state_dicts and checkpoints are unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dlforge.models.layer_swap import swap_layers

_BITS = 16


def keep_noise(x: Tensor, p: float) -> Tensor:
    """The dropout noise for `x`: ``1 / (1 - p)`` where kept, 0 where dropped, in x's dtype,
    shape and (contiguous or channels_last) memory layout.

    Args:
        x: the input; its dtype and layout are the noise's.
        p: the drop probability, 0 < p < 1 (rounded to a multiple of 1/65536: below 2**-17
            nothing is dropped).

    Returns:
        A tensor like `x`; draws one seed from torch's global generator.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> keep_noise(torch.ones(2, 4), 0.5).tolist()
        [[0.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]]
    """
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    n = x.numel()
    bits = np.random.PCG64(seed).random_raw(-(-n * _BITS // 64)).view(np.int16)[:n]
    raw = torch.from_numpy(bits)
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        raw = raw.as_strided(x.shape, x.stride())  # the bits in x's memory order
    else:
        raw = raw.view(x.shape)
    keep = round((1 - p) * 2**_BITS)  # elements kept per 65536
    if keep >= 2**_BITS:  # p < 2**-17: every element kept (the threshold would not fit int16)
        return torch.full_like(x, 1 / (1 - p))
    # bool x a 0-dim tensor of x's dtype: the noise in that dtype, in one pass (2x `where`)
    return (raw < keep - 2**(_BITS - 1)) * torch.tensor(1 / (1 - p), dtype=x.dtype)  # signed bits


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
