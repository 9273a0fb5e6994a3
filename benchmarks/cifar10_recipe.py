"""The CIFAR-10 recipe (examples/cifar10.yaml): validation accuracy against wall time, and
what each ingredient buys (`--ablate`).

Trains on the images of an .npz you give (N x 32 x 32 x 3 uint8, arrays `x_train`/`y_train`
or `x`/`y`): a stratified validation split of `--val` images (default 5,000, 500 per class)
is carved from them, and the recipe trains on the rest (45,000 of CIFAR-10's 50,000). The
official test images are never used. Every figure is measured through dlforge's one path
(`train_candidate`, the fit loop), with the recipe read from examples/cifar10.yaml; wall time
counts from building the model (the whitening fit included) to the end of each epoch,
validation included.

    .venv/bin/python benchmarks/cifar10_recipe.py --npz PATH                 # the recipe, 10 epochs
    .venv/bin/python benchmarks/cifar10_recipe.py --npz PATH --epochs 2 --train-limit 5000
    .venv/bin/python benchmarks/cifar10_recipe.py --npz PATH --ablate --epochs 3
    .venv/bin/python benchmarks/cifar10_recipe.py --npz PATH --recipe examples/cifar10_muon.yaml

`--set KEY=VALUE` changes the recipe as `dlforge run --set` does (e.g. `model.widths=[32,64,64]`).
A wall-clock run that needs only the final accuracy validates once, after its last epoch:

    .venv/bin/python benchmarks/cifar10_recipe.py --npz PATH --epochs 20 --set train.val_every=20

Epochs without validation (`train.val_every`) show their wall time and samples/s only.
`--ablate` retrains once per ingredient the recipe has (`ablations`): the Muon recipe skips
lookahead and adds Muon's own (SGD instead of Muon, no weight normalization).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import cpu_line, machine_line

from dlforge.candidate import TrainingPlan, train_candidate
from dlforge.config.load import apply_override, load_config, read_yaml
from dlforge.data.prepare import prepare_data
from dlforge.runtime import setup_process
from dlforge.train.callbacks import Callback

RECIPE = Path(__file__).resolve().parents[1] / "examples" / "cifar10.yaml"
# Ingredient -> the overrides that switch it off (the model's test flip needs no retraining).
# `--ablate` retrains only those a recipe has (`ablations`): the Muon recipe has no lookahead,
# the SGD recipe no Muon.
ABLATIONS = {
    "patch whitening": ["model.whiten=false"],
    "lookahead": ["train.ema=null"],
    "whitening-bias freeze": ["model.whiten_bias_epochs=null"],
    "batch-norm shifts at 64 x lr": ["train.bias_lr_scale=1"],
    "bias weight decay": ["train.decay_biases=false"],
    "label smoothing": ["train.label_smoothing=0"],
    "flip + translate": ["augment={}"],
    "alternating flip": ["augment.hflip.alternate=false"],
    "reflect padding": ["augment.crop.pad_mode=zeros"],
    # the filters take the recipe's SGD settings (train.lr, momentum, Nesterov, weight decay,
    # schedule), which it already gives the head and the biases: lr 1.656 at batch 2,000
    "Muon (SGD instead)": ["train.optimizer=sgd", "train.muon=null"],
    # nothing then bounds the filters' norms: the recipe's Muon weight decay is 0
    "Muon weight normalization": ["train.muon.normalize_weights=false"],
}


def ablations(npz: Path, overrides: list[str], path: Path = RECIPE) -> dict[str, list[str]]:
    """The entries of ABLATIONS that switch off an ingredient of the recipe at `path`: every
    key they set is in the recipe (a key under a section it leaves null, such as `train.muon`
    of the SGD recipe, is not), and the config they load differs from the recipe's."""
    base = recipe(npz, overrides, path)
    keys = base.model_dump(mode="json")
    return {name: off for name, off in ABLATIONS.items()
            if all(_has_key(keys, item.partition("=")[0]) for item in off)
            and recipe(npz, overrides + off, path) != base}


def _has_key(raw: dict, dotted: str) -> bool:
    *parents, leaf = dotted.split(".")
    for part in parents:
        raw = raw.get(part)
        if not isinstance(raw, dict):
            return False
    return leaf in raw


def split_npz(src: Path, dest: Path, val: int, train_limit: int | None, seed: int = 0) -> int:
    """Write `dest` with x_train/y_train and a stratified x_val/y_val of `val` images carved
    from `src` (x_test: 100 of the validation images, a placeholder the pipeline requires and
    this benchmark never reports). Returns the number of training images."""
    with np.load(src, allow_pickle=False) as archive:
        xk, yk = ("x_train", "y_train") if "x_train" in archive.files else ("x", "y")
        x, y = archive[xk], archive[yk]
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = val // len(classes)
    val_idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes])
    train_idx = rng.permutation(np.setdiff1d(np.arange(len(y)), val_idx))[:train_limit]
    np.savez(dest, x_train=x[train_idx], y_train=y[train_idx], x_val=x[val_idx], y_val=y[val_idx],
             x_test=x[val_idx[:100]], y_test=y[val_idx[:100]])
    return len(train_idx)


