"""Small helpers every source uses: checking data.path, hashing bytes, joining shipped splits."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dlforge.atomic import atomic_dir
from dlforge.config.schema import DataConfig
from dlforge.errors import DataError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def existing_path(cfg: DataConfig, *, kind: str = "file or directory") -> Path:
    """`data.path` as a Path, or a DataError naming it when it does not exist."""
    assert cfg.path is not None  # callers only ask when a path is configured
    path = Path(cfg.path).expanduser()
    try:
        found = path.exists()
    except OSError as exc:  # a name too long for the file system, a path through a file
        raise DataError(f"data.path: {cfg.path!r} cannot be looked up ({exc.strerror}); give an "
                        f"existing {kind}") from None
    if not found:
        raise DataError(f"data.path: {cfg.path!r} does not exist; give an existing {kind}")
    return path


def split_names(counts: dict[str, int]) -> np.ndarray:
    """Per-sample split names for parts stored one after another, e.g. {"train": 3, "test": 2}."""
    parts = [np.full(n, name, dtype=object) for name, n in counts.items()]
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def extract_folder(archive: Path, dest: Path, dirname: str, kind: str,
                   keep: Callable[[str], bool] | None = None) -> Path:
    """Extract the `dirname/` folder of a tar(.gz) to `dest/dirname`, atomically and safely.

    Args:
        archive: the archive file.
        dest: the folder to extract into (usually the cache).
        dirname: the top folder inside the archive, e.g. `cifar-10-batches-py`.
        kind: what the archive should be, for the error message (e.g. "CIFAR").
        keep: which paths below `dirname/` to extract (default all).

    Raises:
        DataError: not a readable archive, no `dirname/` folder inside, or an unsafe member
            (absolute path, link leaving the folder, device), refused by tarfile's data filter.
    """
    target = dest / dirname
    if target.is_dir():
        return target
    prefix = f"{dirname}/"

    def strip_prefix(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        # tarfile's "data" filter refuses absolute paths, links leaving the folder and devices.
        member = tarfile.data_filter(member, path)
        rel = member.name[len(prefix):]
        return member.replace(name=rel) if rel else None

    try:
        with tarfile.open(archive, "r:*") as tar, atomic_dir(target) as tmp:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                       and (keep is None or keep(m.name[len(prefix):]))]
            if not members:
                raise DataError(f"{archive}: no {prefix} folder inside; not a {kind} archive")
            tar.extractall(tmp, members=members, filter=strip_prefix)
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"{archive}: cannot extract the archive ({exc})") from None
    return target
