"""How fast is the in-memory data pipeline next to the training step it feeds?

Measures batches/s of `BatchLoader` (shuffled, with a typical augmentation: hflip + crop +
brightness) for 28x28x1 and 32x32x3 images at batch 128, and one Basic-CNN training step
(forward + backward + Adam step) on a batch of the same shape, in the same process. The loader
should cost well under 5 % of a step.

    .venv/bin/python benchmarks/data_pipeline.py [--batches 20] [--repeats 30] [--steps 10] [--markdown]
    .venv/bin/python benchmarks/data_pipeline.py --alternate   # hflip: {p: 0.5, alternate: true}
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from dlforge.config.data_schema import HFlipAug
from dlforge.config.schema import AugmentConfig, BasicCNNConfig
from dlforge.data.augment import build_augmenter
from dlforge.data.loader import BatchLoader
from dlforge.models import build_model

SHAPES = ((1, 28, 28), (3, 32, 32))
AUGMENT = AugmentConfig(hflip={"p": 0.5}, crop={"padding": 2, "p": 1.0},
                        brightness={"amount": 0.1, "p": 0.5})


def loader_ms_per_batch(loader: BatchLoader, batches: int, repeats: int) -> float:
    """Best over `repeats` of the mean time to draw one batch, over `batches` batches.

    The best (not the median) because the machine is shared: the minimum is the least
    disturbed by other processes, as `timeit` advises; the step time is taken the same way.
    """
    times = []
    for r in range(repeats):
        loader.set_epoch(r)
        start, drawn = time.perf_counter(), 0
        while drawn < batches:
            for _ in loader:
                drawn += 1
                if drawn == batches:
                    break
        times.append((time.perf_counter() - start) / batches)
    return min(times) * 1000


def train_step_ms(shape: tuple[int, ...], batch_size: int, steps: int) -> float:
    """Best time of one forward + backward + Adam step of the Basic CNN, in ms."""
    torch.manual_seed(0)
    model = build_model(BasicCNNConfig(), input_shape=shape, num_outputs=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xb = torch.randn(batch_size, *shape)
    yb = torch.randint(0, 10, (batch_size,))
    model.train()
    times = []
    for i in range(steps + 3):  # 3 warm-up steps
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        optimizer.step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return min(times) * 1000


def measure(shape: tuple[int, ...], args: argparse.Namespace) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.samples, *shape, generator=g)
    y = torch.randint(0, 10, (args.samples,), generator=g)
    plain = BatchLoader(x, y, batch_size=args.batch_size, shuffle=True, seed=0)
    cfg = AUGMENT.model_copy(update={"hflip": HFlipAug(alternate=True)}) if args.alternate else AUGMENT
    augmented = BatchLoader(x, y, batch_size=args.batch_size, shuffle=True, seed=0,
                            augment=build_augmenter(cfg))
    plain_ms = loader_ms_per_batch(plain, args.batches, args.repeats)
    aug_ms = loader_ms_per_batch(augmented, args.batches, args.repeats)
    step_ms = train_step_ms(shape, args.batch_size, args.steps)
    return {"plain_ms": plain_ms, "aug_ms": aug_ms, "batches_per_s": 1000 / aug_ms,
            "step_ms": step_ms, "fraction": aug_ms / step_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=4096, help="in-memory samples per shape")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per repeat")
    parser.add_argument("--repeats", type=int, default=30, help="short timing windows; the best counts")
    parser.add_argument("--steps", type=int, default=10, help="training steps timed")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--alternate", action="store_true", help="alternating flip (augment.hflip.alternate)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [(shape, measure(shape, args)) for shape in SHAPES]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores "
          f"{platform.machine()}, load average {os.getloadavg()[0]:.1f}, batch {args.batch_size}, "
          f"augmentation {'alternating ' if args.alternate else ''}hflip+crop(2)+brightness")
    header = ("input (C,H,W)", "loader ms/batch (no aug)", "loader ms/batch (aug)",
              "loader batches/s (aug)", "CNN train step ms", "loader / step")
    lines = [[str(shape), f"{m['plain_ms']:.2f}", f"{m['aug_ms']:.2f}", f"{m['batches_per_s']:.0f}",
              f"{m['step_ms']:.1f}", f"{100 * m['fraction']:.1f} %"] for shape, m in rows]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for line in lines:
            print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main()
