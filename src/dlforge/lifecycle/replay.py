"""The replay buffer a registered model keeps in its bundle (``replay.npz``), for updates.

A bounded sample of the model's preprocessed training inputs and their labels: a reservoir
per class (class-balanced: each class keeps at most ``replay_size // classes`` samples, at
least one) for binary and multiclass tasks, one plain reservoir otherwise (regression,
multilabel). An updated model's buffer continues its source's reservoirs with the fresh
training samples, so it stays a uniform sample of everything the lineage trained on, per
class. Preprocessed, so replayed samples need no raw files and meet the source's fitted
preprocessing exactly as they did when it was trained.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlforge.config.model_schema import GAN_TYPE
from dlforge.errors import DataError
from dlforge.lifecycle.reservoir import Reservoir

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig
    from dlforge.data.dataset import TaskSpec
    from dlforge.data.prepare import PreparedData
    from dlforge.registry import Store

REPLAY = "replay.npz"
BALANCED_TASKS = ("binary", "multiclass")


@dataclass(frozen=True)
class Replay:
    """A replay buffer.

    Attributes:
        x: preprocessed inputs; y: their labels (the model's class order) or targets.
        seen: per group (class, or one group), how many training samples the group's rows
            stand for (a reservoir's count).
    """

    x: np.ndarray
    y: np.ndarray
    seen: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays saved in the bundle's replay.npz."""
        return {"x": self.x, "y": self.y, "seen": self.seen}

    def draw(self, fresh: int, ratio: float, seed: int) -> np.ndarray:
        """Positions of the replayed samples to mix with `fresh` new ones so that they are
        `ratio` of the mix (all of the buffer when it holds fewer), drawn without replacement.

        Example:
            >>> r = Replay(np.zeros((10, 2)), np.arange(10), np.ones(10, dtype=np.int64))
            >>> len(r.draw(4, 0.5, seed=0)), len(r.draw(40, 0.5, seed=0)), len(r.draw(4, 0.0, 0))
            (4, 10, 0)
        """
        wanted = min(len(self), round(fresh * ratio / (1.0 - ratio)))
        return np.sort(np.random.default_rng(seed).permutation(len(self))[:wanted])


def groups_of(task: TaskSpec, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Each sample's group (its class for binary/multiclass, else 0) and the number of groups."""
    if task.kind in BALANCED_TASKS:
        return np.asarray(y, dtype=np.int64), len(task.class_names)
    return np.zeros(len(y), dtype=np.int64), 1


def sample_replay(x: np.ndarray, y: np.ndarray, task: TaskSpec, size: int, seed: int,
                  start: Replay | None = None) -> Replay:
    """A replay buffer of at most about `size` samples of (`x`, `y`), continuing `start`.

    Args:
        x, y: preprocessed training inputs and their labels.
        task: the model's task (class-balanced for binary and multiclass).
        size: the buffer's bound (`update.replay_size`).
        seed: seeds the reservoirs.
        start: the buffer these samples are added to (an update's source's), or None.

    Returns:
        The buffer: per group, a uniform sample of `start`'s samples and these.

    Example:
        >>> from dlforge.data.dataset import TaskSpec
        >>> y = np.array([0] * 90 + [1] * 10)
        >>> r = sample_replay(np.arange(100.0)[:, None], y, TaskSpec("multiclass", ("a", "b")), 20, 0)
        >>> np.bincount(r.y).tolist(), r.seen.tolist()
        ([10, 10], [90, 10])
    """
    pool_x = x if start is None else np.concatenate([start.x, x.astype(start.x.dtype)])
    pool_y = y if start is None else np.concatenate([start.y, np.asarray(y, dtype=start.y.dtype)])
    offset = 0 if start is None else len(start)
    fresh_groups, count = groups_of(task, y)
    old_groups = None if start is None else groups_of(task, start.y)[0]
    cap = max(1, size // count)
    chosen, seen = [], np.zeros(count, dtype=np.int64)
    for g in range(count):
        reservoir = Reservoir(cap, seed=seed + g)
        if start is not None:
            old = np.flatnonzero(old_groups == g)[:, None]
            reservoir = Reservoir.resume(old, int(start.seen[g]) if g < len(start.seen) else len(old),
                                         size=cap, seed=seed + g)
        new = offset + np.flatnonzero(fresh_groups == g)
        if len(new):
            reservoir.add(new[:, None])
        rows = reservoir.sample()
        chosen.append(np.empty(0, dtype=np.int64) if rows is None else rows[:, 0])
        seen[g] = reservoir.seen
    keep = np.sort(np.concatenate(chosen))
    return Replay(pool_x[keep], pool_y[keep], seen)


def replay_for(store: Store, data: PreparedData, cfg: RunConfig) -> Replay | None:
    """The buffer a run's bundle keeps: its training split (as it came from the source, before
    resampling), continuing the buffer of the version it updates (`update.source`). None when
    `update.replay_size` is 0 or the model is a GAN."""
    if cfg.update.replay_size == 0 or cfg.model.type == GAN_TYPE:
        return None
    start = None
    if cfg.update.source is not None:
        start = read_replay(store.resolve(cfg.update.source).bundle_path)
    train = data.splits.train
    y = np.asarray(train.y)
    probe = sample_replay(np.arange(len(y))[:, None], y, data.task, cfg.update.replay_size,
                          cfg.seed, _positions(start))
    fresh = probe.x[:, 0][probe.x[:, 0] >= 0]  # positions in the training split chosen
    x = data.preprocessor.transform(train.x.iloc[fresh] if hasattr(train.x, "iloc") else train.x[fresh])
    kept_old = probe.x[:, 0][probe.x[:, 0] < 0] + (0 if start is None else len(start))
    parts_x = [x] if start is None else [start.x[kept_old], x.astype(start.x.dtype)]
    parts_y = [y[fresh]] if start is None else [start.y[kept_old], y[fresh].astype(start.y.dtype)]
    return Replay(np.concatenate(parts_x), np.concatenate(parts_y), probe.seen)


def _positions(start: Replay | None) -> Replay | None:
    """`start` with its inputs replaced by negative positions (-len .. -1), so that sampling
    positions tells which old rows and which training rows were kept without transforming
    every training sample."""
    if start is None:
        return None
    return Replay(np.arange(-len(start), 0)[:, None], start.y, start.seen)


def read_replay(bundle_path: str | Path) -> Replay | None:
    """The replay buffer of the bundle at `bundle_path`; None when it has none (bundles
    registered before dlforge kept one, or with `update.replay_size: 0`).

    Raises:
        DataError: the file is there but unreadable.
    """
    file = Path(bundle_path) / REPLAY
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as arrays:
            return Replay(arrays["x"], arrays["y"], arrays["seen"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"replay buffer: {file} is unreadable ({exc}); re-register the model "
                        f"with `dlforge run` to get a new one") from None