def recipe(npz: Path, overrides: list[str], path: Path = RECIPE):
    """The recipe at `path` (default examples/cifar10.yaml) reading `npz`, with `overrides`
    (KEY=VALUE) applied."""
    raw = read_yaml(path)
    raw["data"] = {"source": "npz", "path": str(npz)}
    raw["evaluate"] = {"baseline": False}
    for item in overrides:
        apply_override(raw, item)
    return load_config(raw)


class Clock(Callback):
    """Records (wall seconds since it was made, validation accuracy or None for an epoch that
    was not validated (`train.val_every`), training samples/s) after every epoch."""

    def __init__(self) -> None:
        self.start, self.curve = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs, state):
        self.curve.append((time.perf_counter() - self.start, logs.get("val_accuracy"),
                           logs["samples_per_s"]))
        # as it goes: a long run shows where it stands
        print(f"  epoch {epoch}: {epoch_line(*self.curve[-1])}", flush=True)


def epoch_line(wall: float, acc: float | None, rate: float) -> str:
    """`  12.3 s, val accuracy 0.9012, 3456 samples/s`; no accuracy when not validated."""
    validated = "" if acc is None else f", val accuracy {acc:.4f}"
    return f"{wall:7.1f} s{validated}, {rate:.0f} samples/s"


def train(cfg, data) -> tuple[Clock, object]:
    """One `train_candidate` call, timed from the model's build."""
    clock = Clock()
    candidate = train_candidate(TrainingPlan(cfg, data, callbacks=(clock,)),
                                device=torch.device("cpu"))
    return clock, candidate


def val_accuracy(model, data) -> float:
    x, y = data.inputs("val"), data.tensors["val"][1]
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(xb).argmax(1) for xb in x.split(1000)])
    return float((pred == y).float().mean())


def report_curve(name: str, clock: Clock) -> None:
    print(f"\n{name}: epoch | wall s | val accuracy (- not validated) | train samples/s")
    for epoch, (wall, acc, rate) in enumerate(clock.curve):
        shown = "-" if acc is None else f"{acc:.4f}"
        print(f"  {epoch} | {wall:7.1f} | {shown} | {rate:.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, required=True, help="N x 32 x 32 x 3 uint8 images")
    parser.add_argument("--val", type=int, default=5000, help="validation images carved out")
    parser.add_argument("--train-limit", type=int, default=None, help="train on fewer images")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--recipe", type=Path, default=RECIPE,
                        help="recipe config (default examples/cifar10.yaml; "
                        "examples/cifar10_muon.yaml: airbench94_muon's)")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--ablate", action="store_true", help="retrain with each ingredient off")
    args = parser.parse_args()
    setup_process(None, "cpu")
    print(f"machine: {machine_line()}\n{cpu_line()}")
    overrides = args.overrides + ([f"train.epochs={args.epochs}"] if args.epochs else [])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "split.npz"
        n_train = split_npz(args.npz, npz, args.val, args.train_limit)
        cfg = recipe(npz, overrides, args.recipe)
        data = prepare_data(cfg)
    print(f"data split and prepared in {time.perf_counter() - start:.0f} s (not counted below)")
    print(f"train {n_train} images, validation {args.val}; epochs {cfg.train.epochs}, "
          f"threads {torch.get_num_threads()}, precision {cfg.train.precision}")
    clock, candidate = train(cfg, data)
    report_curve("recipe", clock)
    full = clock.curve[-1][1]
    print(f"\nablation | val accuracy | change\n  full recipe | {full:.4f} | -")
    model = candidate.model
    for name, attr in (("test-time translations", "tta_translate"),
                       ("any test-time augmentation", "test_flip")):
        setattr(model, attr, False)  # the model's test-time augmentation needs no retraining
        acc = val_accuracy(model, data)
        print(f"  without {name} | {acc:.4f} | {acc - full:+.4f}", flush=True)
    if args.ablate:  # the same prepared data; loaders_for(config) applies each augmentation
        for name, off in ablations(Path(cfg.data.path), overrides, args.recipe).items():
            clock, _ = train(recipe(Path(cfg.data.path), overrides + off, args.recipe), data)
            acc = clock.curve[-1][1]
            print(f"  without {name} | {acc:.4f} | {acc - full:+.4f} "
                  f"({clock.curve[-1][0]:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
