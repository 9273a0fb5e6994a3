"""Shared pieces of the training-speed benchmarks: data, the naive reference loop, process
settings, and running a measurement in a fresh process.

Process-wide settings (malloc thresholds, flushed denormals, thread count) cannot be undone
inside a process, so every reference measurement with *default* settings runs in a child
process started with `python <script> --worker '<json>'`.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlforge.config import load_config
from dlforge.config.schema import BasicCNNConfig, MLPConfig
from dlforge.data.prepare import prepare_data
from dlforge.models import build_model
from dlforge.models.conv_relu import ConvReLUSequential
from dlforge.models.flatten import Flatten
from dlforge.models.layer_swap import swap_layers
from dlforge.models.max_pool import MaxPool2d

# Fashion-MNIST's training-pixel mean and std (after /255), so raw slices need no fitting.
_FASHION_MEAN, _FASHION_STD = 0.2860, 0.3530
MLP_HIDDEN = [1024, 512, 256, 128, 64]


def machine_line() -> str:
    """One line describing the machine and how loaded it is right now."""
    load1, load5, _ = os.getloadavg()
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
            f"torch {torch.__version__}, load average {load1:.2f} (1 min) / {load5:.2f} (5 min)")


CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_line() -> str:
    """The CPU model and which of `CPU_FLAGS` it has (Linux /proc/cpuinfo)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU: /proc/cpuinfo unreadable"
    fields = dict(line.split(":", 1) for line in info.splitlines()[:40] if ":" in line)
    flags = set(fields.get("flags\t\t", fields.get("flags", "")).split())
    model = fields.get("model name\t", "?").strip()
    return f"CPU: {model}; " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in CPU_FLAGS)


# A CPU without AVX-512 (and so without AVX512-BF16), emulated on this one: oneDNN, ATen's
# kernels and MKL each read their ISA limit once, when torch loads, so the environment must be
# set before the process starts (`use_isa` re-executes the script).
ISA_ENV = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                    "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}
_PROBE = ("import torch; torch.nn.Conv2d(32, 32, 3)(torch.randn(8, 32, 28, 28)); "
          "print('aten:' + torch.backends.cpu.get_cpu_capability())")


def use_isa(isa: str) -> None:
    """Re-execute this script with `ISA_ENV[isa]` set, unless `isa` is ``native`` or the
    environment already holds it (the re-executed process)."""
    env = ISA_ENV.get(isa, {})
    if all(os.environ.get(k) == v for k, v in env.items()):
        return
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **env})


def isa_line() -> str:
    """The ISA the kernels actually use, read from a fresh process: ATen's CPU capability,
    oneDNN's ISA and convolution implementation (ONEDNN_VERBOSE), MKL's instruction limit."""
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         env={**os.environ, "ONEDNN_VERBOSE": "1"}).stdout
    isa = next((line.split("isa:", 1)[1] for line in out.splitlines() if "isa:" in line), "?")
    conv = next((line.split(",")[6] for line in out.splitlines() if ",convolution," in line), "?")
    aten = next((line[5:] for line in out.splitlines() if line.startswith("aten:")), "?")
    emulated = any(k in os.environ for k in ISA_ENV["avx2"])
    return (f"effective ISA{' (EMULATED by environment limits)' if emulated else ''}: ATen {aten}; "
            f"oneDNN {isa}, conv {conv}; MKL {os.environ.get('MKL_ENABLE_INSTRUCTIONS', 'its own choice')}")


# (label, batch, m, k, n): square GEMMs, the Basic CNN's own shapes (the 3136x512 dense layer
# at batch 128; a 3x3 convolution's im2col product, 128 x 14 x 14 rows), and batched GEMMs.
CEILING_SHAPES = (
    ("1024^3", 1, 1024, 1024, 1024), ("2048^3", 1, 2048, 2048, 2048),
    ("4096x1024x4096", 1, 4096, 1024, 4096), ("128x3136x512 (dense)", 1, 128, 3136, 512),
    ("25088x576x64 (conv im2col)", 1, 25088, 576, 64),
    ("32 x 512^3 (batched)", 32, 512, 512, 512), ("256 x 128^3 (batched)", 256, 128, 128, 128),
)
# (label, m, k, n): GEMMs run by oneDNN as 1x1 convolutions (m = pixels, k = in, n = out
# channels); torch.mm goes to MKL, whose dispatch on non-Intel CPUs may pick slower kernels.
ONEDNN_GEMMS = (("1x1 conv 25088x256x256 (oneDNN)", 25088, 256, 256),
                ("1x1 conv 6272x1024x1024 (oneDNN)", 6272, 1024, 1024))


