"""Tiny synthetic split data for the streaming tests: sample i's pixels all equal i."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlforge.data.dataset import Dataset, Provenance, Splits, TaskSpec

TASK = TaskSpec("multiclass", ("a", "b", "c"))
COUNTS = {"train": 23, "val": 7, "test": 5}  # 23 divides by neither 2 nor 3 ranks


def image_splits() -> Splits:
    """Images (N, 1, 4, 4) uint8 whose pixels are the sample's number in its split + 10 x k."""
    parts = {}
    for k, (name, n) in enumerate(COUNTS.items()):
        x = np.broadcast_to((np.arange(n) + 100 * k).astype(np.uint8)[:, None, None, None],
                            (n, 1, 4, 4)).copy()
        parts[name] = Dataset(x=x, y=np.arange(n, dtype=np.int64) % 3, task=TASK,
                              modality="image", provenance=Provenance("test"))
    return Splits(**parts)


def table_splits() -> Splits:
    """A numeric table: column `i` the row number, `f` a spread of floats."""
    rng = np.random.default_rng(0)
    parts = {}
    for name, n in COUNTS.items():
        x = pd.DataFrame({"i": np.arange(n, dtype=np.float64), "f": rng.normal(5.0, 3.0, n)})
        parts[name] = Dataset(x=x, y=np.arange(n, dtype=np.int64) % 3, task=TASK,
                              modality="table", provenance=Provenance("test"))
    return Splits(**parts)


def as_float(x) -> np.ndarray:
    """The loaders' transform in tests: the raw values as float32."""
    return np.asarray(x, dtype=np.float32)
