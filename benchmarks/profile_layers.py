"""Where the Basic CNN's training step spends its time, per operator and phase, as `fit` runs it.

Builds the loop state as `fit` does (`train.loop._setup`: channels_last, the fused Adam,
`train.precision` resolved: bf16 autocast on a CPU with native bf16, `train.dense_kernel`),
runs `--steps` of the supervised step (`SupervisedStep.train_batch`: forward and loss under
autocast, zero_grad, backward, the optimizer step) on one Fashion-MNIST batch of 128 after a
warm-up, under `torch.profiler`, and prints every operator's self CPU time per step by phase:
forward (with the loss), backward (under autograd's engine), optimizer (Adam's step) and
zero_grad. Convolutions are split by input shape (one row per layer).

The profiler's own cost lands on the many small operators: it prints the step's wall time
measured without it beside the profiled total. Element-wise operators read 2-3x their real
time (session 9: the first block's ReLU backward 2.53 ms profiled, 0.81 ms timed inside the
step; the max-pool backward's zero fill 2.46 ms profiled, the whole pool backward 0.80 ms);
oneDNN's own per-primitive times (`ONEDNN_VERBOSE=1`) agree with the profile.

The bound: the GEMM work (the convolutions' and dense layers' kernels, forward and backward:
`GEMM_OPS`) is what no rearrangement of the rest can remove. It is timed without the profiler
(whose own cost inflated the convolutions ~1.2x here): a `TorchDispatchMode` reads the clock
just before and after each of those operators, as the step runs them. With `--naive` the script also trains the naive eager loop
(`trainer_overhead.py`'s, in a child process) and prints the ratio today's step gives over it
and the ratio a step made of the GEMM work alone would give: the most any work on the other
operators (element-wise, pooling, dropout, loss, Adam) can reach without faster kernels.

    .venv/bin/python benchmarks/profile_layers.py [--steps 20] [--precision auto|fp32|bf16]
        [--naive]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from dlforge.config.schema import TrainConfig  # noqa: E402
from dlforge.data.dataset import TaskSpec  # noqa: E402
from dlforge.data.loader import BatchLoader, Loaders  # noqa: E402
from dlforge.runtime import setup_process  # noqa: E402
from dlforge.train.loop import _setup, _to_device  # noqa: E402

TASK = TaskSpec("multiclass", tuple(str(i) for i in range(10)))
SPLIT_BY_SHAPE = ("convolution", "max_pool", "threshold_backward", "clamp_min", "relu")
# The operators that run the convolutions' and dense layers' GEMM-like kernels (oneDNN's
# convolution primitives and its or ATen's matrix products), forward and backward.
# A dispatch mode sees a convolution's forward as `aten::convolution` (the profiler as
# `aten::mkldnn_convolution` under it, whose self time is the kernel's).
GEMM_OPS = ("aten::convolution", "aten::mkldnn_convolution", "aten::convolution_backward",
            "mkldnn::_linear_pointwise", "mkldnn::_convolution_pointwise", "aten::addmm",
            "aten::mm", "aten::bmm", "aten::_convolution_pointwise")


def phase(event) -> str:
    """The phase an operator ran in, from its enclosing profiler ranges."""
    while event is not None:
        name = event.name
        if name.startswith("autograd::engine::evaluate_function"):
            return "backward"
        if name.startswith("Optimizer.step"):
            return "optimizer"
        if name.startswith("Optimizer.zero_grad"):
            return "zero_grad"
        event = event.cpu_parent
    return "forward"


def label(event) -> str:
    """The operator's name; with its first input's shape for convolutions, pools and ReLUs."""
    if any(s in event.name for s in SPLIT_BY_SHAPE) and event.input_shapes:
        return f"{event.name} {list(event.input_shapes[0])}"
    return event.name


class GemmClock(TorchDispatchMode):
    """Sums the wall seconds of the `GEMM_OPS` operators run under it (CPU operators are
    synchronous: the clock brackets the kernel alone; the mode's own cost falls outside)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name not in GEMM_OPS:
            return func(*args, **(kwargs or {}))
        start = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        self.seconds += time.perf_counter() - start
        return out


def profile_rows(steps: int, precision: str) -> tuple[list, float, str, float, float]:
    """((phase, operator, self ms per step), ...) largest first, the step total, the resolved
    precision, the step's wall ms without the profiler and its GEMM work's ms (`GemmClock`)."""
    x, y = C.fashion_images(128)
    loader = BatchLoader(x, y, batch_size=128)
    cfg = TrainConfig(epochs=1, early_stopping=False, precision=precision)
    state = _setup(C.build("cnn", "glorot"), Loaders(train=loader, val=None), cfg, TASK, 0,
                   torch.device("cpu"))
    state.model.train()
    xb, yb = _to_device(x, state), y

    def run(n: int) -> None:
        for _ in range(n):
            state.step.train_batch(state, xb, yb, state.step.meter(state))

    run(5)  # warm-up: oneDNN picks its primitives, the optimizer creates its state
    start = time.perf_counter()
    run(steps)
    wall = (time.perf_counter() - start) / steps * 1e3
    with GemmClock() as clock:
        run(steps)
    gemm = clock.seconds / steps * 1e3
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run(steps)
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for event in prof.events():
        totals[(phase(event), label(event))] += event.self_cpu_time_total / 1e3 / steps
    rows = sorted(((p, n, ms) for (p, n), ms in totals.items()), key=lambda r: -r[2])
    return rows, sum(r[2] for r in rows), state.precision.name, wall, gemm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--naive", action="store_true",
                   help="also train the naive loop in a child process and print the ratios")
    args = p.parse_args()
    setup_process(None, "cpu")
    print(f"machine: {C.machine_line()}\n{C.cpu_line()}")
    rows, total, name, wall, gemm = profile_rows(args.steps, args.precision)
    print(f"{name} training step as fit runs it, batch 128, {args.steps} steps: "
          f"{total:.1f} ms self CPU per step profiled, {wall:.1f} ms wall without the profiler")
    by_phase: dict[str, float] = defaultdict(float)
    for ph, _, ms in rows:
        by_phase[ph] += ms
    print("phases: " + ", ".join(f"{k} {v:.2f} ms ({v / total:.0%})" for k, v in by_phase.items()))
    print("| phase | operator | ms per step | share |\n|---|---|---|---|")
    for ph, op, ms in rows[:args.top]:
        print(f"| {ph} | {op} | {ms:.2f} | {ms / total:.1%} |")
    profiled = sum(ms for _, op, ms in rows if op.split(" [")[0] in GEMM_OPS)
    print(f"GEMM work (convolutions and dense layers: {', '.join(sorted(GEMM_OPS))} where "
          f"present), timed without the profiler: {gemm:.1f} ms per step, {gemm / wall:.0%} of "
          f"the wall step ({profiled:.1f} ms profiled)")
    if args.naive:
        print_bound(wall, gemm)
    print(f"machine after: {C.machine_line()}")


def print_bound(wall: float, gemm: float) -> None:
    """The naive loop's speed (trainer_overhead.py's worker, a child process, fp32, best of 3
    epochs of 6,400 samples) against today's step and a step of the GEMM work alone."""
    script = Path(__file__).resolve().parent / "trainer_overhead.py"
    naive = C.in_child(script, {"kind": "train", "model": "cnn", "settings": {}, "n": 6400,
                                "epochs": 3})["train"]
    ours, bound = 128e3 / wall, 128e3 / gemm
    print(f"naive eager loop: {naive:.0f} samples/s; this step {ours:.0f} samples/s = "
          f"{ours / naive:.2f}x; the GEMM work alone {bound:.0f} samples/s = {bound / naive:.2f}x "
          f"(the bound without faster GEMM kernels)")


if __name__ == "__main__":
    main()
