"""Search efficiency on digits: random vs grid vs TPE, each with and without pruning, on one
fixed budget of trials that take seconds each (a small CNN), all in one run: best VALIDATION
accuracy and wall time of each, the per-epoch cost of pruning (reporting the metric to the
study and the pruner's check), and the orchestration per trial (sampling, study and store
writes: search wall time minus the time spent inside `fit`) compared with a 5-second trial.

    .venv/bin/python benchmarks/search_efficiency.py            # 10 trials x 20 epochs x 7 settings, ~4 min
    .venv/bin/python benchmarks/search_efficiency.py --quick    # 4 trials x 3 epochs, a smoke test

Target: with pruning, the same best accuracy (within 0.5 points) in at most half the wall time.
"""

from __future__ import annotations

import argparse
import statistics
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
         "model.dense": {"choice": [32, 64, 128, 256]}}
SETTINGS = [("random", "none"), ("random", "median"), ("random", "hyperband"),
            ("grid", "none"), ("grid", "median"), ("tpe", "none"), ("tpe", "median")]
TARGET_POINTS, TARGET_RATIO = 0.5, 0.5


def config(sampler: str, pruner: str, n_trials: int, epochs: int):
    return load_config({
        "name": f"bench-{sampler}-{pruner}", "data": {"source": "builtin", "name": "digits"},
        "model": {"type": "basic_cnn", "filters": [16, 32], "dense": 64}, "preprocess": {},
        "train": {"epochs": epochs, "batch_size": 64, "num_threads": 1, "early_stopping": False},
        "evaluate": {"baseline": False},
        "tune": {"n_trials": n_trials, "sampler": sampler, "pruner": pruner,
                 "metric": "val_accuracy", "space": SPACE},
    })


class Timer:
    """Wraps a function to add up the wall and CPU time spent inside it and count the calls."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds, self.cpu_seconds, self.calls = fn, 0.0, 0.0, 0

    def __call__(self, *args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu
            self.calls += 1


def measure(sampler: str, pruner: str, n_trials: int, epochs: int, data) -> dict:
    cfg = config(sampler, pruner, n_trials, epochs)
    fit_timer = Timer(search_module.fit)
    pruning_cls = search_module.PruningCallback
    epoch_timer = Timer(pruning_cls.on_epoch_end)
    open_timer = Timer(search_module.open_study)
    search_module.fit, search_module.open_study = fit_timer, open_timer
    pruning_cls.on_epoch_end = lambda *a, **k: epoch_timer(*a, **k)
    try:
        with tempfile.TemporaryDirectory() as ws, Store.open(ws) as store:
            start, cpu = time.perf_counter(), time.process_time()
            result = search_module.search(cfg, data, store, device="cpu", progress=False)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        search_module.fit, pruning_cls.on_epoch_end = fit_timer.fn, epoch_timer.fn
        search_module.open_study = open_timer.fn
    trials = len(result.trials)
    complete = [t.duration_s for t in result.trials if t.state == "complete"]
    return {"sampler": sampler, "pruner": pruner, "best": result.best.value, "wall": wall,
            "cpu": cpu, "counts": result.counts,
            # opening (here: creating) the study is once per search, not per trial: apart
            "open_study": open_timer.seconds,
            "overhead_per_trial": (wall - fit_timer.seconds - open_timer.seconds) / trials,
            "overhead_cpu_per_trial": (cpu - fit_timer.cpu_seconds - open_timer.cpu_seconds) / trials,
            "trials": trials, "trial_s": statistics.median(complete),
            "pruning_ms_per_epoch": 1000 * epoch_timer.seconds / max(epoch_timer.calls, 1)}


def pruning_io(epochs: int, n_trials: int = 6) -> dict[str, float]:
    """Median ms per epoch of reporting the metric and asking whether to prune, on a SQLite
    study with a median pruner: Optuna as is (`trial.report` + `trial.should_prune`) against
    dlforge's study and `PruningCallback` (no sync per commit, one read per trial)."""
    import optuna

    from dlforge.tune.pruning import PruningCallback
    from dlforge.tune.study import open_study

    cfg = config("random", "median", n_trials, epochs)

    def optuna_as_is(trial, epoch, value, _callbacks):
        trial.report(value, epoch)
        trial.should_prune()

    def dlforge_callback(trial, epoch, value, callbacks):
        cb = callbacks.setdefault(trial.number, PruningCallback(trial, "val_accuracy"))
        try:
            cb.on_epoch_end(epoch, {"val_accuracy": value}, None)
        except optuna.TrialPruned:
            pass

    out = {}
    for name, step in (("optuna as is", optuna_as_is), ("dlforge", dlforge_callback)):
        with tempfile.TemporaryDirectory() as ws, Store.open(ws) as store:
            if name == "dlforge":
                study = open_study(cfg, store.sqlalchemy_url)
            else:
                study = optuna.create_study(storage=store.sqlalchemy_url, direction="maximize",
                                            pruner=optuna.pruners.MedianPruner(2, 1))
            times, callbacks = [], {}
            for t in range(n_trials):
                trial = study.ask()
                for epoch in range(epochs):
                    start = time.perf_counter()
                    step(trial, epoch, 0.5 + 0.02 * epoch - 0.01 * t, callbacks)
                    times.append(time.perf_counter() - start)
                study.tell(trial, 0.5)
        out[name] = 1000 * statistics.median(times)
    return out


