"""How fast does dlforge train the Basic CNN on CPU, and what does its loop cost?

Three figures from one run (Fashion-MNIST, 28x28x1, batch 128, Adam 1e-3):

1. overhead: `fit` against a minimal hand-written loop with the same model, data
   (`BatchLoader`), optimizer and process settings, in this process, alternating epoch by
   epoch; ratio = fit samples/s / hand-loop samples/s (target >= 0.97).
2. speed-up: dlforge's default training path (`fit`, defaults: on a non-Intel CPU in fp32 its
   dense layers go through oneDNN, `train.dense_kernel: auto`, and its dropout masks come
   from PCG64, `train.dropout_kernel: auto`; in fp32 torch sums its convolutions' bias
   gradients, `train.conv_bias_grad: auto`) against the naive eager loop (tutorial
   `DataLoader`, PyTorch's default init and process settings, plain ``F.linear`` and dropout)
   run in a child process; target >= 2.0x without bf16, 2.7x with. Evaluation throughput (batch 1024) is reported beside it.
3. time to accuracy: wall time until the default Basic-CNN recipe first reaches a validation
   accuracy target, beside the naive loop (PyTorch's default initialisation, Adam 1e-3)
   on the same split.

Figure 3 runs with `--tta` (about 15 minutes more). `--variants` also measures, each in a
fresh process, the hand loop under single settings (malloc thresholds, channels_last, flushed
denormals, 1 thread, torch.compile, bfloat16 autocast) for the CNN and the
1024-512-256-128-64 MLP.

It prints the CPU model and features (bf16, AMX, AVX-512, VNNI), the ISA the kernels really
use (ATen's capability, oneDNN's ISA and convolution kernel, MKL's limit), whether dlforge
sees native bf16, the fp32 ceiling (the best GFLOP/s of several GEMM shapes, batched GEMMs
and oneDNN 1x1 convolutions on the same threads, `_common.fp32_ceiling`) and the share of it
each loop's training reaches. `--precision fp32` forces dlforge's path to fp32; `--isa avx2`
re-executes the script with oneDNN, ATen and MKL limited to AVX2, an EMULATION of a CPU
without AVX-512 and bf16 on this one (same cores, clock and caches; `auto` then picks fp32).

    .venv/bin/python benchmarks/trainer_overhead.py [--quick] [--isa native|avx2]
        [--precision auto|fp32] [--tta] [--variants]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from dlforge.config.schema import TrainConfig  # noqa: E402
from dlforge.data.dataset import TaskSpec  # noqa: E402
from dlforge.data.loader import BatchLoader, Loaders  # noqa: E402
from dlforge.runtime import configure_process, cpu_has_native_bf16, setup_process  # noqa: E402
from dlforge.train.callbacks import Callback  # noqa: E402
from dlforge.train.conv_bias_grad import apply_conv_bias_grad  # noqa: E402
from dlforge.train.dense_kernel import apply_dense_kernel  # noqa: E402
from dlforge.train.dropout_kernel import apply_dropout_kernel  # noqa: E402
from dlforge.train.loop import _setup, fit, validate_epoch  # noqa: E402
from dlforge.train.precision import Precision, resolve_precision, sample_shape  # noqa: E402

SCRIPT = Path(__file__).resolve()
TASK = TaskSpec("multiclass", tuple(str(i) for i in range(10)))
VARIANTS = [
    ("cnn", {}), ("cnn", {"malloc": True}), ("cnn", {"channels_last": True}),
    ("cnn", {"malloc": True, "channels_last": True}),
    ("cnn", {"malloc": True, "channels_last": True, "denormal": True}),
    ("cnn", {"malloc": True, "channels_last": True, "threads": 1}),
    ("cnn", {"malloc": True, "channels_last": True, "omp_passive": True}),
    ("cnn", {"malloc": True, "channels_last": True, "compile": True}),
    ("cnn", {"bf16": True}), ("cnn", {"malloc": True, "channels_last": True, "bf16": True}),
    ("mlp", {}), ("mlp", {"malloc": True}), ("mlp", {"denormal": True}),
    ("mlp", {"malloc": True, "denormal": True}),
    ("mlp", {"malloc": True, "denormal": True, "omp_passive": True}),
    ("mlp", {"bf16": True}), ("mlp", {"malloc": True, "bf16": True}),
]


# ----------------------------------------------------------------------- child-process jobs


def job_train(job: dict) -> dict:
    """Hand/naive loop under `job["settings"]`: best epoch samples/s and eval samples/s."""
    s = job["settings"]
    C.apply_settings(s)
    x, y = C.fashion_images(job["n"])
    model = C.build(job["model"], job.get("init", "torch"), textbook=True)
    if s.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step_model = torch.compile(model) if s.get("compile") else model
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=128,
                                         shuffle=True)
    cl, bf16 = bool(s.get("channels_last")), bool(s.get("bf16"))
    train = C.best_rate(lambda: C.naive_epoch(step_model, opt, loader, cl, bf16), job["epochs"])
    evaluate = C.best_rate(lambda: (C.naive_eval(step_model, x, y, 1024, cl, bf16), len(x))[1], 3)
    return {"train": train, "eval": evaluate}


def job_tta(job: dict) -> dict:
    """The naive loop's time to `job["target"]` validation accuracy on the recipe's split."""
    prepared = C.prepared_recipe(job["limit"])
    (x, y), (xv, yv) = prepared.tensors["train"], prepared.tensors["val"]
    model = C.build("cnn", "torch", seed=0, textbook=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=128,
                                         shuffle=True)
    start, curve = time.perf_counter(), []
    for _ in range(job["max_epochs"]):
        C.naive_epoch(model, opt, loader)
        curve.append((time.perf_counter() - start, C.naive_eval(model, xv, yv)))
        if curve[-1][1] >= job["target"]:
            break
    return {"curve": curve}


# ---------------------------------------------------------------------------- figure 1 and 2


def hand_epoch(model, opt, loader: BatchLoader, epoch: int, precision: Precision) -> int:
    """The minimal loop with dlforge's process settings: channels_last, BatchLoader, and the
    precision, dense, dropout and conv-bias kernels `fit` chooses (bfloat16 autocast on CPUs
    with native bf16; oneDNN dense layers on non-Intel CPUs in fp32; PCG dropout masks on
    non-Intel CPUs; conv bias gradients summed by torch in fp32)."""
    model.train()
    loss_fn = torch.nn.CrossEntropyLoss()
    loader.set_epoch(epoch)
    seen = 0
    for xb, yb in loader:
        xb = xb.contiguous(memory_format=torch.channels_last)
        with precision.autocast(xb.device):
            loss = loss_fn(model(xb).float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(yb)
    return seen


def overhead(x, y, rounds: int, precision_setting: str = "auto") -> dict:
    """Figure 1: alternate one hand-loop epoch and one `fit` epoch, `rounds` times."""
    configure_process()
    loader = BatchLoader(x, y, batch_size=128, shuffle=True, seed=0)
    hand_model = C.build("cnn", "glorot").to(memory_format=torch.channels_last)
    hand_opt = torch.optim.Adam(hand_model.parameters(), lr=1e-3)
    fit_model = C.build("cnn", "glorot")
    cfg = TrainConfig(epochs=1, early_stopping=False, precision=precision_setting)
    precision = resolve_precision(cfg.precision, hand_model, torch.device("cpu"), sample_shape(loader))
    dense = apply_dense_kernel(hand_model, cfg.dense_kernel, torch.device("cpu"), precision)
    pcg = apply_dropout_kernel(hand_model, cfg.dropout_kernel, torch.device("cpu"))
    summed = apply_conv_bias_grad(hand_model, cfg.conv_bias_grad, torch.device("cpu"), precision)
    ratios, hand_rates, fit_rates = [], [], []
    for r in range(rounds + 1):  # round 0 warms both up and is dropped
        start = time.perf_counter()
        hand_epoch(hand_model, hand_opt, loader, r, precision)
        hand = len(x) / (time.perf_counter() - start)
        start = time.perf_counter()
        fit(fit_model, Loaders(train=loader, val=None), cfg, TASK, seed=r, device="cpu",
            progress=False)
        fitted = len(x) / (time.perf_counter() - start)
        if r:
            ratios.append(fitted / hand)
            hand_rates.append(hand)
            fit_rates.append(fitted)
    return {"median_ratio": statistics.median(ratios), "best_ratio": max(fit_rates) / max(hand_rates),
            "hand": max(hand_rates), "fit": max(fit_rates),
            "precision": precision.name + (", dense layers oneDNN" if dense else "")
            + (", PCG dropout masks" if pcg else "") + (", conv bias grads summed" if summed else "")}


def dlforge_speed(x, y, epochs: int, precision: str = "auto") -> dict:
    """dlforge's default path: the process set up as `dlforge.run` does, then `fit` with default
    settings; best epoch, then validation."""
    loader = BatchLoader(x, y, batch_size=128, shuffle=True, seed=0)
    model = C.build("cnn", "glorot")
    cfg = TrainConfig(epochs=epochs, early_stopping=False, precision=precision)
    setup_process(cfg.num_threads, "cpu")
    result = fit(model, Loaders(train=loader, val=None), cfg, TASK, device="cpu", progress=False)
    state = _setup(result.model, Loaders(train=loader, val=None), cfg, TASK, 0, torch.device("cpu"))
    val = BatchLoader(x, y, batch_size=cfg.eval_batch_size)
    evaluate = C.best_rate(lambda: (validate_epoch(state, val), len(x))[1], 3)
    return {"train": max(row["samples_per_s"] for row in result.history), "eval": evaluate}


def speedup(x, y, epochs: int, rounds: int, precision: str = "auto") -> dict:
    """Figure 2: naive loop in a child process vs dlforge here, alternating; best of each."""
    naive, ours = [], []
    for _ in range(rounds):
        naive.append(C.in_child(SCRIPT, {"kind": "train", "model": "cnn", "settings": {},
                                         "n": len(x), "epochs": epochs}))
        ours.append(dlforge_speed(x, y, epochs, precision))
    best = {k: (max(r[k] for r in naive), max(r[k] for r in ours)) for k in ("train", "eval")}
    return {k: {"naive": a, "dlforge": b, "ratio": b / a,
                "paired": statistics.median(o[k] / n[k] for n, o in zip(naive, ours, strict=True))}
            for k, (a, b) in best.items()}


def ceiling_share(train: dict, ceiling: float) -> str:
    """The share of the fp32 ceiling each loop's training rate reaches (training FLOPs per
    sample x samples/s / ceiling), and a note when a share passes 100 %."""
    gflops = C.train_gflops_per_sample(C.build("cnn", "glorot"), (1, 28, 28))
    shares = {k: gflops * train[k] / ceiling for k in ("dlforge", "naive")}
    line = (f"   ceiling share ({gflops * 1e3:.1f} MFLOP per training sample): dlforge "
            f"{shares['dlforge']:.0%}, naive {shares['naive']:.0%} (target >= 65 %)")
    if max(shares.values()) > 1:
        line += ("\n   note: above 100 %: the FLOPs counted are direct convolution's; oneDNN may "
                 "compute fewer (Winograd) or its convolution kernels beat every GEMM measured")
    return line


def print_ceiling() -> float:
    """Measure and print the fp32 ceiling (`_common.fp32_ceiling`); returns its GFLOP/s."""
    best, label, rates = C.fp32_ceiling()
    print(f"fp32 ceiling ({torch.get_num_threads()} threads): {best:.1f} GFLOP/s, best of "
          f"{len(rates)} GEMMs ({label}); " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()))
    return best


# ---------------------------------------------------------------------------------- figure 3


class ReachTarget(Callback):
    """Record the wall time of every epoch end; stop once `val_accuracy` reaches `target`."""

    def __init__(self, target: float, start: float) -> None:
        self.target, self.start, self.curve = target, start, []

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state) -> None:
        self.curve.append((time.perf_counter() - self.start, logs["val_accuracy"]))
        if logs["val_accuracy"] >= self.target:
            state.stop_reason = f"val_accuracy reached {self.target}"


def time_to_accuracy(limit: int | None, target: float, max_epochs: int) -> dict:
    """Figure 3: the default recipe here, the naive loop in a child process."""
    naive = C.in_child(SCRIPT, {"kind": "tta", "limit": limit, "target": target,
                                "max_epochs": max_epochs})["curve"]
    prepared = C.prepared_recipe(limit)
    cfg = C.recipe_config(limit)
    from dlforge.models import build_model

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, input_shape=(1, 28, 28), num_outputs=10)
    train_cfg = cfg.train.model_copy(update={"epochs": max_epochs, "early_stopping": None})
    setup_process(train_cfg.num_threads, "cpu")
    start = time.perf_counter()
    reach = ReachTarget(target, start)
    fit(model, prepared.loaders_for(cfg), train_cfg, prepared.task, callbacks=[reach], seed=cfg.seed,
        device="cpu", progress=False)
    return {"naive": naive, "dlforge": reach.curve, "train_samples": len(prepared.tensors["train"][0])}


def first_reach(curve: list, target: float) -> str:
    for epoch, (seconds, acc) in enumerate(curve, 1):
        if acc >= target:
            return f"{seconds:.1f} s (epoch {epoch})"
    return f"not reached in {len(curve)} epochs (best {max(a for _, a in curve):.4f})"


# ------------------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small budgets (< 1 minute), a smoke test")
    p.add_argument("--variants", action="store_true", help="also measure single settings")
    p.add_argument("--tta", action="store_true", help="also figure 3, time to accuracy (~15 min)")
    p.add_argument("--skip-tta", action="store_true", help=argparse.SUPPRESS)  # now the default
    p.add_argument("--isa", choices=("native", "avx2"), default="native",
                   help="avx2: emulate a CPU without AVX-512/bf16 (oneDNN, ATen, MKL limited)")
    p.add_argument("--target", type=float, default=None, help="validation accuracy target")
    p.add_argument("--samples", type=int, default=None, help="samples per timed epoch (figures 1, 2)")
    p.add_argument("--limit", type=int, default=None, help="figure 3: use this many Fashion-MNIST images")
    p.add_argument("--precision", choices=("auto", "fp32"), default="auto",
                   help="train.precision of dlforge's path (fp32: the path of CPUs without bf16)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps((job_train if job["kind"] == "train" else job_tta)(job)))
        return
    C.use_isa(args.isa)  # re-executes with the ISA limits set (before torch loads)
    n, epochs, rounds = (640, 2, 1) if args.quick else (6400, 3, 2)
    n = args.samples or n
    configure_process()
    print(f"machine: {C.machine_line()}")
    print(C.cpu_line())
    print(f"{C.isa_line()}; dlforge sees native bf16: {'yes' if cpu_has_native_bf16() else 'no'}")
    ceiling = print_ceiling()
    x, y = C.fashion_images(n)
    o = overhead(x, y, rounds=1 if args.quick else 5, precision_setting=args.precision)
    print(f"1. overhead ({o['precision']}): fit {o['fit']:.0f} samples/s, hand loop {o['hand']:.0f} samples/s; "
          f"ratio median {o['median_ratio']:.3f}, of bests {o['best_ratio']:.3f} (target >= 0.97)")
    s = speedup(x, y, epochs, rounds, args.precision)
    print(f"2. speed-up: train dlforge {s['train']['dlforge']:.0f} vs naive "
          f"{s['train']['naive']:.0f} samples/s = {s['train']['ratio']:.2f}x (median of {rounds} "
          f"paired rounds {s['train']['paired']:.2f}x; target >= 2.0x without bf16, 2.7x with); "
          f"eval (batch 1024) {s['eval']['dlforge']:.0f} vs {s['eval']['naive']:.0f} samples/s "
          f"= {s['eval']['ratio']:.2f}x (paired {s['eval']['paired']:.2f}x; target >= 4x)")
    print(ceiling_share(s["train"], ceiling))
    if args.tta:
        target = args.target or (0.60 if args.quick else 0.90)
        limit, max_epochs = (1500, 2) if args.quick else (args.limit, 8)
        t = time_to_accuracy(limit, target, max_epochs)
        print(f"3. time to val_accuracy {target} ({t['train_samples']} training samples): "
              f"dlforge default recipe {first_reach(t['dlforge'], target)}; naive loop "
              f"{first_reach(t['naive'], target)}")
        print("   curves (s, val_accuracy): dlforge "
              f"{[(round(a), round(b, 4)) for a, b in t['dlforge']]}; naive "
              f"{[(round(a), round(b, 4)) for a, b in t['naive']]}")
    if args.variants:
        print("| model | settings | train samples/s | eval samples/s (batch 1024) |\n|---|---|---|---|")
        for model, settings in VARIANTS:
            r = C.in_child(SCRIPT, {"kind": "train", "model": model, "settings": settings,
                                    "n": n, "epochs": epochs + 1})
            name = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults (naive)"
            print(f"| {model} | {name} | {r['train']:.0f} | {r['eval']:.0f} |", flush=True)
    print(f"machine after: {C.machine_line()}")


if __name__ == "__main__":
    main()
