"""Paired A/B measurements of the Basic CNN's fp32 training and evaluation choices.

On a shared machine absolute rates mean little, so every figure here is a ratio of two
settings measured in the same process, alternating A and B round by round (round 0 warms
both up and is dropped); the median ratio over the rounds is reported (> 1: B is faster).

- training: `fit` (train.precision fp32) with channels_last off (A) vs on (B), one epoch each;
  `fit` of an eager (A) vs a torch.compile'd (B) model (its compile time printed apart);
- training: `fit` with `train.dense_kernel` aten (A) vs onednn (B) (`--only dense`, which also
  pairs evaluation through nn.Linear (A) vs OneDNNLinear (B));
- evaluation (batch 1024, inference_mode, channels_last, as `fit` validates): eager (A) vs
  torch.compile'd (B), and vs compiled with inductor freezing (weights as constants: oneDNN
  weight prepacking and conv+ReLU fusion); the margin tracker's old no_grad contiguous pass (A)
  vs inference_mode + channels_last (B).

- evaluation: the inference fast paths off (A) vs on (B): conv + ReLU as one oneDNN primitive,
  the 2x2 max-pool as two strided maxima, each alone and both (`--only fastpaths`).

`--isa avx2` runs it under the AVX2 emulation of trainer_overhead.py; `--only compile`,
`--only eval`, `--only dense` or `--only fastpaths` skips the other pairs.

    .venv/bin/python benchmarks/fp32_paths.py [--samples 2560] [--rounds 5] [--isa avx2]
        [--only all|compile|eval|dense|fastpaths]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from dlforge.config.schema import TrainConfig  # noqa: E402
from dlforge.data.dataset import TaskSpec  # noqa: E402
from dlforge.data.loader import BatchLoader, Loaders  # noqa: E402
from dlforge.models import conv_relu, max_pool  # noqa: E402
from dlforge.models.onednn_linear import set_dense_kernel  # noqa: E402
from dlforge.runtime import setup_process  # noqa: E402
from dlforge.train.loop import fit  # noqa: E402

TASK = TaskSpec("multiclass", tuple(str(i) for i in range(10)))


def compile_train_ab(x, y, rounds: int) -> float:
    """`fit` (fp32, channels_last) of an eager model (A) vs the same model torch.compile'd (B)."""
    loader = BatchLoader(x, y, batch_size=128, shuffle=True, seed=0)
    eager = C.build("cnn", "glorot")
    compiled = torch.compile(C.build("cnn", "glorot"))
    cfg = TrainConfig(epochs=1, early_stopping=False, precision="fp32")

    def epoch(model):
        return lambda: fit(model, Loaders(train=loader, val=None), cfg, TASK, device="cpu",
                           progress=False)
    start = time.perf_counter()
    epoch(compiled)()
    print(f"  (compiling the training step took {time.perf_counter() - start:.1f} s with its first epoch)")
    return C.paired(epoch(eager), epoch(compiled), rounds)


def train_ab(x, y, rounds: int, field: str = "channels_last", a: str = "off", b: str = "on") -> float:
    """`fit` (fp32) epochs with `train.<field>` = `a` (A) vs `b` (B), one model each."""
    loader = BatchLoader(x, y, batch_size=128, shuffle=True, seed=0)
    models = {v: C.build("cnn", "glorot") for v in (a, b)}

    def epoch(value: str):
        cfg = TrainConfig(epochs=1, early_stopping=False, precision="fp32", **{field: value})
        return lambda: fit(models[value], Loaders(train=loader, val=None), cfg, TASK, device="cpu",
                           progress=False)
    return C.paired(epoch(a), epoch(b), rounds)


def inference(model, x, off: tuple = ()):
    """A callable evaluating `model` on `x` as `fit` validates (inference_mode, channels_last,
    batch 1024), with the modules in `off` taking torch's path (their fast paths off)."""
    def run():
        with contextlib.ExitStack() as stack, torch.inference_mode():
            for module in off:
                stack.enter_context(mock.patch.object(module, "eager_inference", lambda: False))
            forward_all(model, x, channels_last=True)
    return run


def dense_eval_ab(x, rounds: int) -> float:
    """Evaluation (inference_mode, channels_last, batch 1024): nn.Linear (A) vs OneDNNLinear (B)."""
    plain = C.build("cnn", "glorot").eval().to(memory_format=torch.channels_last)
    fast = set_dense_kernel(C.build("cnn", "glorot").eval().to(memory_format=torch.channels_last),
                            onednn=True)
    return C.paired(inference(plain, x), inference(fast, x), rounds)


