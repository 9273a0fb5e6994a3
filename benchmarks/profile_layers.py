"""Where the Basic CNN's fp32 training step spends its time, per operator, forward and backward.

Runs `--steps` training steps of the Basic CNN (Fashion-MNIST shape 1x28x28, batch 128, Adam,
fp32, channels_last as `fit` uses it) under `torch.profiler` after a warm-up, and prints the
operators with the most self CPU time: forward ops (aten::...) and their backward nodes
(...Backward0) separately, with their share of the step.

    .venv/bin/python benchmarks/profile_layers.py [--steps 20] [--no-channels-last]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def train_steps(model, opt, x, y, steps: int, channels_last: bool) -> None:
    """`steps` plain fp32 training steps on the batch `(x, y)`."""
    loss_fn = torch.nn.CrossEntropyLoss()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def profile_rows(steps: int, channels_last: bool) -> tuple[list, float]:
    """(name, self CPU ms per step) of every operator, largest first, and the step total."""
    x, y = C.fashion_images(128)
    model = C.build("cnn", "glorot")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_steps(model, opt, x, y, 5, channels_last)  # warm-up: oneDNN picks its primitives
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_steps(model, opt, x, y, steps, channels_last)
    rows = [(e.key, e.self_cpu_time_total / 1e3 / steps) for e in prof.key_averages()]
    rows.sort(key=lambda r: -r[1])
    return rows, sum(ms for _, ms in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--top", type=int, default=14)
    p.add_argument("--no-channels-last", action="store_true")
    args = p.parse_args()
    print(f"machine: {C.machine_line()}\n{C.cpu_line()}")
    rows, total = profile_rows(args.steps, not args.no_channels_last)
    print(f"fp32 training step, batch 128, {args.steps} steps: {total:.1f} ms self CPU per step")
    print("| operator | ms per step | share |\n|---|---|---|")
    for name, ms in rows[:args.top]:
        print(f"| {name} | {ms:.2f} | {ms / total:.0%} |")
    print(f"machine after: {C.machine_line()}")


if __name__ == "__main__":
    main()
