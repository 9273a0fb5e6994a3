"""The GAN task's Frechet distance per epoch and wall time, beside its floor and ceiling.

Runs `dlforge.run` on a GAN example config (in a scratch workspace) and prints a markdown
table: per epoch the losses, `val_frechet` (validation split against as many generated
images) and the epoch's wall time; then the test split's Frechet distance of the trained
generator, the floor (two halves of the real test split) and the ceiling (the untrained
generator), all on half the test split, and the stage timings.

    .venv/bin/python benchmarks/gan_quality.py examples/gan_digits.yaml [--set train.epochs=10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import yaml

from dlforge.config import load_config
from dlforge.pipeline import run


def _override(raw: dict, assignment: str) -> None:
    key, value = assignment.split("=", 1)
    *path, last = key.split(".")
    for part in path:
        raw = raw.setdefault(part, {})
    raw[last] = yaml.safe_load(value)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--set", action="append", default=[], dest="sets")
    args = parser.parse_args(argv)
    with open(args.config) as fh:
        raw = yaml.safe_load(fh)
    for assignment in args.sets:
        _override(raw, assignment)
    cfg = load_config(raw)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as ws:
        result = run(cfg, workspace=ws, progress=False)
    wall = time.perf_counter() - start
    print("| epoch | d_loss | g_loss | val_d_loss | val_g_loss | val_frechet | epoch s |")
    print("|---|---|---|---|---|---|---|")
    for row in result.history:
        print(f"| {row['epoch'] + 1} | {row['d_loss']:.3f} | {row['g_loss']:.3f} | "
              f"{row['val_d_loss']:.3f} | {row['val_g_loss']:.3f} | {row['val_frechet']:.2f} | "
              f"{row['epoch_time_s']:.1f} |")
    m = result.test_metrics
    print(f"\ntest ({m['n_samples']} images each): frechet {m['frechet']:.2f}, floor "
          f"{m['frechet_floor']:.2f}, ceiling {m['frechet_ceiling']:.2f}, confidence "
          f"{m['confidence']:.3f}, class coverage {m['class_coverage']:.2f}, class counts "
          f"{m['class_counts']}")
    print(f"wall time {wall:.1f} s in total")


if __name__ == "__main__":
    main(sys.argv[1:])
