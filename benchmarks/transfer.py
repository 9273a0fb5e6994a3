"""Does transfer learning pay? Fashion-MNIST, five classes -> the other five with 1 % of their
training data: from scratch vs feature extraction vs fine-tuning, at equal epochs, several seeds.

The source model (Basic CNN with BatchNorm) trains on T-shirt, Trouser, Pullover, Dress and Coat
(`--source-per-class` images each). The target task is Sandal, Shirt, Sneaker, Bag and Ankle boot
with `--per-class` training images each (60 = 1 % of their 30,000), scored on their full official
test split (5,000 images). All three arms train the same architecture for `--epochs` epochs at
the same LR, without early stopping, through `dlforge.pipeline.run` (the one path); the transfer
arms start from the registered source, reuse its preprocessing and get the platform's default
`transfer` settings unless `--set` changes them. `--probe` also fits linear probes on the
source's features (`probe`).

    .venv/bin/python benchmarks/transfer.py [--seeds 3] [--epochs 10] [--probe] [--markdown]
        [--set backbone_lr_mult=0.1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine_line
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlforge.config.schema import DataConfig
from dlforge.data.sources import load_dataset
from dlforge.pipeline import run
from dlforge.registry import Store, load_bundle

SOURCE_CLASSES, TARGET_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
MODEL = {"type": "basic_cnn", "filters": [16, 32], "dense": 64, "batch_norm": True}
ARMS = {"from scratch": None, "feature extraction": "feature_extraction", "fine-tuning": "finetune"}


def pick(y, split, classes, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `per_class` training images of each class (the first of a seeded shuffle)
    and of every test image of those classes."""
    rng = np.random.default_rng(seed)
    train = np.concatenate([rng.permutation(np.flatnonzero((y == c) & (split != "test")))[:per_class]
                            for c in classes])
    return train, np.flatnonzero(np.isin(y, classes) & (split == "test"))


def write_npz(path: Path, x, y, split, classes, per_class: int, seed: int) -> tuple[Path, float]:
    """`pick`'s images as an .npz the `npz` source reads; returns its path and the training
    images' share of its rows."""
    train, test = pick(y, split, classes, per_class, seed)
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
                      "num_threads": 1, "early_stopping": False}, **extra}


def probe(ws: Path, ref: str, x, y, split, per_class: int) -> tuple[int, dict[str, float]]:
    """How linearly separable the target classes are in the source model's features: a
    logistic regression on `per_class` target training images per class (seed 0's draw),
    scored on the target's test images, for the conv features and the dense layer's outputs
    before and after its ReLU; returns how many dense units never fire on those training
    images, and the probes' test accuracies by layer."""
    with Store.open(ws) as store:
        bundle = load_bundle(store.resolve(ref).bundle_path)
    model, pre = bundle.model.eval(), bundle.preprocessor
    train, test = pick(y, split, TARGET_CLASSES, per_class, 0)

    def features(idx: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            conv = model.features(torch.as_tensor(pre.transform(x[idx]))).flatten(1)
            dense = model.classifier[1](conv)
        return {"conv features": conv.numpy(), "dense before ReLU": dense.numpy(),
                "dense after ReLU": dense.relu().numpy()}

    fit_on, score_on = features(train), features(test)
    dead = int((fit_on["dense after ReLU"].max(0) == 0).sum())
    probes = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return dead, {layer: probes.fit(f, y[train]).score(score_on[layer], y[test])
                  for layer, f in fit_on.items()}


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
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="A transfer.* key of the transfer arms, e.g. backbone_lr_mult=0.1 "
                             "(repeatable); default the platform's defaults.")
    parser.add_argument("--probe", action="store_true",
                        help="Also fit linear probes on the source's features (`probe`).")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    ds = load_dataset(DataConfig(source="idx", name="fashion_mnist"))
    x, y, split = ds.x, np.asarray(ds.y), np.asarray(ds.split)
    overrides = dict(kv.split("=", 1) for kv in args.set)
    start = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        src = write_npz(Path(tmp) / "a.npz", x, y, split, SOURCE_CLASSES, args.source_per_class, 0)
        source = run(config("fashion-a", src, 0, args.source_epochs), workspace=ws, progress=False)
        if args.probe:
            dead, probes = probe(ws, source.model_ref, x, y, split, args.per_class)
            print(f"source's dense units that never fire on the target: {dead}; linear probes, "
                  "target test accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in probes.items()))
        scores: dict[str, list[float]] = {arm: [] for arm in ARMS}
        for seed in range(args.seeds):
            npz = write_npz(Path(tmp) / f"b{seed}.npz", x, y, split, TARGET_CLASSES, args.per_class, seed)
            for arm, mode in ARMS.items():
                extra = {"transfer": {"source": source.model_ref, "mode": mode, **overrides}} if mode else {}
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
