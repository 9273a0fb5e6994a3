"""Streaming batches from shards on disk: the in-memory `BatchLoader`'s interface and order.

`StreamingLoader` is what the fit loop and evaluation consume, like `BatchLoader`: `set_epoch`,
`len()` (batches), `num_samples`, `order(epoch)`, `batches(index, generator)` and iteration
yielding `(xb, yb)`. The order of an epoch is the in-memory loader's, `randperm(N)` from
`epoch_generator(seed, epoch)`, so a shuffled epoch over shards sees the same samples in the
same batches as over tensors.

Reading and preprocessing run in `workers` background processes of a torch `DataLoader` over
an `IterableDataset`: worker w reads batches w, w + workers, ... and the DataLoader hands them
out round robin, so the batches arrive in index order whatever the worker count. Augmentation
runs in this process on each batch as it arrives, with the epoch's own stream, as in memory.

`ShardedLoader(streaming_loader, rank, world, pad=True)` gives a data-parallel rank its share
exactly as for tensors (`shard_indices`): equal batch counts on every rank, the padding stated.

Resuming mid-epoch: `state_dict()` records the epoch, the batches delivered and the
augmentation stream's state; after `load_state_dict`, iterating that epoch yields exactly the
remaining batches (the skipped ones are not read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from dlforge.data.loader import Augment, EpochLoader, epoch_generator, to_tensors
from dlforge.data.shards import ShardSplit

Transform = Callable[[Any], np.ndarray]


class _Batches(IterableDataset):
    """Batches `first`, `first + 1`, ... of `index`, each worker taking every `workers`-th."""

    def __init__(self, split: ShardSplit, index: np.ndarray, batch_size: int, first: int,
                 transform: Transform, task: str) -> None:
        super().__init__()
        self.split, self.index, self.batch_size, self.first = split, index, batch_size, first
        self.transform, self.task = transform, task

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        count = -(-len(self.index) // self.batch_size)
        for k in range(self.first + worker, count, workers):
            x, y = self.split.take(self.index[k * self.batch_size:(k + 1) * self.batch_size])
            yield to_tensors(self.transform(self.split.as_inputs(x)), y, self.task)


class StreamingLoader(EpochLoader):
    """Yields preprocessed `(xb, yb)` batches read from a split's shards.

    Args:
        split: the shards of one split.
        transform: the fitted preprocessor's `transform` (raw rows -> float32 array).
        task: the task kind (target dtypes as `to_tensors`).
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: a fresh permutation every epoch (else the stored order).
        seed: with the epoch, fixes the order and the augmentation.
        augment: called as `augment(xb, generator, index=positions, epoch=epoch, seed=seed)`
            on every batch (training only; `positions`: the batch's places in the split).
        workers: background reader processes (0: read in this process).

    Example:
        >>> loader = StreamingLoader(ShardSet.open("shards").split("train"),  # doctest: +SKIP
        ...                          pre.transform, "multiclass", batch_size=64, workers=2)
        >>> loader.set_epoch(3); xb, yb = next(iter(loader))  # doctest: +SKIP
    """

    x = y = None  # nothing in memory (ShardedLoader copies these attributes)

    def __init__(self, split: ShardSplit, transform: Transform, task: str, *, batch_size: int,
                 shuffle: bool = False, seed: int = 0, augment: Augment | None = None,
                 workers: int = 0) -> None:
        self.split, self.transform, self.task = split, transform, task
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.augment, self.workers = augment, workers
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        """Samples per epoch."""
        return len(self.split)

    def order(self, epoch: int) -> torch.Tensor | None:
        """The sample indices of `epoch` (the in-memory loader's), or None for stored order."""
        if not self.shuffle:
            return None
        return torch.randperm(self.num_samples, generator=epoch_generator(self.seed, epoch))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, first, generator = self._begin(self.seed, stream=1)
        return self.batches(self.order(epoch), generator, epoch=epoch, first=first)

    def batches(self, index: torch.Tensor | None, aug_generator: torch.Generator, *,
                epoch: int, first: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches `first`, ... of the samples at `index` in that order (None: all, stored
        order), read by the workers and augmented here with `aug_generator` as epoch `epoch`."""
        index = np.arange(self.num_samples) if index is None else np.asarray(index, dtype=np.int64)
        source = _Batches(self.split, index, self.batch_size, first, self.transform, self.task)
        # A generator of its own: a DataLoader otherwise draws its workers' base seed from
        # torch's global one, and that would change the dropout masks of the epoch.
        reader = DataLoader(source, batch_size=None, num_workers=self.workers,
                            prefetch_factor=2 if self.workers else None,
                            generator=torch.Generator().manual_seed(0))
        size = self.batch_size
        for k, (xb, yb) in enumerate(reader, start=first):
            if self.augment is not None:
                positions = torch.from_numpy(index[k * size:(k + 1) * size])
                xb = self.augment(xb, aug_generator, index=positions, epoch=epoch, seed=self.seed)
            if self._position is not None:  # None when called directly, not by iteration
                self._position["batch"] = k + 1  # the generator's state is read when asked for
            yield xb, yb
