"""Does a recall goal chosen on validation hold on test? `min_recall` with and without the
Clopper-Pearson margin (`evaluate.threshold.confidence`), over several seeds.

For each task and seed: train one small model (the split, initialisation and shuffling follow
the seed), choose the threshold on its VALIDATION scores twice (point estimate; lower bound at
95 %), and measure TEST recall at each. Reports how often test recall met the goal, and the
test precision paid for the margin.

    .venv/bin/python benchmarks/threshold_margin.py            # 2 tasks x 8 seeds, ~5 min
    .venv/bin/python benchmarks/threshold_margin.py --seeds 2  # a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from dlforge.candidate import TrainingPlan, train_candidate
from dlforge.config import load_config
from dlforge.config.schema import ThresholdConfig
from dlforge.data.prepare import prepare_data
from dlforge.evaluate.threshold import choose_threshold
from dlforge.models.scores import predict_scores

GOAL = 0.95
FASHION = Path("/usr/share/datasets/fashion-mnist")
TASKS = {
    # digits: "8" (the hardest digit) against the rest; ~27 eights in validation
    "digits 8-vs-rest": {"data": {"source": "builtin", "name": "digits",
                                  "binary_from": {"eight": ["8"]}, "positive_class": "eight"},
                         "model": {"type": "mlp", "hidden": [64]}, "train": {"epochs": 20}},
    # Fashion-MNIST: shirts (often confused with T-shirts, pullovers, coats) against the rest
    "fashion shirt-vs-rest": {"data": {"source": "idx", "name": "fashion_mnist", "path": str(FASHION),
                                       "binary_from": {"shirt": ["Shirt"]}, "positive_class": "shirt",
                                       "limit": 6000},
                              "model": {"type": "mlp", "hidden": [128]}, "train": {"epochs": 10}},
}


def one_seed(raw: dict, seed: int) -> dict[str, tuple[float, float]]:
    """Test (recall, precision) at the threshold chosen with and without the margin."""
    cfg = load_config({**raw, "seed": seed, "train": {**raw["train"], "num_threads": 1},
                       "evaluate": {"baseline": False}})
    data = prepare_data(cfg)
    model = train_candidate(TrainingPlan(cfg, data), device=torch.device("cpu")).model
    scores = {s: predict_scores(model, data.inputs(s), data.task, batch_size=1024, device="cpu")
              for s in ("val", "test")}
    y_val, y_test = np.asarray(data.splits.val.y), np.asarray(data.splits.test.y)
    out = {}
    for name, confidence in (("point", None), ("bound", 0.95)):
        t = choose_threshold(data.task, y_val, scores["val"], ThresholdConfig(
            objective="min_recall", value=GOAL, confidence=confidence))
        flagged = scores["test"] >= t.value
        recall = float(flagged[y_test == 1].mean())
        precision = float(y_test[flagged].mean()) if flagged.any() else 0.0
        out[name] = (recall, precision)
    out["positives"] = (int(y_val.sum()), int(y_test.sum()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"| task | seeds | val / test positives | threshold | test recall >= {GOAL} | "
          f"mean test recall | mean test precision |")
    print("|---|---|---|---|---|---|---|")
    for task, raw in TASKS.items():
        if raw["data"]["source"] == "idx" and not FASHION.is_dir():
            print(f"skipped {task}: no {FASHION}", file=sys.stderr)
            continue
        runs = [one_seed(raw, seed) for seed in range(args.seeds)]
        pos = runs[0]["positives"]
        for name in ("point", "bound"):
            rec = [r[name][0] for r in runs]
            prec = [r[name][1] for r in runs]
            met = sum(x >= GOAL for x in rec)
            print(f"| {task} | {len(runs)} | {pos[0]} / {pos[1]} | {name} | {met}/{len(runs)} | "
                  f"{statistics.mean(rec):.3f} | {statistics.mean(prec):.3f} |", flush=True)


if __name__ == "__main__":
    main()
