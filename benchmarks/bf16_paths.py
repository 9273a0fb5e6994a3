"""Paired A/B measurements of the Basic CNN's bf16 training step (issue #19: 2.25x -> 2.7x).

Every figure is the median over `--rounds` of time(A) / time(B), A and B alternating in this
process, round 0 dropped (`_common.paired`; > 1: B is faster). A round is `--steps` training
steps as `fit` runs them (`SupervisedStep.train_batch` on the loop state `_setup` builds),
or with `--fit-epochs` one whole `fit` epoch over `--samples`: short rounds keep a shared
machine's bursts from landing on one side only. A is `fit`'s default path (`--base now`:
bf16 autocast, channels_last, fused Adam, PCG dropout masks), session 5's (`session5`:
torch's dropout masks) or that in fp32 (`session5-fp32`), or today's in fp32 (`now-fp32`, a CPU
without bf16: dense layers through oneDNN, PCG dropout masks); B changes one thing:

- ``dropout``: `train.dropout_kernel: pcg` (masks from numpy's PCG64);
- ``adam``: torch's foreach Adam instead of the fused one;
- ``dense``: the dense layers' bf16 GEMMs (forward, grad-input, grad-weight) through oneDNN's
  linear op, as `train.dense_kernel: onednn` does in fp32 (bf16 leaves them to ``F.linear``);
- ``fpmath``: no autocast: fp32 tensors, with oneDNN's convolutions and matmuls computing in
  bf16 internally (``torch.backends.mkldnn.*.fp32_precision = "bf16"``);
- ``convrelu``: each conv + ReLU as one oneDNN primitive (``mkldnn._convolution_pointwise``
  with a ReLU post-op; the backward masks the gradient with the output, then the kernel's
  input and weight gradients and a summed bias gradient; in training only: evaluation fuses
  the pair already, `models/conv_relu.py`);
- ``conv1fp32``: the first convolution (1 input channel) in fp32, outside autocast;
- ``threads1``: one intra-op thread instead of two;
- ``inplace``: the ReLUs in place (no new output tensor);
- ``kernelbias``: the convolutions' bias gradients from oneDNN's weight-gradient kernel, as
  before session 9 (`train.conv_bias_grad: kernel`; its bias loop is plain C++, 4 % of the
  fp32 step's CPU samples in `perf`); `auto` sums them with torch in fp32 (measured the
  other way round before adopting it: 1.038x per fp32 step, B < 1 now);
- ``densecopies``: the oneDNN dense layers' backward copies the transposed weight and input
  before its GEMMs, as before session 9 (it passes transposed views now; fp32 bases only,
  where `train.dense_kernel: auto` picks oneDNN; B < 1: the views are faster);
- ``pcg16``: PCG dropout masks from 16 random bits per element compared with the keep
  threshold, as before session 10 (now: bit-sliced, the fewest bits that make 1 - p exact,
  2 at p = 0.25; B < 1: the new masks are faster);
- ``nnflatten``: torch's ``nn.Flatten``, whose backward returns an NCHW gradient to the last
  block's channels_last ReLU and max-pool (dlforge's `Flatten` returns it channels_last; B < 1:
  dlforge's is faster);
- ``textbook``: each block's ReLU before its max-pool, as written before session 8 (dlforge
  pools first: the same function and gradient, the ReLU on a quarter of the data; measured
  with the order reversed: pool-first 1.045x per fp32 step, 1.025x bf16).

Each idea first prints how far B's logits are from A's on 256 images (same weights, eval).

    .venv/bin/python benchmarks/bf16_paths.py [--base now|session5|session5-fp32|now-fp32]
        [--only dropout,convrelu] [--steps 1] [--rounds 100] [--fit-epochs --samples 3840]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from dlforge.config.schema import TrainConfig  # noqa: E402
from dlforge.data.dataset import TaskSpec  # noqa: E402
from dlforge.data.loader import BatchLoader, Loaders  # noqa: E402
from dlforge.models import onednn_linear, pcg_dropout  # noqa: E402
from dlforge.models.flatten import Flatten  # noqa: E402
from dlforge.models.layer_swap import swap_layers  # noqa: E402
from dlforge.models.onednn_linear import _OneDNNLinearFn  # noqa: E402
from dlforge.runtime import setup_process  # noqa: E402
from dlforge.train import optim  # noqa: E402
from dlforge.train.loop import _setup, _to_device, fit  # noqa: E402

TASK = TaskSpec("multiclass", tuple(str(i) for i in range(10)))
BF16 = torch.bfloat16


# ------------------------------------------------------------------- prototypes of B's changes


class _ConvReLUFn(torch.autograd.Function):
    """relu(conv(x, w, b)) by one oneDNN primitive; backward: mask, then conv's backward."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding):
        y = torch.ops.mkldnn._convolution_pointwise(x, w, b, padding, stride, [1, 1], 1, "relu",
                                                    [None], "")
        ctx.save_for_backward(x, w, y)
        ctx.geometry = stride, padding
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w, y = ctx.saved_tensors
        stride, padding = ctx.geometry
        grad = torch.ops.aten.threshold_backward(grad, y, 0)
        gi, gw, _ = torch.ops.aten.convolution_backward(
            grad, x, w, [w.shape[0]], stride, padding, [1, 1], False, [0, 0], 1,
            [*ctx.needs_input_grad[:2], False])
        # the bias gradient summed by torch, as `train.conv_bias_grad: auto` does in fp32
        return gi, gw, grad.sum((0, 2, 3)), None, None


