"""Synthetic datasets for the select/split/validate/balance tests (no sources, no files)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlforge.data.dataset import Dataset, Provenance, TaskSpec


def images(counts: list[int], names: tuple[str, ...] | None = None, split=None) -> Dataset:
    """Single-label images (N, 1, 4, 4) whose class c has counts[c] rows, all rows distinct."""
    y = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    x = np.arange(len(y) * 16, dtype=np.int64).reshape(len(y), 1, 4, 4).astype(np.float32)
    names = names or tuple(f"c{i}" for i in range(len(counts)))
    kind = "binary" if len(counts) == 2 else "multiclass"
    split = None if split is None else np.asarray(split, dtype=object)
    return Dataset(x, y, TaskSpec(kind, names), "image", Provenance("synthetic"), split=split)


def table(n: int = 64, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"age": rng.normal(40, 10, n), "color": rng.choice(["red", "blue"], n),
                      "id": np.arange(n)})
    y = (np.arange(n) % 2).astype(np.int64)
    return Dataset(x, y, TaskSpec("binary", ("no", "yes")), "table", Provenance("table.csv"))


def multilabel(n: int = 64) -> Dataset:
    y = np.zeros((n, 3), dtype=np.int64)
    y[:, 0] = 1                       # frequent label
    y[::4, 1] = 1                     # 16 of 64
    y[::16, 2] = 1                    # rare: 4 of 64
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return Dataset(x, y, TaskSpec("multilabel", ("a", "b", "c")), "table", Provenance("ml"))


def regression(n: int = 64) -> Dataset:
    y = np.linspace(0, 1, n, dtype=np.float32)
    x = pd.DataFrame({"f": np.arange(n, dtype=np.float64)})
    return Dataset(x, y, TaskSpec("regression", ("target",)), "table", Provenance("reg"))


def counts(ds: Dataset) -> list[int]:
    return np.bincount(ds.y, minlength=len(ds.task.class_names)).tolist()
