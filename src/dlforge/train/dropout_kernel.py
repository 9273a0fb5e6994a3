"""Where a run's dropout masks come from on CPU: `train.dropout_kernel`.

`auto` is a decision from measurements on an AMD EPYC (benchmarks/RESULTS.md, "The bf16
training step of the Basic CNN"): torch's CPU ``bernoulli_`` uses Intel MKL's vectorized
generator only on Intel CPUs; elsewhere it draws one element at a time from its Mersenne
Twister in one thread, a fifth of the Basic CNN's bf16 step there. `PCGDropout`
(`dlforge.models.pcg_dropout`) takes the bits from numpy's PCG64 instead. So `auto` switches
on a CPU device whose vendor is known and not Intel (not measured on Intel, where torch's
path is MKL's); GPUs keep torch's dropout. ``aten`` always keeps ``nn.Dropout``, ``pcg``
always switches (tensors off the CPU still take torch's dropout).
"""

from __future__ import annotations

import torch
from torch import nn

from dlforge.models.pcg_dropout import set_dropout_kernel
from dlforge.runtime import known_non_intel_cpu


def wants_pcg_dropout(setting: str, device: torch.device, vendor: str | None = None) -> bool:
    """Whether this run's ``nn.Dropout`` layers draw their masks from PCG64.

    Args:
        setting: ``auto``, ``aten`` or ``pcg``.
        device: the training device.
        vendor: the CPU vendor string; None reads it (`runtime.known_non_intel_cpu`).

    Returns:
        ``pcg``: True. ``aten``: False. ``auto``: True on a CPU device when the CPU's vendor is
        known and is not Intel.

    Example:
        >>> wants_pcg_dropout("auto", torch.device("cpu"), vendor="AuthenticAMD")
        True
    """
    if setting != "auto":
        return setting == "pcg"
    if device.type != "cpu":
        return False
    return known_non_intel_cpu(vendor)


def apply_dropout_kernel(model: nn.Module, setting: str, device: torch.device) -> bool:
    """Switch `model`'s dropout layers to the kernel `wants_pcg_dropout` picks (either way, so
    a model trained before with the other setting follows this one); returns whether PCG is on.

    Example:
        >>> m = nn.Sequential(nn.Dropout(0.5))
        >>> apply_dropout_kernel(m, "pcg", torch.device("cpu")), type(m[0]).__name__
        (True, 'PCGDropout')
    """
    pcg = wants_pcg_dropout(setting, device)
    set_dropout_kernel(model, pcg=pcg)
    return pcg