def print_table(rows: list[dict]) -> None:
    print("| sampler | pruner | best val accuracy | wall time (s) | CPU time (s) "
          "| complete / pruned / failed | median complete trial (s) "
          "| report + prune check per epoch (ms) | orchestration per trial, wall / CPU (ms) "
          "| creating the study, once (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["counts"]
        print(f"| {r['sampler']} | {r['pruner']} | {100 * r['best']:.2f} % | {r['wall']:.1f} | "
              f"{r['cpu']:.1f} | {c['complete']} / {c['pruned']} / {c['failed']} | "
              f"{r['trial_s']:.2f} | {r['pruning_ms_per_epoch']:.1f} | "
              f"{1000 * r['overhead_per_trial']:.0f} / {1000 * r['overhead_cpu_per_trial']:.0f} | "
              f"{1000 * r['open_study']:.0f} |")


def print_verdicts(rows: list[dict]) -> None:
    base = {r["sampler"]: r for r in rows if r["pruner"] == "none"}
    for r in rows:
        if r["pruner"] == "none":
            continue
        ref = base[r["sampler"]]
        points, ratio = 100 * (r["best"] - ref["best"]), r["wall"] / ref["wall"]
        met = points >= -TARGET_POINTS and ratio <= TARGET_RATIO
        print(f"{r['sampler']} + {r['pruner']}: best {points:+.2f} points, wall time x{ratio:.2f} "
              f"(CPU time x{r['cpu'] / ref['cpu']:.2f}) of no pruning: target "
              f"{'MET' if met else 'NOT met'}")
    for key, what in (("overhead_per_trial", "wall"), ("overhead_cpu_per_trial", "CPU")):
        worst = max(r[key] for r in rows)
        print(f"orchestration per trial ({what}): at most {1000 * worst:.1f} ms = "
              f"{100 * worst / 5:.2f} % of a 5-second trial: target (< 2 %) "
              f"{'MET' if worst / 5 < 0.02 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials of 3 epochs per setting")
    args = parser.parse_args()
    n_trials, epochs = (4, 3) if args.quick else (10, 20)
    configure_process(1)
    data = prepare_data(config("random", "none", n_trials, epochs))
    measure("random", "none", 1, 1, data)  # warm-up: first-call costs are nobody's
    print(f"machine at start: {machine_line()}")
    print(f"digits ({len(data.inputs('train'))} train samples), Basic CNN, {n_trials} trials "
          f"x {epochs} epochs, space {SPACE}")
    io = pruning_io(epochs)
    print("report + prune check per epoch on a SQLite study, median pruner: "
          + ", ".join(f"{name} {ms:.1f} ms" for name, ms in io.items()))
    rows = [measure(s, p, n_trials, epochs, data) for s, p in SETTINGS]
    print_table(rows)
    print_verdicts(rows)
    print(f"machine at end: {machine_line()}")


if __name__ == "__main__":
    main()
