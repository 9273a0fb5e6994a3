"""Does transfer learning pay? Fashion-MNIST, five classes -> the other five with 1 % of their
training data: from scratch vs feature extraction vs fine-tuning, at equal epochs, several seeds.

The source model (Basic CNN with BatchNorm) trains on T-shirt, Trouser, Pullover, Dress and Coat
(`--source-per-class` images each). The target task is Sandal, Shirt, Sneaker, Bag and Ankle boot
with `--per-class` training images each (60 = 1 % of their 30,000), scored on their full official
test split (5,000 images). All three arms train the same architecture for `--epochs` epochs at
the same LR through `dlforge.pipeline.run` (the one path); the transfer arms start from the
registered source and reuse its preprocessing.

    .venv/bin/python benchmarks/transfer.py [--seeds 3] [--epochs 10] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine_line

from dlforge.config.schema import DataConfig
from dlforge.data.sources import load_dataset
from dlforge.pipeline import run

SOURCE_CLASSES, TARGET_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
MODEL = {"type": "basic_cnn", "filters": [16, 32], "dense": 64, "batch_norm": True}
ARMS = {"from scratch": None, "feature extraction": "feature_extraction", "fine-tuning": "finetune"}


def write_npz(path: Path, x, y, split, classes, per_class: int, seed: int) -> tuple[Path, float]:
    """`per_class` training images of each class (the first of a seeded shuffle) and every
    test image of those classes, as an .npz the `npz` source reads; returns its path and the
    training images' share of its rows."""
    rng = np.random.default_rng(seed)
    train = np.concatenate([rng.permutation(np.flatnonzero((y == c) & (split != "test")))[:per_class]
                            for c in classes])
    test = np.flatnonzero(np.isin(y, classes) & (split == "test"))
    np.savez(path, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    return path, len(train) / (len(train) + len(test))


def config(name: str, npz: tuple[Path, float], seed: int, epochs: int, lr: float = 0.002,
           **extra) -> dict:
    """15 % of the training images validate (`val_fraction` counts the test rows too)."""
    path, train_share = npz
    data = {"source": "npz", "path": str(path), "val_fraction": round(0.15 * train_share, 6)}
    return {"name": name, "seed": seed, "data": data,
            "model": MODEL, "evaluate": {"baseline": False, "misclassified_examples": 0},
            "train": {"epochs": epochs, "batch_size": 32, "optimizer": "adam", "lr": lr,
                      "num_threads": 1}, **extra}


def accuracy(result) -> float:
    return dict(result.headline)["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--source-per-class", type=int, default=1200)
    parser.add_argument("--source-epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.002, help="Adam LR of the target arms.")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    ds = load_dataset(DataConfig(source="idx", name="fashion_mnist"))
    x, y, split = ds.x, np.asarray(ds.y), np.asarray(ds.split)
    start = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        src = write_npz(Path(tmp) / "a.npz", x, y, split, SOURCE_CLASSES, args.source_per_class, 0)
        source = run(config("fashion-a", src, 0, args.source_epochs), workspace=ws, progress=False)
        scores: dict[str, list[float]] = {arm: [] for arm in ARMS}
        for seed in range(args.seeds):
            npz = write_npz(Path(tmp) / f"b{seed}.npz", x, y, split, TARGET_CLASSES, args.per_class, seed)
            for arm, mode in ARMS.items():
                extra = {"transfer": {"source": source.model_ref, "mode": mode}} if mode else {}
                result = run(config(f"fashion-b-{seed}", npz, seed, args.epochs, args.lr, **extra),
                             workspace=ws, progress=False)
                scores[arm].append(accuracy(result))
    report(args, accuracy(source), scores, time.process_time() - start)


def report(args, source_acc: float, scores: dict[str, list[float]], cpu: float) -> None:
    print(f"# {machine_line()}; {cpu:.0f} s CPU in this process")
    print(f"target LR {args.lr}; source (5 classes, {args.source_per_class}/class, {args.source_epochs} epochs): "
          f"test accuracy {source_acc:.4f}")
    if args.markdown:
        print(f"| arm ({args.per_class} images/class, {args.epochs} epochs) | "
              + " | ".join(f"seed {s}" for s in range(args.seeds)) + " | mean | sd |")
        print("|---" * (args.seeds + 3) + "|")
    for arm, accs in scores.items():
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        cells = [f"{a:.4f}" for a in accs] + [f"{statistics.mean(accs):.4f}", f"{sd:.4f}"]
        print(f"| {arm} | " + " | ".join(cells) + " |" if args.markdown else f"{arm:20s} " + " ".join(cells))


if __name__ == "__main__":
    main()