def fast_paths_eval_ab(x, rounds: int) -> dict[str, float]:
    """Evaluation of one model with the inference fast paths off (A) vs on (B): conv + ReLU
    fused (`models/conv_relu.py`), the 2x2 max-pool as strided maxima (`models/max_pool.py`),
    each alone and both."""
    model = C.build("cnn", "glorot").eval().to(memory_format=torch.channels_last)
    both = (conv_relu, max_pool)
    return {"both": C.paired(inference(model, x, both), inference(model, x), rounds),
            "conv+ReLU": C.paired(inference(model, x, both), inference(model, x, (max_pool,)),
                                  rounds),
            "max-pool": C.paired(inference(model, x, both), inference(model, x, (conv_relu,)),
                                 rounds)}


@torch.no_grad()
def forward_all(model, x, channels_last: bool = False) -> None:
    for i in range(0, len(x), 1024):
        xb = x[i:i + 1024]
        model(xb.contiguous(memory_format=torch.channels_last) if channels_last else xb)


def eval_ab(x, rounds: int) -> dict[str, float]:
    model = C.build("cnn", "glorot").eval()
    cl_model = C.build("cnn", "glorot").eval().to(memory_format=torch.channels_last)
    compiled = torch.compile(cl_model)
    start = time.perf_counter()
    inference(compiled, x)()  # compile before timing
    print(f"  (compiling evaluation took {time.perf_counter() - start:.1f} s)")
    torch._inductor.config.freezing = True  # weights as constants: oneDNN prepacking, conv+ReLU fused
    frozen = torch.compile(C.build("cnn", "glorot").eval().to(memory_format=torch.channels_last))
    inference(frozen, x)()
    torch._inductor.config.freezing = False
    return {"compile": C.paired(inference(cl_model, x), inference(compiled, x), rounds),
            "freezing": C.paired(inference(cl_model, x), inference(frozen, x), rounds),
            "tracker": C.paired(lambda: forward_all(model, x), inference(cl_model, x), rounds)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=2560)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--isa", choices=("native", "avx2"), default="native",
                   help="avx2: emulate a CPU without AVX-512/bf16 (see trainer_overhead.py)")
    p.add_argument("--only", choices=("all", "compile", "eval", "dense", "fastpaths"),
                   default="all",
                   help="compile: only the torch.compile pairs; eval: only evaluation's; "
                        "dense: only the dense-kernel pairs; fastpaths: only the inference "
                        "fast paths' pairs")
    args = p.parse_args()
    C.use_isa(args.isa)
    setup_process(None, "cpu")
    print(f"machine: {C.machine_line()}\n{C.cpu_line()}\n{C.isa_line()}")
    x, y = C.fashion_images(args.samples)
    if args.only == "fastpaths":
        f = fast_paths_eval_ab(x, args.rounds)
        print("eval fp32, inference fast paths on vs off: " + ", ".join(
            f"{name} {ratio:.3f}x" for name, ratio in f.items())
            + f" (median of {args.rounds} paired passes over {args.samples} samples)")
        print(f"machine after: {C.machine_line()}")
        return
    if args.only == "dense":
        print(f"train fp32, dense_kernel onednn vs aten (fit, channels_last): "
              f"{train_ab(x, y, args.rounds, 'dense_kernel', 'aten', 'onednn'):.3f}x (median of "
              f"{args.rounds} paired epochs of {args.samples} samples)")
        print(f"eval fp32, OneDNNLinear vs nn.Linear: {dense_eval_ab(x, args.rounds):.3f}x")
        print(f"machine after: {C.machine_line()}")
        return
    if args.only == "all":
        print(f"train fp32, channels_last on vs off: {train_ab(x, y, args.rounds):.3f}x "
              f"(median of {args.rounds} paired epochs of {args.samples} samples)")
    if args.only != "eval":
        print(f"train fp32, torch.compile vs eager (fit, channels_last): "
              f"{compile_train_ab(x, y, args.rounds):.3f}x")
    e = eval_ab(x, args.rounds)
    print(f"eval fp32 (inference_mode, channels_last), torch.compile vs eager: {e['compile']:.3f}x, "
          f"with inductor freezing {e['freezing']:.3f}x; "
          f"inference_mode + channels_last vs no_grad contiguous: {e['tracker']:.3f}x")
    print(f"machine after: {C.machine_line()}")


if __name__ == "__main__":
    main()
