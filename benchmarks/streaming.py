"""Streaming from shards vs the in-memory loader: samples/s of a training epoch's batches.

Shards Fashion-MNIST's training split (or digits, `--data digits`) once, then times full
epochs of shuffled, hflip-augmented batches at batch 128: the in-memory `BatchLoader` and the
`StreamingLoader` with 0, 1 and 2 reader processes, in this process, with no model. A Basic
CNN training step on a batch of the same shape (`data_pipeline.train_step_ms`) gives the share
of step time the main process spends waiting for a batch when the loader is the only
other work (with readers, reading overlaps training, so this share is an upper bound).

    .venv/bin/python benchmarks/streaming.py [--data fashion_mnist|digits] [--epochs 2] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line  # noqa: E402
from data_pipeline import train_step_ms  # noqa: E402

from dlforge.config import load_config  # noqa: E402
from dlforge.data.prepare import load_and_split, prepare_data  # noqa: E402
from dlforge.data.shards import write_shards  # noqa: E402

DATA = {"fashion_mnist": {"source": "idx", "name": "fashion_mnist",
                          "path": "/usr/share/datasets/fashion-mnist", "val_fraction": 0.1},
        "digits": {"source": "builtin", "name": "digits"}}
BATCH = 128


def samples_per_s(loader, epochs: int) -> float:
    """Best over `epochs` full epochs (the machine is shared: the least disturbed counts)."""
    best = 0.0
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        start = time.perf_counter()
        count = sum(len(yb) for _, yb in loader)
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(DATA), default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per loader")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    raw = {"data": DATA[args.data], "augment": {"hflip": {"p": 0.5}},
           "train": {"batch_size": BATCH}, "review": {"in_run": False}}
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "shards"
        write_shards(load_and_split(load_config(raw))[1], shards, shard_size=4096)
        memory = prepare_data(load_config(raw))
        rows = [("in memory", samples_per_s(memory.loaders_for(load_config(raw)).train, args.epochs))]
        for workers in (0, 1, 2):
            cfg = load_config(raw | {"data": {"source": "shards", "path": str(shards),
                                              "streaming": True, "workers": workers}})
            rows.append((f"streaming, {workers} workers",
                         samples_per_s(prepare_data(cfg).loaders_for(cfg).train, args.epochs)))
    step_ms = train_step_ms(tuple(memory.input_shape), BATCH, steps=10)
    print(f"{machine_line()}; {args.data}, {memory.facts.train_samples} training samples, "
          f"batch {BATCH}, hflip; Basic CNN step {step_ms:.1f} ms")
    lines = [(name, f"{rate:,.0f}", f"{100 * BATCH / rate * 1000 / step_ms:.1f} %")
             for name, rate in rows]
    header = ("loader", "samples/s", "batch time / CNN step")
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for line in lines:
        print(("| " + " | ".join(line) + " |") if args.markdown else "  ".join(line))


if __name__ == "__main__":
    main()
