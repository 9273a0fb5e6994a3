"""Finding flipped labels on digits: 5 % of the training labels get another class (seeded,
`data.flip_labels`); how well do confident learning (k-fold) and the area under the margin (of
the k-fold trainings, and of one ordinary run) flag them, and what does retraining without the
flagged samples give on the untouched test split?

    .venv/bin/python benchmarks/noisy_labels.py              # seeds 0 1, ~10 min on a shared 2-core machine
    .venv/bin/python benchmarks/noisy_labels.py --seeds 0    # one seed
    .venv/bin/python benchmarks/noisy_labels.py --seeds 0 --review-epochs 15 --review-only

Every training is one `train_candidate` call of examples/digits.yaml's CNN (smaller here).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_line  # noqa: E402

from dlforge.candidate import TrainingPlan, train_candidate  # noqa: E402
from dlforge.config import load_config  # noqa: E402
from dlforge.data.prepare import prepare_data  # noqa: E402
from dlforge.evaluate.label_issues import precision_recall  # noqa: E402
from dlforge.models.scores import labels_from_scores, predict_scores  # noqa: E402
from dlforge.pipeline.review_stage import margin_tracker, tracked_findings  # noqa: E402
from dlforge.review import review_data  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.yaml"
SMALLER = ["model.filters=[16,32]", "model.dense=64", "train.epochs=30", "train.early_stopping.patience=5"]
CPU = torch.device("cpu")


def test_accuracy(cfg, exclude: list[str] = ()) -> float:
    """Test accuracy of one training of `cfg` on its data without the `exclude` ids."""
    cfg = load_config(cfg, [f"data.exclude={list(exclude)}"]) if exclude else cfg
    data = prepare_data(cfg)
    candidate = train_candidate(TrainingPlan(cfg, data), device=CPU)
    return _accuracy(candidate.model, data)


def _accuracy(model, data) -> float:
    scores = predict_scores(model, data.inputs("test"), data.task, batch_size=512, device=CPU)
    return float((labels_from_scores(data.task, scores, None) == data.splits.test.y).mean())


def one_seed(seed: int, review_epochs: int, review_only: bool) -> dict:
    base = load_config(EXAMPLE, [*SMALLER, f"seed={seed}", f"review.epochs={review_epochs}"])
    noisy = load_config(base, ["data.flip_labels=0.05"])
    data = prepare_data(noisy)
    flipped = data.splits.info["flipped"]
    start = time.perf_counter()
    tracker = margin_tracker(noisy, data)
    run = train_candidate(TrainingPlan(noisy, data, callbacks=(tracker,)), device=CPU)
    in_run = tracked_findings(tracker, data)
    run_s = time.perf_counter() - start
    start = time.perf_counter()
    review = review_data(noisy, data, device=CPU)
    review_s = time.perf_counter() - start
    flagged = {"cl": review.flagged_ids("confident_learning"), "aum_kfold": review.flagged_ids("aum"),
               "aum_run": in_run.flagged_ids("aum")}
    pr = {name: precision_recall(ids, flipped) for name, ids in flagged.items()}
    if review_only:
        return {"seed": seed, "review_epochs": review_epochs, "pr": pr, "review_s": round(review_s, 1)}
    return {
        "seed": seed, "train": len(data.splits.train), "flipped": len(flipped), "pr": pr,
        "acc": {"clean": test_accuracy(base), "noisy": _accuracy(run.model, data),
                "without_cl": test_accuracy(noisy, flagged["cl"]),
                "without_aum_run": test_accuracy(noisy, flagged["aum_run"]),
                "without_flipped": test_accuracy(noisy, flipped)},
        "seconds": {"run_with_margins": round(run_s, 1), "review": round(review_s, 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--review-epochs", type=int, default=5, help="review.epochs of each fold (the figures: 5 and 15)")
    parser.add_argument("--review-only", action="store_true", help="skip the test-accuracy retrainings")
    args = parser.parse_args()
    print(machine_line())
    rows = []
    for seed in args.seeds:  # printed as each finishes: a long run still leaves its seeds
        rows.append(one_seed(seed, args.review_epochs, args.review_only))
        print(rows[-1], flush=True)
    if args.review_only:
        return
    print("\n| seed | signal | flagged | flipped | hits | precision | recall |\n|---|---|---|---|---|---|---|")
    for row in rows:
        for name, pr in row["pr"].items():
            print(f"| {row['seed']} | {name} | {pr['flagged']} | {pr['true']} | {pr['hits']} | "
                  f"{pr['precision']:.3f} | {pr['recall']:.3f} |")
    keys = list(rows[0]["acc"])
    print("\n| seed | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1))
    for row in rows:
        print(f"| {row['seed']} | " + " | ".join(f"{row['acc'][k]:.4f}" for k in keys) + " |")
    means = {k: np.mean([r["acc"][k] for r in rows]) for k in keys}
    print("| mean | " + " | ".join(f"{means[k]:.4f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
