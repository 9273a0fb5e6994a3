"""Atomic writes: write beside the target, fsync, then rename, so a crash never leaves half a file.

Every checkpoint, bundle file, report and download goes through these helpers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dlforge.errors import DlforgeError
from dlforge.noreplace import rename_new


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto `target` on success.

    On an exception the temporary file is removed and `target` is untouched.

    Example:
        >>> with atomic_path(tmp / "weights.safetensors") as tmp_file:  # doctest: +SKIP
        ...     save_file(tensors, tmp_file)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; give them the usual mode
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(target: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces `target` only if the block succeeds."""
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_text(target: str | Path, text: str) -> Path:
    with atomic_open(target, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(target)


def write_json(target: str | Path, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


@dataclass
class StagedDir:
    """A directory being written by `staged_dir`: write into `tmp`; `path` is the target, and
    after the block the directory it became."""

    tmp: Path
    path: Path


class TargetTaken(DlforgeError, FileExistsError):
    """`staged_dir`'s target was created by another process while the work was written: it
    is left as it is, and the work was kept in `kept`, the first free of `target-2`, ..."""

    def __init__(self, target: Path, kept: Path) -> None:
        super().__init__(f"{target} was created by another process while this one worked; it "
                         f"is left as it is, and the files written are in {kept}")
        self.target, self.kept = target, kept


@contextlib.contextmanager
def staged_dir(target: str | Path, *, numbered: bool = False, keep: bool = False) -> Iterator[StagedDir]:
    """Yield a temporary directory; on success it is renamed to `target` (which must not exist).

    Readers never see a bundle directory with only some of its files.

    Args:
        target: the directory to create.
        numbered: when `target` exists at the end (another writer, an earlier run), use the
            first free one of `target-2`, `target-3`, ... instead: the name is chosen when the
            work is done, so two writers started together both keep theirs.
        keep: for a directory the user named, whose work took long, and which the CALLER
            found absent when that work began: when `target` (not `numbered`) exists at the
            end (or already at the start: it appeared since the caller's check), keep the work
            in the first free one of `target-2`, ... and raise `TargetTaken` naming it, instead
            of deleting the work. A caller that made no such check must not pass it: a
            folder that was there all along would be reported as made meanwhile.

    Raises:
        FileExistsError: `target` exists, before the block or at its end (not `numbered`
            nor `keep`).
        TargetTaken: `target` exists at the end (not `numbered`, with `keep`).

    Example:
        >>> with staged_dir(tmp / "review", numbered=True) as staged:  # doctest: +SKIP
        ...     write_text(staged.tmp / "review.json", "{}")
        >>> staged.path  # doctest: +SKIP
        PosixPath('.../review-2')
    """
    target = Path(target)
    if os.path.lexists(target) and not (numbered or keep):  # a dangling symlink is taken too
        raise FileExistsError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = StagedDir(Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp",
                                             dir=target.parent)), target)
    try:
        yield staged
        for path in staged.tmp.rglob("*"):
            if path.is_file():
                _fsync(path)
        os.chmod(staged.tmp, 0o777 & ~_umask())  # mkdtemp makes directories private
        staged.path = _publish(staged.tmp, target, numbered or keep)
        if staged.path != target and not numbered:
            raise TargetTaken(target, staged.path)
    finally:
        if staged.tmp.exists():
            shutil.rmtree(staged.tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """`staged_dir(target)`'s temporary directory: renamed to `target` (which must not exist)
    on success."""
    with staged_dir(target) as staged:
        yield staged.tmp


def _publish(tmp: Path, target: Path, numbered: bool) -> Path:
    """Rename `tmp` to `target` or, `numbered`, to the first of `target-2`, ... that is free:
    nothing there at all, not even an empty folder or a dangling symlink (`rename_new`)."""
    number = 1
    candidate = target
    while True:
        if rename_new(tmp, candidate):
            return candidate
        if not numbered:
            raise FileExistsError(f"{target} already exists")
        number += 1
        candidate = target.with_name(f"{target.name}-{number}")


def remove_leftovers(root: str | Path) -> list[Path]:
    """Delete the temporary files and directories that `atomic_path` and `atomic_dir` left
    under `root` when their process was killed mid-write; return what was deleted.

    Only call it when no other process can be writing under `root` (e.g. after claiming a run
    to resume it): a live writer's temporary file looks the same.
    """
    removed = []
    for path in sorted(Path(root).rglob(".*.tmp")):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink(missing_ok=True)
        else:
            continue  # inside a directory removed above
        removed.append(path)
    return removed


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and set it back
    os.umask(mask)
    return mask


def _jsonable(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
