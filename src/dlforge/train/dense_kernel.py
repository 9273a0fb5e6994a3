"""Which GEMM a run's fp32 dense layers use on CPU: `train.dense_kernel`.

`auto` is a decision from measurements on an AMD EPYC (benchmarks/RESULTS.md, "Dense layers
through oneDNN"): there torch's fp32 ``F.linear`` goes to Intel MKL, which is 2-3x slower than
oneDNN on AMD CPUs, and the oneDNN path (`dlforge.models.onednn_linear`) trained the Basic CNN
1.02-1.11x faster with AVX-512; with the kernels limited to AVX2 (the emulation of a CPU
without AVX-512) it measured 0.92-0.99x, so `auto` asks for AVX-512 too. On Intel CPUs MKL is fast, so
`auto` keeps it. Only float32 on CPU is affected: under
bf16 autocast or on a GPU the layers keep ``F.linear``. Override with ``aten`` (always
``F.linear``) or ``onednn`` (always oneDNN where it applies).
"""

from __future__ import annotations

import torch
from torch import nn

from dlforge.models.onednn_linear import onednn_linear_available, set_dense_kernel
from dlforge.runtime import known_non_intel_cpu
from dlforge.train.precision import Precision


def wants_onednn(setting: str, device: torch.device, precision: Precision,
                 vendor: str | None = None, isa: str | None = None) -> bool:
    """Whether this run's dense layers go through oneDNN.

    Args:
        setting: ``auto``, ``aten`` or ``onednn``.
        device: the training device.
        precision: the resolved precision; oneDNN applies to fp32 only.
        vendor: the CPU vendor string; None reads it (`runtime.known_non_intel_cpu`).
        isa: ATen's CPU capability (``AVX512``, ``AVX2``, ...); None asks torch (it follows
            ``ATEN_CPU_CAPABILITY``, which the benchmarks' AVX2 emulation sets).

    Returns:
        ``onednn``: True. ``aten``: False. ``auto``: True on a CPU device in fp32 when the op
        exists, the CPU's vendor is known and not Intel (an x86 CPU where MKL is slow) and the
        kernels run AVX-512.

    Example:
        >>> wants_onednn("auto", torch.device("cpu"), Precision("fp32"), vendor="GenuineIntel")
        False
    """
    if setting != "auto":
        return setting == "onednn"
    if device.type != "cpu" or precision.dtype is not None:
        return False
    isa = torch.backends.cpu.get_cpu_capability() if isa is None else isa
    return known_non_intel_cpu(vendor) and isa.startswith("AVX512") and onednn_linear_available()


def apply_dense_kernel(model: nn.Module, setting: str, device: torch.device,
                       precision: Precision) -> bool:
    """Switch `model`'s dense layers to the kernel `wants_onednn` picks (either way, so a model
    trained before with the other setting follows this one); returns whether oneDNN is on."""
    onednn = wants_onednn(setting, device, precision)
    set_dense_kernel(model, onednn=onednn)
    return onednn