def gemm_gflops(batch: int, m: int, k: int, n: int, repeats: int = 3) -> float:
    """Best GFLOP/s of `repeats` fp32 products `(batch x) m x k @ k x n` (2 m k n FLOPs each),
    after a warm-up call that picks the kernel; `torch.bmm` when `batch > 1`."""
    a, b = torch.randn(batch, m, k), torch.randn(batch, k, n)
    mul = torch.bmm if batch > 1 else (lambda x, y: torch.mm(x[0], y[0]))
    calls = max(1, int(2e9 // (2 * batch * m * k * n)))  # about 2 GFLOP per timed call
    mul(a, b)
    rate = best_rate(lambda: [mul(a, b) for _ in range(calls)] and calls, repeats)
    return 2 * batch * m * k * n / 1e9 * rate


@torch.no_grad()
def conv1x1_gflops(m: int, k: int, n: int, repeats: int = 3) -> float:
    """Best GFLOP/s of a 1x1 convolution, channels_last (a GEMM m x k @ k x n in oneDNN)."""
    side = int(m ** 0.5)
    x = torch.randn(m // (side * side), k, side, side).contiguous(memory_format=torch.channels_last)
    conv = nn.Conv2d(k, n, 1, bias=False).to(memory_format=torch.channels_last)
    flops = 2 * x.shape[0] * side * side * k * n
    calls = max(1, int(2e9 // flops))
    conv(x)
    return flops / 1e9 * best_rate(lambda: [conv(x) for _ in range(calls)] and calls, repeats)


def fp32_ceiling() -> tuple[float, str, dict[str, float]]:
    """The fp32 ceiling on this process's threads: the best GFLOP/s over `CEILING_SHAPES`
    (MKL's single and batched GEMMs) and `ONEDNN_GEMMS`. Returns (best GFLOP/s, its shape's
    label, GFLOP/s per label)."""
    rates = {label: gemm_gflops(b, m, k, n) for label, b, m, k, n in CEILING_SHAPES}
    rates |= {label: conv1x1_gflops(m, k, n) for label, m, k, n in ONEDNN_GEMMS}
    best = max(rates, key=rates.get)
    return rates[best], best, rates


def train_gflops_per_sample(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Training GFLOPs per sample: 3x the forward pass's (`models/flops.py`; the backward pass
    computes gradients of inputs and of weights, each about one forward's matmuls)."""
    from dlforge.models.flops import describe_model

    return 3 * describe_model(model, input_shape)["flops"] / 1e9


def fashion_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `n` Fashion-MNIST training images, standardised, with their labels."""
    from dlforge.config.schema import DataConfig
    from dlforge.data.sources import load_dataset

    ds = load_dataset(DataConfig(source="idx", name="fashion_mnist"))
    x = (ds.x[:n].astype(np.float32) / 255 - _FASHION_MEAN) / _FASHION_STD
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(ds.y[:n].astype(np.int64))


def recipe_config(limit: int | None, init: str = "glorot") -> object:
    """The default Basic-CNN recipe on Fashion-MNIST (every train option at its default)."""
    data = {"source": "idx", "name": "fashion_mnist"}
    if limit:
        data["limit"] = limit
    return load_config({"name": "bench", "data": data,
                        "model": {"type": "basic_cnn", "init": init}})


def prepared_recipe(limit: int | None):
    """`prepare_data` of the default recipe: the loaders and tensors both loops train on."""
    return prepare_data(recipe_config(limit))


def build(model: str, init: str, seed: int = 0, textbook: bool = False) -> nn.Module:
    """The Basic CNN (28x28x1, 10 classes) or the 1024-512-256-128-64 MLP, seeded.

    `textbook`: the CNN as a user writes it, for the naive reference loop: blocks in the order
    conv-ReLU-conv-ReLU-pool (dlforge's Basic CNN pools before the second ReLU: the same
    function and gradient, less memory traffic) and torch's own layers (dlforge's block,
    max-pool and flatten subclasses, with their faster paths, swapped back by class)."""
    torch.manual_seed(seed)
    if model == "cnn":
        cfg = BasicCNNConfig(init=init)
    else:
        cfg = MLPConfig(hidden=MLP_HIDDEN, init=init)
    built = build_model(cfg, input_shape=(1, 28, 28), num_outputs=10)
    if textbook and model == "cnn":
        for block in built.features:
            kinds = [type(m) for m in block]
            i = kinds.index(MaxPool2d)
            block[i], block[i + 1] = block[i + 1], block[i]  # pool, ReLU -> ReLU, pool
        for ours, torchs in ((ConvReLUSequential, nn.Sequential), (MaxPool2d, nn.MaxPool2d),
                             (Flatten, nn.Flatten)):
            swap_layers(built, torchs, ours, on=False)
        assert {type(m).__module__.split(".")[0] for m in built.modules() if m is not built} \
            == {"torch"}, "the naive loop's CNN must be torch's layers only"
    return built


def apply_settings(s: dict) -> None:
    """Process-wide settings of one variant: threads, glibc malloc thresholds, denormals."""
    if s.get("threads"):
        torch.set_num_threads(s["threads"])
    if s.get("malloc"):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 2**30)       # M_MMAP_THRESHOLD
        libc.mallopt(-1, 2**31 - 1)   # M_TRIM_THRESHOLD
    if s.get("denormal"):
        torch.set_flush_denormal(True)


def naive_epoch(model: nn.Module, opt: torch.optim.Optimizer, loader, channels_last: bool = False,
                bf16: bool = False) -> int:
    """One plain eager epoch (the loop in every PyTorch tutorial); returns samples seen.
    `bf16` runs the forward pass and loss under bfloat16 autocast."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    seen = 0
    for xb, yb in loader:
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(xb).float(), yb)
        loss.backward()
        opt.step()
        seen += len(yb)
    return seen


@torch.no_grad()
def naive_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024,
               channels_last: bool = False, bf16: bool = False) -> float:
    """Accuracy of `model` on `(x, y)` in eval mode, batch by batch (bfloat16 autocast if asked)."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            correct += int((model(xb).argmax(1) == y[i:i + batch]).sum())
    return correct / len(x)


def best_rate(fn, repeats: int) -> float:
    """Highest samples/s over `repeats` calls of `fn() -> samples` (the least disturbed run
    on a shared machine, as `timeit` advises)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        samples = fn()
        rates.append(samples / (time.perf_counter() - start))
    return max(rates)


def seconds(fn) -> float:
    """Wall seconds of one call of `fn`."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(a, b, rounds: int) -> float:
    """Median over `rounds` of time(a) / time(b), alternating A and B in this process; round 0
    is a warm-up and dropped (> 1: B is faster). Prints every round's ratio."""
    ratios = []
    for r in range(rounds + 1):
        ta, tb = seconds(a), seconds(b)
        if r:
            ratios.append(ta / tb)
    print(f"  (rounds: {', '.join(f'{v:.2f}' for v in ratios)})", flush=True)
    return statistics.median(ratios)


def in_child(script: Path, job: dict) -> dict:
    """Run `job` in a fresh Python process (default process settings) and return its JSON."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONWARNINGS"] = "ignore"
    if job.get("settings", {}).get("omp_passive"):
        # libgomp reads its wait policy once, when torch loads it: only a fresh process can
        # change it. PASSIVE makes idle OpenMP threads sleep instead of spinning.
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run([sys.executable, str(script), "--worker", json.dumps(job)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])
