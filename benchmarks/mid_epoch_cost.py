"""What mid-epoch resume costs: the loaders' position tracking (always on) and one
`train.checkpoint.every_steps` checkpoint of a Basic CNN (only when the option is set).

1. Per batch: iterating a `BatchLoader` (which records its position for `state_dict`) vs its
   untracked `batches()` on the same order, small batches so the overhead shows.
2. Per checkpoint: serializing the Basic CNN's weights and Adam state (what dominates a
   checkpoint) and writing them atomically, vs one Basic CNN training step at batch 128.

    .venv/bin/python benchmarks/mid_epoch_cost.py
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_line  # noqa: E402
from data_pipeline import train_step_ms  # noqa: E402

from dlforge.config.schema import BasicCNNConfig  # noqa: E402
from dlforge.data.loader import BatchLoader, epoch_generator  # noqa: E402
from dlforge.models import build_model  # noqa: E402
from dlforge.train.checkpoint_io import write_bytes  # noqa: E402

SHAPE, SAMPLES, BATCH, REPEATS = (1, 28, 28), 16_384, 8, 5


def tracking_us() -> tuple[float, float]:
    """Best µs per batch over `REPEATS` epochs: tracked iteration, then untracked batches()."""
    loader = BatchLoader(torch.rand(SAMPLES, *SHAPE), torch.zeros(SAMPLES), batch_size=BATCH,
                         shuffle=True)
    batches = len(loader)
    tracked, plain = [], []
    for epoch in range(REPEATS):
        loader.set_epoch(epoch)
        start = time.perf_counter()
        for _ in loader:
            pass
        tracked.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in loader.batches(loader.order(epoch), epoch_generator(0, epoch, stream=1)):
            pass
        plain.append(time.perf_counter() - start)
    return min(tracked) / batches * 1e6, min(plain) / batches * 1e6


def checkpoint_ms() -> tuple[float, int]:
    """Best ms to serialize and atomically write a Basic CNN's weights and Adam state."""
    model = build_model(BasicCNNConfig(), input_shape=SHAPE, num_outputs=10)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(2, *SHAPE)).sum().backward()
    optimizer.step()
    times, size = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(REPEATS):
            start = time.perf_counter()
            buffer = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
            size = len(buffer.getvalue())
            write_bytes(Path(tmp) / "last.pt", buffer.getvalue())
            times.append(time.perf_counter() - start)
    return min(times) * 1000, size


def main() -> None:
    tracked, plain = tracking_us()
    ckpt, size = checkpoint_ms()
    step = train_step_ms(SHAPE, 128, steps=5)
    print(machine_line())
    print(f"batch of {BATCH}: {tracked:.1f} µs tracked vs {plain:.1f} µs untracked "
          f"({tracked - plain:+.1f} µs per batch)")
    print(f"checkpoint of the Basic CNN ({size / 2**20:.1f} MiB): {ckpt:.1f} ms; one training "
          f"step at batch 128: {step:.1f} ms; every_steps=100 costs {ckpt / (100 * step):.2%}")


if __name__ == "__main__":
    main()
