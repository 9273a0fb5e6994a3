"""The data stages of a run whose training split stays on disk (`data.streaming`).

`streams(cfg)` decides: `true` (shards, an image folder or a CSV), or `auto` with shards whose
decoded size is above `STREAM_ABOVE_BYTES` (1 GiB). An image folder or a numeric CSV streams
straight from its files (data/folder_stream.py, data/csv_stream.py: indexed and split without
decoding; batches decoded by the readers).
`open_stream(cfg)` then reads the manifest (or lists the folder), fits the
preprocessing on a streaming pass over the training split (`Preprocessor.fit_chunks`: the
same statistics as in memory, within float tolerance) and loads what the other stages use in
memory: the validation and test splits, and `SAMPLE_ROWS` training samples evenly spaced over
the split (not its first ones, which a source in class order would fill with one class) (the
baseline, the drift reference, the validation report's checks and the in-run review see
those). The training batches come from a `StreamingLoader` (`TrainStream.loader`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlforge.config.schema import DataConfig, RunConfig
from dlforge.data.csv_stream import CsvSplit, open_csv
from dlforge.data.dataset import Dataset, Splits
from dlforge.data.folder_stream import FileSplit, FileStream, open_folder
from dlforge.data.loader import Augment
from dlforge.data.preprocess import Preprocessor, build_preprocessor
from dlforge.data.preprocess.image import CHUNK
from dlforge.data.shards import ShardSet, ShardSplit
from dlforge.data.sources.shards import provenance
from dlforge.data.streaming import StreamingLoader
from dlforge.data.validate import ValidationReport, validate

STREAM_ABOVE_BYTES = 1 << 30
SAMPLE_ROWS = 10_000


def streams(cfg: DataConfig) -> bool:
    """Whether the training split is streamed: `data.streaming: true` (shards, an image
    folder or a CSV), or `auto` with shards above `STREAM_ABOVE_BYTES` decoded.

    Example:
        >>> streams(DataConfig(source="builtin", streaming="auto"))
        False
        >>> streams(DataConfig(source="image_folder", path="photos", streaming=True))
        True
    """
    if cfg.source in ("image_folder", "csv"):
        return cfg.streaming is True
    if cfg.source != "shards" or cfg.streaming is False:
        return False
    return cfg.streaming is True or ShardSet.open(cfg.path).decoded_bytes > STREAM_ABOVE_BYTES


@dataclass(frozen=True)
class TrainStream:
    """The training split on disk and how many processes read it."""

    split: ShardSplit | FileSplit | CsvSplit
    workers: int

    def __len__(self) -> int:
        return len(self.split)

    def loader(self, pre: Preprocessor, task: str, *, batch_size: int, seed: int,
               augment: Augment | None) -> StreamingLoader:
        """A shuffled, augmented training loader over the shards."""
        return StreamingLoader(self.split, pre.transform, task, batch_size=batch_size,
                               shuffle=True, seed=seed, augment=augment, workers=self.workers)


@dataclass(frozen=True)
class Opened:
    """What `prepare_data` builds a streamed `PreparedData` from."""

    dataset: Dataset
    splits: Splits
    report: ValidationReport
    preprocessor: Preprocessor
    stream: TrainStream


def open_stream(cfg: RunConfig, preprocessor: Preprocessor | None = None) -> Opened:
    """Open the shards of `cfg.data.path` for a streamed run: `stream_splits`, then the
    preprocessing fitted on a streaming pass over the training split (unless given).

    Raises:
        DataError: no manifest, or a missing or resized shard (one line naming the file).
        ConfigError: preprocessing that cannot be fitted on a stream (texts, median, PCA).
    """
    dataset, splits, report = stream_splits(cfg)
    train = _source(cfg).split("train")
    pre = preprocessor or build_preprocessor(cfg.preprocess, dataset.modality).fit_chunks(
        train.as_inputs(x) for x, _ in train.chunks(CHUNK))
    return Opened(dataset, splits, report, pre, TrainStream(train, cfg.data.workers))


def stream_splits(cfg: RunConfig, *, training: bool = True) -> tuple[Dataset, Splits, ValidationReport]:
    """What a streamed run holds in memory: the validation and test splits and
    `SAMPLE_ROWS` training samples evenly spaced over the split (as `splits.train`), validated
    (`training` as `validate` takes it); the whole training split's size in
    `splits.info["streamed"]`.

    Raises:
        DataError: no manifest, a missing or resized shard, a folder without images, or
            data that cannot train.
    """
    source = _source(cfg)
    train = source.split("train")
    parts = {name: _in_memory(source, name, count)
             for name, count in (("train", SAMPLE_ROWS), ("val", None), ("test", None))}
    splits = Splits(**parts, info={"streamed": {"train": len(train), "in_memory": len(parts["train"])}})
    dataset = parts["train"].concat(parts["val"]).concat(parts["test"])
    report = validate(dataset, splits, cfg.preprocess, training=training)
    if len(train) > SAMPLE_ROWS:
        report.warnings.append(f"data.streaming: the training split ({len(train)} samples) is "
                               f"read from disk; the checks of training samples, the baseline "
                               f"and the drift reference cover {SAMPLE_ROWS} of them, evenly spaced")
    return dataset, splits, report


def _source(cfg: RunConfig) -> ShardSet | FileStream:
    """The splits on disk: an image folder's files, a CSV's rows, or the shards of `data.path`."""
    if cfg.data.source == "image_folder":
        return open_folder(cfg.data, cfg.seed)
    if cfg.data.source == "csv":
        return open_csv(cfg.data, cfg.seed)
    return ShardSet.open(cfg.data.path)


def _in_memory(source: ShardSet | FileStream, name: str, limit: int | None) -> Dataset:
    part = source.split(name)
    positions = np.arange(len(part))
    if limit is not None and limit < len(part):  # evenly spaced: a class-ordered source keeps its classes
        positions = np.unique(np.linspace(0, len(part) - 1, limit).round().astype(np.int64))
    x, y = part.take(positions)
    if isinstance(source, FileStream):
        ids: Any = np.asarray(part.ids, dtype=object)[positions]
        origin = source.provenance
    else:
        ids, origin = positions.astype(str).astype(object), provenance(source)
    return Dataset(x=part.as_inputs(x), y=y, task=source.task, modality=source.modality,
                   provenance=origin, ids=ids)
