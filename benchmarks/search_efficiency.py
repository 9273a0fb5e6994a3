"""Search efficiency on digits: random vs grid vs TPE, each with and without pruning, on one
fixed budget; best VALIDATION accuracy and wall time of each, all in one run. Also the
orchestration overhead per trial (sampling, study and store writes: search wall time minus the
time spent inside `fit`), compared with a 5-second trial.

    .venv/bin/python benchmarks/search_efficiency.py            # 12 trials x 7 settings
    .venv/bin/python benchmarks/search_efficiency.py --quick    # 4 trials, 3 epochs

Target: with pruning, the same best accuracy (within 0.5 points) in at most half the wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import importlib  # noqa: E402

from _common import machine_line  # noqa: E402

from dlforge.config import load_config  # noqa: E402
from dlforge.data.prepare import prepare_data  # noqa: E402
from dlforge.registry import Store  # noqa: E402
from dlforge.runtime import configure_process  # noqa: E402

# the module, not the `search` function that dlforge.tune re-exports under the same name
search_module = importlib.import_module("dlforge.tune.search")

# A space every sampler can take (grid needs finite values): 5 x 4 = 20 grid points.
SPACE = {"train.lr": {"choice": [0.0003, 0.001, 0.003, 0.01, 0.03]},
         "model.hidden": {"choice": [[32], [64], [128], [256]]}}
SETTINGS = [("random", "none"), ("random", "median"), ("random", "hyperband"),
            ("grid", "none"), ("grid", "median"), ("tpe", "none"), ("tpe", "median")]


def config(sampler: str, pruner: str, n_trials: int, epochs: int):
    return load_config({
        "name": f"bench-{sampler}-{pruner}", "data": {"source": "builtin", "name": "digits"},
        "model": {"type": "mlp", "hidden": [64]}, "preprocess": {},
        "train": {"epochs": epochs, "batch_size": 64, "num_threads": 1, "early_stopping": False},
        "evaluate": {"baseline": False},
        "tune": {"n_trials": n_trials, "sampler": sampler, "pruner": pruner,
                 "metric": "val_accuracy", "space": SPACE},
    })


class FitTimer:
    """Wraps the search's `fit` to add up the time spent training (the rest is orchestration)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._fit = search_module.fit

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._fit(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def measure(sampler: str, pruner: str, n_trials: int, epochs: int, data) -> dict:
    cfg = config(sampler, pruner, n_trials, epochs)
    timer = FitTimer()
    search_module.fit = timer
    try:
        with tempfile.TemporaryDirectory() as ws, Store.open(ws) as store:
            start = time.perf_counter()
            result = search_module.search(cfg, data, store, device="cpu", progress=False)
            wall = time.perf_counter() - start
    finally:
        search_module.fit = timer._fit
    trials = len(result.trials)
    return {"sampler": sampler, "pruner": pruner, "best": result.best.value, "wall": wall,
            "counts": result.counts, "overhead_per_trial": (wall - timer.seconds) / trials,
            "trials": trials}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials of 3 epochs per setting")
    args = parser.parse_args()
    n_trials, epochs = (4, 3) if args.quick else (12, 15)
    configure_process(1)
    data = prepare_data(config("random", "none", n_trials, epochs))
    measure("random", "none", 1, 1, data)  # warm-up: first-call costs are nobody's
    print(f"machine: {machine_line()}")
    print(f"digits ({data.loaders.train.num_samples} train samples), MLP, {n_trials} trials x "
          f"{epochs} epochs, space {SPACE}")
    rows = [measure(s, p, n_trials, epochs, data) for s, p in SETTINGS]
    print("| sampler | pruner | best val accuracy | wall time (s) | complete / pruned / failed "
          "| orchestration per trial (ms) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        c = r["counts"]
        print(f"| {r['sampler']} | {r['pruner']} | {100 * r['best']:.2f} % | {r['wall']:.1f} | "
              f"{c['complete']} / {c['pruned']} / {c['failed']} | "
              f"{1000 * r['overhead_per_trial']:.1f} |")
    base = {(r["sampler"]): r for r in rows if r["pruner"] == "none"}
    for r in rows:
        if r["pruner"] == "none":
            continue
        ref = base[r["sampler"]]
        print(f"{r['sampler']} + {r['pruner']}: best {100 * (r['best'] - ref['best']):+.2f} points, "
              f"wall time x{r['wall'] / ref['wall']:.2f} of no pruning")
    worst = max(r["overhead_per_trial"] for r in rows)
    print(f"orchestration per trial: at most {1000 * worst:.1f} ms = {100 * worst / 5:.2f} % of "
          f"a 5-second trial")


if __name__ == "__main__":
    main()
