"""Process-wide knobs in one place: device choice, CPU threads, allocator settings, seeding.

Nothing else in dlforge calls `torch.set_num_threads`, `mallopt` or seeds the global RNGs.
"""

from __future__ import annotations

import ctypes
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np
import torch

from dlforge.errors import ConfigError

# glibc mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 2**30
_TRIM_THRESHOLD = 2**31 - 1

_malloc_tuned = False
THREADS_ENV = "DLFORGE_NUM_THREADS"


def select_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn a device spec from the config into a `torch.device`.

    Args:
        spec: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``;
            a `torch.device` is checked the same way.

    Returns:
        The device to train and predict on.

    Raises:
        ConfigError: the requested accelerator is not available on this machine.

    Example:
        >>> select_device("cpu")
        device(type='cpu')
    """
    if isinstance(spec, torch.device):
        return spec
    spec = str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device: {spec!r} requested but CUDA is not available; use device: auto or cpu"
            )
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device: {spec!r} requested but only {torch.cuda.device_count()} CUDA "
                f"device(s) exist; use cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    if spec == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device: 'mps' requested but MPS is not available; use device: auto or cpu")
    return torch.device(spec)


def setup_process(num_threads: int | None, device: str | torch.device) -> torch.device:
    """The process-wide set-up of a run, done once by the entry that starts the work
    (`pipeline.run`, a search worker): threads and allocator settings, then the device.

    Raises:
        ConfigError: the requested accelerator is not available.
    """
    configure_process(num_threads)
    return select_device(device)


def configure_process(num_threads: int | None = None) -> None:
    """Set CPU threads and allocator thresholds for training. Idempotent; never fails.

    glibc otherwise returns large freed buffers to the OS on every step (mmap/munmap and heap
    trimming), so each step pays page faults again; raising both thresholds made CNN training
    on CPU 1.45x faster in our measurements.

    Args:
        num_threads: intra-op threads for torch; default $DLFORGE_NUM_THREADS (set by the
            data-parallel launcher: its cores divided among its processes), else the number
            of physical cores.
    """
    use_threads(num_threads or int(os.environ.get(THREADS_ENV) or 0) or physical_cores())
    _tune_glibc_malloc()


def use_threads(threads: int) -> None:
    """Run the calling thread's torch work on `threads` intra-op threads (OpenMP's count is
    per calling thread: the server's inference thread changes its own, not the event loop's)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


# oneDNN's ISA limits that exclude bfloat16 dot products (ONEDNN_MAX_CPU_ISA, or its former
# name DNNL_MAX_CPU_ISA): a process started with one of them computes bf16 by emulation.
_NO_BF16_ISAS = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                           "AVX512_CORE_VNNI"})


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX), so oneDNN runs
    bfloat16 convolutions and matmuls faster than float32 instead of emulating them.

    A process whose oneDNN is limited to an ISA without bf16 (``ONEDNN_MAX_CPU_ISA=AVX2``, how
    the benchmarks emulate a CPU without it) counts as a CPU without it.

    Returns:
        False also on torch builds without oneDNN or without these checks; never raises.

    Example:
        >>> isinstance(cpu_has_native_bf16(), bool)
        True
    """
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    if limit.upper() in _NO_BF16_ISAS:
        return False
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported()
                    and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()))
    except (AttributeError, RuntimeError):  # an older torch or a build without oneDNN
        return False


def cpu_vendor(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The x86 CPU vendor string, e.g. ``GenuineIntel`` or ``AuthenticAMD``.

    Args:
        cpuinfo: the file to read (Linux's ``/proc/cpuinfo``; a test passes its own).

    Returns:
        The first ``vendor_id`` of `cpuinfo`; "" where there is none (not Linux, not x86,
        unreadable). Never raises.

    Example:
        >>> isinstance(cpu_vendor(), str)
        True
    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "vendor_id":
            return value.strip()
    return ""


def known_non_intel_cpu(vendor: str | None = None) -> bool:
    """Whether the CPU's vendor is known and is not Intel: there torch's MKL paths (``sgemm``,
    the vectorized ``bernoulli_``) are slow or unused, so the `auto` kernel switches of
    `train.dense_kernel` and `train.dropout_kernel` apply.

    Args:
        vendor: the vendor string; None reads it (`cpu_vendor`).

    Example:
        >>> known_non_intel_cpu("AuthenticAMD"), known_non_intel_cpu("GenuineIntel"), known_non_intel_cpu("")
        (True, False, False)
    """
    vendor = cpu_vendor() if vendor is None else vendor
    return vendor not in ("", "GenuineIntel")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CUDA included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def peak_rss_mb() -> float:
    """The most resident memory this process has used so far, in MB (ru_maxrss: KB on Linux,
    bytes on macOS).

    Example:
        >>> peak_rss_mb() > 0
        True
    """
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once)."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # macOS, Windows: no affinity API; logical CPUs are the best guess
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topo / "physical_package_id").read_text().strip(),
                       (topo / "core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))  # no sysfs topology: count logical CPUs
    return max(1, len(cores))


def _tune_glibc_malloc() -> None:
    global _malloc_tuned
    if _malloc_tuned or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    except (OSError, AttributeError):  # an unusual libc: keep its defaults, never fail
        return
    _malloc_tuned = True
