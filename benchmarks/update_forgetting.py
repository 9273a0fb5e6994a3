"""Is forgetting controlled? A digits model updated on rotated digits, with and without replay.

The original model (an MLP, `--epochs` epochs) trains on the builtin digits. The fresh data
is its OWN training rows rotated by `--degrees` (90: a strong shift; no test row of the
original enters the update, rotated or not), as an .npz. Each arm is one `dlforge update`
of the registered original through the library (`update_config` -> `pipeline.run`), with
the default LR (a tenth of the original's) and `update.replay_ratio` 0.5 (replay) or 0 (no
replay, with the original's epochs or twice as many: as many optimizer steps as the replay
arm, whose training set is twice the fresh one); the forgetting figure is the gate's own (`lifecycle.forgetting`): accuracy on the
original test split before and after. Also reported: accuracy on the fresh data's test split
(did the update learn the new distribution).

    .venv/bin/python benchmarks/update_forgetting.py [--seeds 3] [--degrees 90] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine_line

from dlforge.config import load_config
from dlforge.data.prepare import load_and_split
from dlforge.lifecycle.forgetting import forgetting_check
from dlforge.lifecycle.update import update_config
from dlforge.pipeline import run
from dlforge.registry import Store

# arm: (update.replay_ratio, epochs as a multiple of the original's). Replay at 0.5 doubles
# the training set, so "no replay, 2x epochs" takes as many optimizer steps as the replay arm.
ARMS = {"replay 0.5": (0.5, 1), "no replay": (0.0, 1), "no replay, 2x epochs": (0.0, 2)}


def original_config(seed: int, epochs: int) -> dict:
    return {"name": "dg", "seed": seed, "data": {"source": "builtin", "name": "digits"},
            "model": {"type": "mlp", "hidden": [64]},
            "train": {"epochs": epochs, "batch_size": 64, "lr": 0.01, "num_threads": 1},
            "update": {"max_forgetting": None},
            "evaluate": {"baseline": False, "gate": {"conditions": ["accuracy >= 0"]}}}


def rotated_training_rows(cfg: dict, path: Path, degrees: int) -> None:
    """The original's training split, rotated (multiples of 90 degrees), as an .npz."""
    train = load_and_split(load_config(cfg))[1].train
    x = np.rot90(np.asarray(train.x), k=degrees // 90, axes=(2, 3)).copy()
    np.savez(path, x_train=x, y_train=np.asarray(train.y))


def one_seed(seed: int, degrees: int, epochs: int) -> dict[str, tuple[float, float, float]]:
    """{arm: (original-test accuracy before, after, fresh-test accuracy after)}."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws, fresh = Path(tmp), Path(tmp) / "rotated.npz"
        cfg = original_config(seed, epochs)
        run(cfg, workspace=ws, progress=False)
        rotated_training_rows(cfg, fresh, degrees)
        for arm, (ratio, times) in ARMS.items():
            with Store.open(ws) as store:
                update = update_config(store, "dg@1", fresh, overrides=[
                    f"update.replay_ratio={ratio}", f"train.epochs={epochs * times}"])
            result = run(update, workspace=ws, progress=False)
            with Store.open(ws) as store:
                check = forgetting_check(store, store.resolve(result.model_ref))
            results[arm] = (check.champion, check.candidate, dict(result.headline)["accuracy"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--degrees", type=int, default=90, choices=(90, 180, 270))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = {seed: one_seed(seed, args.degrees, args.epochs) for seed in range(args.seeds)}
    print(machine_line())
    print("| seed | arm | original test, before | after | drop | rotated test, after |")
    print("|---|---|---|---|---|---|")
    for seed, arms in rows.items():
        for arm, (before, after, fresh) in arms.items():
            print(f"| {seed} | {arm} | {before:.3f} | {after:.3f} | {before - after:.3f} | {fresh:.3f} |")
    for arm in ARMS:
        drops = [a[arm][0] - a[arm][1] for a in rows.values()]
        fresh = [a[arm][2] for a in rows.values()]
        spread = statistics.stdev(drops) if len(drops) > 1 else 0.0
        print(f"{arm}: mean drop {statistics.mean(drops):.3f} (sd {spread:.3f}, max {max(drops):.3f}), "
              f"rotated test {statistics.mean(fresh):.3f}")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
