"""In-memory batch iteration: tensors, a seeded per-epoch order, optional weighted sampling.

The order (and the augmentation) of an epoch derive from `(seed, epoch)` alone, so a resumed
run sees exactly the batches an uninterrupted one would, without saving any RNG state. Batches
are cut with one index tensor per batch (`x[idx]`), which copies into a fresh contiguous
tensor; nothing is done per sample in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from dlforge.data.dataset import TaskSpec
from dlforge.errors import DataError


class Augment(Protocol):
    """What a loader calls on each training batch (`data.augment.Augmenter`): the batch, the
    epoch's augmentation stream, and where the batch's samples sit (their positions in the
    split, the epoch, the loader's seed) for ops that follow a sample across epochs."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator, *,
                 index: torch.Tensor | None = None, epoch: int = 0, seed: int = 0) -> torch.Tensor:
        ...


def to_tensors(x: np.ndarray, y: np.ndarray, task: TaskSpec | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Preprocessed features and labels as tensors with the dtype each task's loss expects.

    Args:
        x: preprocessed samples (float32, or int64 token ids); kept in their dtype.
        y: labels: multiclass int (N,) or one-hot (N, K) (argmax taken); binary 0/1 (N,) or
            (N, 1); multilabel 0/1 (N, K); regression (N,) or (N, T).
        task: the TaskSpec (or its kind).

    Returns:
        `(x, y)`; y is int64 (N,) for multiclass, float32 (N,) for binary, float32 (N, K) for
        multilabel and float32 for regression.

    Raises:
        DataError: x and y have different numbers of samples.
    """
    kind = task.kind if isinstance(task, TaskSpec) else task
    x_arr, y_arr = np.asarray(x), np.asarray(y)
    if len(x_arr) != len(y_arr):
        raise DataError(f"input: {len(x_arr)} samples but {len(y_arr)} labels; they must match")
    xt = torch.from_numpy(np.ascontiguousarray(x_arr))
    if kind == "multiclass":
        labels = y_arr.argmax(axis=1) if y_arr.ndim == 2 else y_arr
        yt = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
    elif kind == "binary":
        yt = torch.from_numpy(np.ascontiguousarray(y_arr.reshape(len(y_arr)), dtype=np.float32))
    else:
        yt = torch.from_numpy(np.ascontiguousarray(y_arr, dtype=np.float32))
    return xt, yt


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch, stream) through numpy's SeedSequence, so
    nearby seeds and epochs give unrelated streams."""
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class EpochLoader:
    """What every loader shares: `len()` in batches of `num_samples`, `set_epoch`, and a
    position within an epoch that `state_dict()` records and `load_state_dict()` resumes.

    Resuming mid-epoch: `state_dict()` is `{"epoch", "batch" (batches delivered so far),
    "augment" (the augmentation stream's state, JSON-safe)}`; after `load_state_dict`, the next
    iteration is that epoch from its next batch, with the augmentation stream where it was, so
    it yields exactly the batches an uninterrupted epoch had left.
    """

    batch_size: int
    epoch: int
    _position: dict[str, Any] | None = None
    _resume: dict[str, Any] | None = None

    @property
    def num_samples(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch `epoch` (order and augmentation from (seed, epoch))."""
        self.epoch = epoch

    def state_dict(self) -> dict[str, Any]:
        """Where iteration stands: `{"epoch", "batch", "augment"}` (see the class)."""
        position = self._position or {"epoch": self.epoch, "batch": 0, "generator": None}
        generator = position["generator"]
        return {"epoch": position["epoch"], "batch": position["batch"],
                "augment": None if generator is None else generator.get_state().tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at `state`: the next iteration is its epoch, from its next batch."""
        self._resume = dict(state)
        self.epoch = state["epoch"]

    def _begin(self, seed: int, stream: int) -> tuple[int, int, torch.Generator]:
        """Start the next epoch: `(epoch, first batch, augmentation generator)`, the first
        batch and the generator's state taken from a pending `load_state_dict`."""
        epoch, self.epoch = self.epoch, self.epoch + 1
        generator = epoch_generator(seed, epoch, stream=stream)
        resume, self._resume = self._resume, None
        first = 0
        if resume is not None and resume["epoch"] == epoch:
            first = resume["batch"]
            if resume["augment"] is not None:
                generator.set_state(torch.tensor(resume["augment"], dtype=torch.uint8))
        self._position = {"epoch": epoch, "batch": first, "generator": generator}
        return epoch, first, generator

    def _tracked(self, batches: Iterable[Any], first: int) -> Iterator[Any]:
        """`batches` (numbered from `first`), recording each delivery for `state_dict`."""
        position = self._position
        for k, batch in enumerate(batches, start=first + 1):
            position["batch"] = k
            yield batch


class BatchLoader(EpochLoader):
    """Yields `(xb, yb)` batches of in-memory tensors.

    Args:
        x: samples, first dimension N.
        y: targets, first dimension N.
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: a fresh permutation every epoch (else the stored order).
        seed: with the epoch, fixes the order and the augmentation.
        augment: called as `augment(xb, generator, index=positions, epoch=epoch, seed=seed)`
            on every batch (training only; `positions`: the batch's places in `x`).
        sample_weights: (N,) non-negative weights; each epoch then draws N indices WITH
            replacement in proportion to them (a weighted sampler; `shuffle` is implied).

    Each iteration uses the epoch set by `set_epoch`, then moves on to the next one, so plain
    repeated iteration also sees new orders.

    Example:
        >>> loader = BatchLoader(torch.zeros(10, 2), torch.zeros(10), batch_size=4, shuffle=True)
        >>> loader.set_epoch(3)
        >>> [len(yb) for _, yb in loader]
        [4, 4, 2]
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, shuffle: bool = False,
                 seed: int = 0, augment: Augment | None = None,
                 sample_weights: torch.Tensor | np.ndarray | None = None) -> None:
        if len(x) != len(y):
            raise DataError(f"input: {len(x)} samples but {len(y)} labels; they must match")
        self.x, self.y = x.contiguous(), y.contiguous()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment
        self.sample_weights = None if sample_weights is None else _check_weights(sample_weights, len(x))
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        """Samples drawn per epoch (N, also with a weighted sampler)."""
        return len(self.x)

    def order(self, epoch: int) -> torch.Tensor | None:
        """The sample indices of `epoch`, or None for the stored order."""
        generator = epoch_generator(self.seed, epoch)
        if self.sample_weights is not None:
            return torch.multinomial(self.sample_weights, self.num_samples, replacement=True,
                                     generator=generator)
        return torch.randperm(self.num_samples, generator=generator) if self.shuffle else None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # A second stream for augmentation, so turning it on does not change the order.
        epoch, first, generator = self._begin(self.seed, stream=1)
        index = self.order(epoch)
        if first:  # resuming mid-epoch: the batches left
            index = torch.arange(self.num_samples) if index is None else index
            index = index[first * self.batch_size:]
        return self._tracked(self.batches(index, generator, epoch=epoch), first)

    def batches(self, index: torch.Tensor | None, aug_generator: torch.Generator, *,
                epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of the samples at `index` in that order (None: all, in the stored order),
        augmented with `aug_generator` as epoch `epoch`."""
        count = self.num_samples if index is None else len(index)
        for start in range(0, count, self.batch_size):
            if index is None:
                idx = torch.arange(start, min(start + self.batch_size, count))
                xb, yb = self.x[start:start + self.batch_size], self.y[start:start + self.batch_size]
            else:
                idx = index[start:start + self.batch_size]
                xb, yb = self.x[idx], self.y[idx]
            if self.augment is not None:
                xb = self.augment(xb, aug_generator, index=idx, epoch=epoch, seed=self.seed)
            yield xb, yb


def shard_indices(order: torch.Tensor, rank: int, world: int, *, pad: bool) -> torch.Tensor:
    """Rank `rank`'s share of an epoch's `order` among `world` processes: positions rank,
    rank + world, ... (DistributedSampler semantics). With `pad`, `order` is first extended by
    its own beginning to a multiple of `world`, so every rank gets the same count.

    Example:
        >>> shard_indices(torch.arange(5), 1, 2, pad=True).tolist()
        [1, 3, 0]
        >>> shard_indices(torch.arange(5), 1, 2, pad=False).tolist()
        [1, 3]
    """
    short = -len(order) % world
    if pad and short:
        repeats = -(-short // len(order))
        order = torch.cat([order, order.repeat(repeats)[:short]])
    return order[rank::world]


class ShardedLoader(EpochLoader):
    """One process's share of a `BatchLoader` under data parallelism.

    Each epoch the inner loader's own order for (seed, epoch) is dealt out round robin
    (`shard_indices`), so the shares are disjoint, derive from (seed, epoch) only (a resume
    needs no RNG state, with any process count) and, at batch size B per rank, batch k of all
    ranks together is batch k of one process at batch size B x world. With `pad` (training),
    every rank gets the same number of samples and batches, so a gradient all-reduce never
    waits for a rank that has run out (the uneven-shard hang); without it (validation) every
    sample is seen exactly once.

    Args:
        inner: the loader of the whole split.
        rank: this process's rank, from 0.
        world: the number of processes.
        pad: equal shares by repeating the epoch's first samples.

    Example:
        >>> inner = BatchLoader(torch.arange(5.0), torch.zeros(5), batch_size=2)
        >>> [xb.tolist() for xb, _ in ShardedLoader(inner, 1, 2, pad=True)]
        [[1.0, 3.0], [0.0]]
    """

    def __init__(self, inner: BatchLoader, rank: int, world: int, *, pad: bool) -> None:
        self.inner, self.rank, self.world, self.pad = inner, rank, world, pad
        self.x, self.y, self.batch_size = inner.x, inner.y, inner.batch_size
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        """Samples this rank draws per epoch."""
        total = self.inner.num_samples
        return -(-total // self.world) if self.pad else len(range(self.rank, total, self.world))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        inner = self.inner
        # Each rank augments with a stream of its own (rank 0's is the one process's).
        epoch, first, generator = self._begin(inner.seed, stream=1 + self.rank)
        order = inner.order(epoch)
        order = torch.arange(inner.num_samples) if order is None else order
        index = shard_indices(order, self.rank, self.world, pad=self.pad)
        return self._tracked(inner.batches(index[first * self.batch_size:], generator, epoch=epoch),
                             first)


@dataclass
class Loaders:
    """The loaders of one run: train (shuffled, augmented), val, optional test, and optional
    per-class loss weights from balancing."""

    train: BatchLoader
    val: BatchLoader
    test: BatchLoader | None = None
    class_weights: torch.Tensor | None = None


def _check_weights(weights: torch.Tensor | np.ndarray, n: int) -> torch.Tensor:
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (n,):
        raise DataError(f"sample_weights: expected one weight per sample, shape ({n},), "
                        f"got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise DataError("sample_weights: must be finite, non-negative and not all zero")
    return w
