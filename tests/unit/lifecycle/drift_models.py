"""Tiny registered models WITH a training reference, and their data, for the drift tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dlforge.config.schema import ImagePreprocess, LinearConfig, MLPConfig, TablePreprocess
from dlforge.data.dataset import TaskSpec
from dlforge.data.preprocess import ImagePreprocessor, TablePreprocessor
from dlforge.lifecycle.reference import build_reference
from dlforge.models import build_model
from dlforge.registry import Store
from dlforge.registry.bundle import save_bundle

CHURN = TaskSpec("binary", ("stay", "leave"))
DIGITS = TaskSpec("multiclass", ("zero", "one", "two"))


def rows(n: int, seed: int = 0, shift_a: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(shift_a, 1, n), "b": rng.normal(5, 2, n),
                         "color": rng.choice(["red", "blue", "green"], n)})


def images(n: int, seed: int = 0, brighter: int = 0) -> np.ndarray:
    """Grey 8x8 images: a bright square of random size on a dark background."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, (n, 1, 8, 8))
    sides = rng.integers(2, 7, n)
    for i, side in enumerate(sides):
        x[i, 0, :side, :side] += 150
    return np.clip(x + brighter, 0, 255).astype(np.uint8)


def _save(dest: Path, pre, model, cfg, task, train_x, *, reference: bool, extra=None) -> Path:
    ref = build_reference(pre.transform(train_x), model=model, preprocessor=pre, task=task) if reference else None
    return save_bundle(dest, model=model, model_config=cfg, input_shape=pre.output_shape,
                       num_outputs=task.num_outputs, vocab_size=None, preprocessor=pre, task=task,
                       threshold=None, metrics={}, extra=extra, reference=ref)


def table_bundle(dest: Path, *, reference: bool = True) -> Path:
    train = rows(400)
    pre = TablePreprocessor(TablePreprocess()).fit(train)
    torch.manual_seed(0)
    cfg = MLPConfig(hidden=[8])
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=1)
    return _save(dest, pre, model, cfg, CHURN, train, reference=reference,
                 extra={"input": {"columns": ["a", "b", "color"]}})


def image_bundle(dest: Path) -> Path:
    train = images(400)
    pre = ImagePreprocessor(ImagePreprocess()).fit(train)
    torch.manual_seed(0)
    model = build_model(LinearConfig(), input_shape=pre.output_shape, num_outputs=3)
    return _save(dest, pre, model, LinearConfig(), DIGITS, train, reference=True)


def make_store(root: Path) -> Store:
    """churn v1 (table, with reference), churn v2 (no reference.json: an old bundle), digits v1
    (8x8 grey images, with reference)."""
    store = Store.open(root / "ws")
    store.register("churn", None, table_bundle(root / "c1"), {})
    store.register("churn", None, table_bundle(root / "c2", reference=False), {})
    store.register("digits", None, image_bundle(root / "d1"), {})
    return store


def registered(root: Path) -> Path:
    """`make_store(root)` plus same.csv (churn's distribution) and shifted.csv (column a moved
    by one standard deviation) in `root`; returns `root`."""
    make_store(root).close()
    rows(200, seed=1).to_csv(root / "same.csv", index=False)
    rows(200, seed=1, shift_a=1.0).to_csv(root / "shifted.csv", index=False)
    return root
