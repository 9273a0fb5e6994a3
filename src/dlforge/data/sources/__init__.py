"""Data sources: every kind of input becomes the same in-memory `Dataset`.

One module per source kind; `load_dataset` picks it from `data.source`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset
from dlforge.data.sources import builtin, cifar, csv_source, idx, image_folder, imdb, npz, shards

_LOADERS: dict[str, Callable[[DataConfig], Dataset]] = {
    "builtin": builtin.load,
    "idx": idx.load,
    "cifar": cifar.load,
    "image_folder": image_folder.load,
    "csv": csv_source.load,
    "npz": npz.load,
    "imdb": imdb.load,
    "shards": shards.load,
}


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load the data `cfg` describes, with its task, class names and provenance.

    Args:
        cfg: the validated `data` section of the run config.

    Returns:
        The whole data set in memory; `split` marks rows the source fixes (a shipped test
        set or a split column), `skipped` lists unreadable files, `ids` names every sample
        (file paths for image folders, else row numbers from 0).

    Raises:
        DataError: one line naming the config key, the value received and the fix.

    Example:
        >>> from dlforge.config.schema import DataConfig
        >>> ds = load_dataset(DataConfig(source="builtin", name="wine"))
        >>> ds.task.kind, len(ds)
        ('multiclass', 178)
        >>> ds.ids[:3].tolist()
        ['0', '1', '2']
    """
    ds = _LOADERS[cfg.source](cfg)
    if ds.ids is None:
        ds = replace(ds, ids=np.arange(len(ds)).astype(str).astype(object))
    return ds


__all__ = ["load_dataset"]
