"""Does the default augmentation (`augment.preset: auto` -> small shifts) hurt or help test
accuracy? The same data-only config trained with `augment.preset: none` and with the default,
over a few seeds (the split, initialisation and shuffling follow the seed), on digits (8x8)
and a Fashion-MNIST subset (28x28).

Each run: `model: auto`, at most 60 (digits) or 10 (Fashion-MNIST) epochs, or `epochs: auto`
(the default: up to 100 epochs within a 120 s budget), with early stopping on val_loss
(restoring the best weights), one thread; test accuracy of the restored model.

    .venv/bin/python benchmarks/augment_default.py                 # 2 sets x 3 seeds x 2
    .venv/bin/python benchmarks/augment_default.py --only "Fashion-MNIST (28x28, 3,000 images, e" --seeds 2
    .venv/bin/python benchmarks/augment_default.py --seeds 1       # a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from dlforge.candidate import TrainingPlan, train_candidate
from dlforge.config import load_config
from dlforge.config.auto import resolve_auto
from dlforge.data.prepare import prepare_data
from dlforge.models.scores import predict_scores

FASHION = Path("/usr/share/datasets/fashion-mnist")
SETS = {
    "digits (8x8, 1,797 images)": ({"source": "builtin", "name": "digits"}, 60),
    "Fashion-MNIST (28x28, 3,000 images)": ({"source": "idx", "name": "fashion_mnist",
                                             "path": str(FASHION), "limit": 3000}, 10),
    # the default budget: `train.epochs: auto` (up to 100 epochs, early stopping, 120 s)
    "Fashion-MNIST (28x28, 3,000 images, epochs auto)": (
        {"source": "idx", "name": "fashion_mnist", "path": str(FASHION), "limit": 3000}, "auto"),
}


def test_accuracy(data: dict, epochs: int | str, preset: str, seed: int) -> tuple[float, str]:
    """Test accuracy of one run, and the augmentation it resolved to."""
    cfg = load_config({"seed": seed, "data": data, "augment": {"preset": preset},
                       "train": {"epochs": epochs, "num_threads": 1},
                       "evaluate": {"baseline": False}})
    prepared = prepare_data(cfg)
    cfg = resolve_auto(cfg, prepared.facts)
    model = train_candidate(TrainingPlan(cfg, prepared), device=torch.device("cpu")).model
    scores = predict_scores(model, prepared.inputs("test"), prepared.task, batch_size=1024,
                            device="cpu")
    correct = scores.argmax(axis=1) == prepared.splits.test.y
    return float(correct.mean()), str(cfg.augment.model_dump(exclude_none=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", help="run the sets whose name starts with this")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| data | augment | seeds | test accuracy per seed | mean | wall s |")
    print("|---|---|---|---|---|---|")
    for name, (data, epochs) in SETS.items():
        if args.only and not name.startswith(args.only):
            continue
        if data["source"] == "idx" and not FASHION.is_dir():
            print(f"skipped {name}: no {FASHION}", file=sys.stderr)
            continue
        for preset in ("none", "auto"):
            start = time.perf_counter()
            runs = [test_accuracy(data, epochs, preset, seed) for seed in range(args.seeds)]
            accs = [acc for acc, _ in runs]
            print(f"| {name} | {runs[0][1]} | {args.seeds} | "
                  f"{', '.join(f'{a:.4f}' for a in accs)} | {statistics.mean(accs):.4f} | "
                  f"{time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
