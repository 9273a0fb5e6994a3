"""Shards written by `dlforge data shard`, loaded into memory (`data.streaming: false`).

Every split's rows are read and marked with their split, so `split_dataset` keeps the split
the shards were written with: the same train, validation and test samples in the same order.
"""

from __future__ import annotations

import numpy as np

from dlforge.config.load import PATH_KEYS
from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.data.shards import SPLITS, ShardSet


def load(cfg: DataConfig) -> Dataset:
    """Load every split of the shards at `data.path`.

    Raises:
        DataError: no manifest, or a missing or resized shard (one line naming the file).
    """
    shards = ShardSet.open(cfg.path)
    parts = {name: shards.split(name) for name in SPLITS}
    xs, ys = zip(*(part.take(np.arange(len(part))) for part in parts.values()), strict=True)
    x = parts["train"].as_inputs(np.concatenate(xs))
    marks = np.concatenate([np.full(len(part), name, dtype=object) for name, part in parts.items()])
    return Dataset(x=x, y=np.concatenate(ys), task=shards.task, modality=shards.modality,
                   provenance=provenance(shards), split=marks)


def provenance(shards: ShardSet) -> Provenance:
    """The manifest's record of the original source, and the shard directory. Where the
    source's files were (its data section's paths) is left out, so shards written from
    copies of one data set in two folders have one fingerprint."""
    source = dict(shards.manifest["source"])
    if isinstance(source.get("data"), dict):
        source["data"] = {k: v for k, v in source["data"].items() if k not in PATH_KEYS}
    return Provenance(source="shards", files=shards.checksums(),
                      details={"path": str(shards.root), "written_from": source})

