"""Streaming an image folder straight from its files (`data.source: image_folder` with
`data.streaming: true`): no shards, no decoding before training.

`open_folder(cfg)` lists the files (one pass over the directories, nothing decoded) into an
index data set whose samples are file numbers; selection, splitting and curation run on it
exactly as on the decoded set, so the splits are the in-memory run's. Each split is then a
`FileSplit` with the interface the streaming loader reads (`len`, `take`, `chunks`,
`as_inputs`): `take` decodes the files of a batch, in the loader's worker processes. Memory
holds the file list and labels, not the images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlforge.config.schema import DataConfig
from dlforge.data.anomaly import normal_only
from dlforge.data.curate import curate
from dlforge.data.dataset import Dataset, Provenance, TaskSpec
from dlforge.data.images import decode_image
from dlforge.data.select import select
from dlforge.data.sources.image_folder import folder_index
from dlforge.data.split import split_dataset
from dlforge.errors import DataError


@dataclass(frozen=True)
class FileSplit:
    """One split of an image folder: file paths under `root` and their labels.

    Example:
        >>> split = open_folder(cfg).split("train")  # doctest: +SKIP
        >>> x, y = split.take(np.array([3, 0]))  # doctest: +SKIP
    """

    root: Path
    ids: np.ndarray  # object array of paths under root
    y: np.ndarray
    color: str
    size: tuple[int, int] | None
    shape: tuple[int, ...]  # (C, H, W) of every image: the first file's, or data.image_size

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded `(x (n, C, H, W) uint8, y)` of the files at `index`, in that order.

        Raises:
            DataError: a file that cannot be read or decoded, or whose size differs from the
                others while `data.image_size` is unset (naming the file).
        """
        index = np.asarray(index, dtype=np.int64)
        x = np.empty((len(index), *self.shape), dtype=np.uint8)
        for row, k in enumerate(index):
            x[row] = self._decode(str(self.ids[k]))
        return x, self.y[index]

    def chunks(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The split in listed order, `size` files at a time (a streaming pass)."""
        for start in range(0, len(self), size):
            yield self.take(np.arange(start, min(start + size, len(self))))

    def as_inputs(self, x: np.ndarray) -> np.ndarray:
        """Decoded images are already the source's raw inputs."""
        return x

    def _decode(self, rel: str) -> np.ndarray:
        try:
            img = decode_image((self.root / rel).read_bytes(), color=self.color, size=self.size)
        except OSError as exc:
            raise DataError(f"data.path: cannot read {rel} ({exc.strerror or exc}); a streamed "
                            f"folder must stay readable while training") from None
        except DataError as exc:
            raise DataError(f"data.path: {rel}: {str(exc).removeprefix('<bytes>: ')}; remove or "
                            f"fix the file (a streamed folder is not decoded beforehand)") from None
        if img.shape != self.shape:
            raise DataError(f"data.image_size: {rel} is {img.shape[1]}x{img.shape[2]}, the "
                            f"folder's first image {self.shape[1]}x{self.shape[2]}; set "
                            f"data.image_size: [height, width] to resize them")
        return img


@dataclass(frozen=True)
class FileStream:
    """The splits of a source streamed from its own files (an image folder's `FileSplit`s, a
    CSV's `CsvSplit`s): what `data.streamed` opens."""

    splits: dict[str, Any]
    task: TaskSpec
    provenance: Provenance
    modality: str = "image"

    def split(self, name: str) -> FileSplit:
        return self.splits[name]


def open_folder(cfg: DataConfig, seed: int) -> FileStream:
    """List `data.path` and split it as `load_and_split` would, without decoding the images.

    Raises:
        DataError: no images, mixed split and class folders, or a first image that cannot be
            decoded (as the in-memory source).
    """
    index = folder_index(cfg)
    splits, task = split_index(index, cfg, seed)
    root = Path(index.provenance.details["root"])
    first = decode_image((root / str(index.ids[0])).read_bytes(), color=cfg.color, size=cfg.image_size)
    parts = {name: FileSplit(root, part.ids, part.y, cfg.color, cfg.image_size, first.shape)
             for name, part in splits.items()}
    return FileStream(parts, task, index.provenance)


def split_index(index: Dataset, cfg: DataConfig, seed: int) -> tuple[dict[str, Dataset], TaskSpec]:
    """Select, split and curate an index data set (samples = positions in the source) as
    `load_and_split` does the decoded one: `{"train", "val", "test"}` and the selected task
    (`data.classes`, `binary_from`, ... change it)."""
    dataset = select(index, cfg, seed)
    splits = curate(split_dataset(dataset, cfg, seed), dataset, cfg, seed)
    if dataset.task.kind == "anomaly":
        splits, _ = normal_only(splits)  # the warning is the in-memory sample's (stream_splits)
    return {"train": splits.train, "val": splits.val, "test": splits.test}, dataset.task