class ConvReLU(nn.Conv2d):
    """A Conv2d whose forward also applies the ReLU that followed it (replaced by Identity)."""

    def forward(self, x):
        dtype = BF16 if torch.is_autocast_enabled("cpu") else x.dtype
        with torch.autocast("cpu", enabled=False):
            return _ConvReLUFn.apply(x.to(dtype), self.weight.to(dtype), self.bias.to(dtype),
                                     list(self.stride), list(self.padding))


def fuse_conv_relu(model: nn.Module) -> nn.Module:
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            for i in range(len(seq) - 1):
                if type(seq[i]) is nn.Conv2d and isinstance(seq[i + 1], nn.ReLU):
                    seq[i].__class__ = ConvReLU
                    seq[i + 1] = nn.Identity()
    return model


class BF16OneDNNLinear(nn.Linear):
    """nn.Linear whose bf16 GEMMs (forward, both backward) run through oneDNN's linear op."""

    def forward(self, x):
        if not torch.is_autocast_enabled("cpu"):
            return F.linear(x, self.weight, self.bias)
        with torch.autocast("cpu", enabled=False):
            return _OneDNNLinearFn.apply(x.to(BF16).contiguous(), self.weight.to(BF16),
                                         self.bias.to(BF16))


def onednn_dense(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if type(m) is nn.Linear:
            m.__class__ = BF16OneDNNLinear
    return model


class FP32Conv(nn.Conv2d):
    def forward(self, x):
        with torch.autocast("cpu", enabled=False):
            return super().forward(x.float())


def first_conv_fp32(model: nn.Module) -> nn.Module:
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    first.__class__ = FP32Conv
    return model


def inplace_relu(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = True
    return model


def relu_before_pool(model: nn.Module) -> nn.Module:
    """The Basic CNN's blocks in the textbook order, ReLU then max-pool (dlforge pools first
    since session 8: the same function and gradient, the ReLU on a quarter of the data)."""
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            for i in range(len(seq) - 1):
                if isinstance(seq[i], nn.MaxPool2d) and isinstance(seq[i + 1], nn.ReLU):
                    seq[i], seq[i + 1] = seq[i + 1], seq[i]
    return model


def keep_noise_16bit(x: torch.Tensor, p: float) -> torch.Tensor:
    """Session 9's `keep_noise`: 16 random bits per element, compared with the threshold."""
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    n = x.numel()
    raw = torch.from_numpy(np.random.PCG64(seed).random_raw(-(-n * 16 // 64)).view(np.int16)[:n])
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        raw = raw.as_strided(x.shape, x.stride())
    else:
        raw = raw.view(x.shape)
    return (raw < round((1 - p) * 2**16) - 2**15) * torch.tensor(1 / (1 - p), dtype=x.dtype)


# ------------------------------------------------------------------------------- the pairs


@contextlib.contextmanager
def onednn_fpmath() -> Iterator[None]:
    backends = (torch.backends.mkldnn.conv, torch.backends.mkldnn.matmul)
    saved = [b.fp32_precision for b in backends]
    for b in backends:
        b.fp32_precision = "bf16"
    try:
        yield
    finally:
        for b, s in zip(backends, saved, strict=True):
            b.fp32_precision = s


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


# name -> (B's TrainConfig changes, B's model transform, B's context)
IDEAS: dict[str, tuple[dict, Callable[[nn.Module], nn.Module], Callable]] = {
    "adam": ({}, lambda m: m, lambda: mock.patch.object(optim, "_fused_ok", lambda params: False)),
    "dense": ({}, onednn_dense, contextlib.nullcontext),
    "fpmath": ({"precision": "fp32", "dense_kernel": "aten"}, lambda m: m, onednn_fpmath),
    "convrelu": ({}, fuse_conv_relu, contextlib.nullcontext),
    "conv1fp32": ({}, first_conv_fp32, contextlib.nullcontext),
    "threads1": ({}, lambda m: m, lambda: threads(1)),
    "inplace": ({}, inplace_relu, contextlib.nullcontext),
    "kernelbias": ({"conv_bias_grad": "kernel"}, lambda m: m, contextlib.nullcontext),
    "densecopies": ({}, lambda m: m, lambda: mock.patch.object(onednn_linear, "reads_transposed",
                                                               lambda: False)),
    "pcg16": ({}, lambda m: m, lambda: mock.patch.object(pcg_dropout, "keep_noise", keep_noise_16bit)),
    "nnflatten": ({}, lambda m: swap_layers(m, nn.Flatten, Flatten, on=False),
                  contextlib.nullcontext),
    "textbook": ({}, relu_before_pool, contextlib.nullcontext),
    "dropout": ({"dropout_kernel": "pcg"}, lambda m: m, contextlib.nullcontext),
}


# A: `fit`'s defaults today, or as they were before `train.dropout_kernel` (session 5), or
# those in fp32 (the path of CPUs without bf16).
BASES = {"now": {}, "session5": {"dropout_kernel": "aten"},
         "session5-fp32": {"dropout_kernel": "aten", "precision": "fp32"},
         "now-fp32": {"precision": "fp32"}}


def runner(idea: str | None, base: dict, x, y, steps: int, fit_epochs: bool) -> Callable[[], None]:
    """A callable training `steps` batches of the default path (`idea` None) or of `idea`'s B:
    `fit` epochs of `steps` batches (`fit_epochs`), or the step `fit` runs per batch on
    the loop state `fit` builds (`_setup`), `steps` batches per call."""
    changes, transform, context = IDEAS[idea] if idea else ({}, lambda m: m, contextlib.nullcontext)
    loader = BatchLoader(x, y, batch_size=128, shuffle=True, seed=0)
    model = transform(C.build("cnn", "glorot"))
    cfg = TrainConfig(epochs=1, early_stopping=False, **base).model_copy(update=changes)
    if fit_epochs:
        def epoch() -> None:
            with context():
                fit(model, Loaders(train=loader, val=None), cfg, TASK, device="cpu", progress=False)
        return epoch
    with context():
        state = _setup(model, Loaders(train=loader, val=None), cfg, TASK, 0, torch.device("cpu"))
    state.model.train()
    batches = [(_to_device(xb, state), yb) for xb, yb in loader]
    meter = state.step.meter(state)
    position = iter(range(1 << 62))

    def run() -> None:
        with context():
            for _ in range(steps):
                xb, yb = batches[next(position) % len(batches)]
                state.step.train_batch(state, xb, yb, meter)
    return run


def pair(idea: str, base: dict, x, y, rounds: int, steps: int, fit_epochs: bool) -> float:
    """The base path (A) against `idea`'s change to it (B), paired (`_common.paired`)."""
    a = runner(None, base, x, y, steps, fit_epochs)
    b = runner(idea, base, x, y, steps, fit_epochs)
    return C.paired(a, b, rounds)


def check(idea: str, x, y) -> float:
    """Largest difference of B's logits from A's on one batch (same weights), A in bf16."""
    changes, transform, context = IDEAS[idea]
    a = C.build("cnn", "glorot").to(memory_format=torch.channels_last).eval()
    b = transform(C.build("cnn", "glorot").to(memory_format=torch.channels_last)).eval()
    xb = x[:256].contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=BF16):
        ref = a(xb).float()
    with torch.no_grad(), context(), torch.autocast(
            "cpu", dtype=BF16, enabled=changes.get("precision") != "fp32"):
        out = b(xb).float()
    return float((out - ref).abs().max() / ref.abs().max())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=3840)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--steps", type=int, default=4, help="training steps per round")
    p.add_argument("--fit-epochs", action="store_true",
                   help="rounds of whole `fit` epochs over --samples instead of --steps steps")
    p.add_argument("--only", default=",".join(IDEAS), help="comma-separated ideas")
    p.add_argument("--base", choices=tuple(BASES), default="now",
                   help="A: today's defaults (now), session 5's (torch's dropout masks), or "
                        "session 5's in fp32")
    args = p.parse_args()
    setup_process(None, "cpu")
    print(f"machine: {C.machine_line()}\n{C.cpu_line()}")
    x, y = C.fashion_images(args.samples)
    for idea in args.only.split(","):
        print(f"{idea}: logits vs A, max |diff| / max |A| = {check(idea, x, y):.2e}", flush=True)
        ratio = pair(idea, BASES[args.base], x, y, args.rounds, args.steps, args.fit_epochs)
        unit = f"fit epochs of {args.samples} samples" if args.fit_epochs else \
            f"rounds of {args.steps} steps of 128"
        print(f"{idea}: B vs A {ratio:.3f}x (median of {args.rounds} paired {unit}; load now "
              f"{C.machine_line().split('load average ')[1]})", flush=True)
    print(f"machine after: {C.machine_line()}")


if __name__ == "__main__":
    main()
