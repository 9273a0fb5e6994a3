"""Large images: training speed and peak memory of the Basic CNN on 128x128 greyscale images,
at full resolution, average-pooled to 64x64 (`model.downscale: 2`, what `model: auto` picked
before), and pooled with a stride-2 first convolution (`model.stem_stride: 2`, what it picks
now: the convolutions after it see 32x32).

Synthetic data (a bright square whose corner is the class, on noise), an .npz read by the
`npz` source; each setting trains 2 epochs in a fresh process (peak RSS is per process), with
the default augmentation (shifts of up to 9 px) unless it says otherwise.

    .venv/bin/python benchmarks/large_images.py                    # 1,600 images, ~4 min
    .venv/bin/python benchmarks/large_images.py --n 6600 --skip-full  # the issue's set size
    .venv/bin/python benchmarks/large_images.py --n 400            # a smoke test
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SIDE = 128


def write_npz(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, (n, 1, SIDE, SIDE), dtype=np.uint8)
    y = rng.integers(0, 4, n)
    for i, cls in enumerate(y):
        r, c = divmod(int(cls), 2)
        x[i, 0, r * 64 + 16: r * 64 + 48, c * 64 + 16: c * 64 + 48] = 200
    np.savez(path, x_train=x[: n * 4 // 5], y_train=y[: n * 4 // 5],
             x_test=x[n * 4 // 5:], y_test=y[n * 4 // 5:])


# name: (model.downscale, model.stem_stride, augment.preset); `auto` augments with shifts
SETTINGS = {"full": (1, 1, "auto"), "downscale": (2, 1, "auto"), "downscale+stem": (2, 2, "auto"),
            "downscale+stem, no augmentation": (2, 2, "none")}


def worker(path: str, setting: str) -> None:
    from dlforge.candidate import TrainingPlan, train_candidate
    from dlforge.config import load_config
    from dlforge.data.prepare import prepare_data
    from dlforge.runtime import peak_rss_mb, setup_process

    downscale, stem, preset = SETTINGS[setting]
    cfg = load_config({"data": {"source": "npz", "path": path},
                       "model": {"type": "basic_cnn", "filters": [32, 64, 128], "dense": 256,
                                 "downscale": downscale, "stem_stride": stem},
                       "augment": {"preset": preset},
                       "train": {"epochs": 2, "num_threads": 1, "early_stopping": False},
                       "evaluate": {"baseline": False}})
    # train_candidate leaves threads to the process (as pipeline.run does): without this the
    # worker ran on every core, which on a loaded machine cost 4x (benchmarks/RESULTS.md)
    device = setup_process(cfg.train.num_threads, "cpu")
    cand = train_candidate(TrainingPlan(cfg, prepare_data(cfg)), device=device)
    last = cand.history[-1]
    print(json.dumps({"setting": setting, "samples_per_s": round(last["samples_per_s"], 1),
                      "val_accuracy": round(last["val_accuracy"], 3),
                      "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1600)
    parser.add_argument("--skip-full", action="store_true", help="skip full resolution (slow)")
    parser.add_argument("--worker", nargs=2)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.npz"
        write_npz(path, args.n)
        print("| images | setting | train samples/s (epoch 2) | val accuracy | peak RSS (MB) |")
        print("|---|---|---|---|---|")
        for setting in SETTINGS:
            if setting == "full" and args.skip_full:
                continue
            out = subprocess.run([sys.executable, __file__, "--worker", str(path), setting],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {args.n} x 1x{SIDE}x{SIDE} | {setting} | {r['samples_per_s']} | "
                  f"{r['val_accuracy']} | {r['peak_rss_mb']} |", flush=True)


if __name__ == "__main__":
    main()
