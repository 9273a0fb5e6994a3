"""Small helpers every source uses: checking data.path, hashing bytes, joining shipped splits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from dlforge.config.schema import DataConfig
from dlforge.errors import DataError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def existing_path(cfg: DataConfig, *, kind: str = "file or directory") -> Path:
    """`data.path` as a Path, or a DataError naming it when it does not exist."""
    assert cfg.path is not None  # callers only ask when a path is configured
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise DataError(f"data.path: {cfg.path!r} does not exist; give an existing {kind}")
    return path


def split_names(counts: dict[str, int]) -> np.ndarray:
    """Per-sample split names for parts stored one after another, e.g. {"train": 3, "test": 2}."""
    parts = [np.full(n, name, dtype=object) for name, n in counts.items()]
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)
