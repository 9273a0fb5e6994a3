"""A bounded, uniform sample of the inputs a server served (reservoir sampling, Algorithm R).

The server keeps one per model version, of PREPROCESSED inputs, and saves it now and then
to ``<workspace>/drift/<name>/v<version>.npz`` (atomically), where ``dlforge drift NAME
--served`` reads it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from dlforge.atomic import atomic_open
from dlforge.errors import DataError, NotFoundError


def served_sample_path(workspace: str | Path, name: str, version: int) -> Path:
    """Where the server keeps model `name` version `version`'s sample of served inputs."""
    return Path(workspace) / "drift" / name / f"v{version}.npz"


class Reservoir:
    """Up to `size` inputs, each served input equally likely to be among them.

    Thread-safe: the inference thread adds, a background thread reads and saves.

    Example:
        >>> r = Reservoir(3, seed=0)
        >>> r.add(np.arange(10, dtype=np.float32)[:, None])
        >>> r.seen, r.sample().shape
        (10, (3, 1))
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seen = 0
        self._rows: np.ndarray | None = None
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def add(self, x: np.ndarray) -> None:
        """Offer a batch of inputs (rows of `x`) to the sample."""
        with self._lock:
            if self._rows is None:
                self._rows = np.empty((self.size, *x.shape[1:]), dtype=x.dtype)
            if x.shape[1:] != self._rows.shape[1:]:
                return  # not this model's input shape: the predictor refused it already
            index = self.seen + np.arange(len(x))
            slots = np.where(index < self.size, index, self._rng.integers(0, index + 1))
            keep = slots < self.size
            self._rows[slots[keep]] = x[keep]  # later rows win, as one by one
            self.seen += len(x)

    def sample(self) -> np.ndarray | None:
        """A copy of the sample (None before the first input)."""
        with self._lock:
            if self._rows is None:
                return None
            return self._rows[:min(self.seen, self.size)].copy()

    def save(self, path: Path) -> None:
        """Write the sample and the count of inputs seen (atomically)."""
        sample = self.sample()
        if sample is None:
            return
        with atomic_open(path, "wb") as fh:
            np.savez(fh, x=sample, seen=np.int64(self.seen))

    @classmethod
    def load(cls, path: Path, size: int, seed: int = 0) -> Reservoir:
        """A reservoir continuing the saved one at `path` (empty when there is none)."""
        if not path.is_file():
            return cls(size, seed)
        return cls.resume(*read_sample(path), size=size, seed=seed)

    @classmethod
    def resume(cls, rows: np.ndarray, seen: int, *, size: int, seed: int = 0) -> Reservoir:
        """A reservoir continuing a sample `rows` of `seen` inputs. A sample cut to `size`, or
        one smaller than `size` that stands for more inputs than it holds, then stands for its
        own rows only (so every slot below `seen` holds a row)."""
        reservoir = cls(size, seed)
        keep = rows[:size]
        reservoir._rows = np.empty((size, *rows.shape[1:]), dtype=rows.dtype)
        reservoir._rows[:len(keep)] = keep
        whole = len(keep) == len(rows) and (len(keep) == size or seen == len(keep))
        reservoir.seen = seen if whole else len(keep)
        return reservoir


def read_sample(path: Path) -> tuple[np.ndarray, int]:
    """(sample, inputs seen) saved at `path`.

    Raises:
        NotFoundError: no sample was saved there.
        DataError: the file is not a saved sample.
    """
    if not path.is_file():
        raise NotFoundError(f"served sample: {path} does not exist; serve the model with "
                            "`dlforge serve` (it saves its sample every drift.refresh_seconds)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["x"], int(data["seen"])
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"served sample: {path} is not a sample saved by dlforge serve ({exc}); "
                        "delete it and serve again") from None
