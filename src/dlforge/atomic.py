"""Atomic writes: write beside the target, fsync, then rename, so a crash never leaves half a file.

Every checkpoint, bundle file, report and download goes through these helpers.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dlforge.errors import ConfigError, DlforgeError, clipped


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


def check_absent(path: str | Path, option: str) -> None:
    """Refuse an output folder the user named that cannot be created, before any work.

    Args:
        path: the folder to create.
        option: the option or key that named it (``--output``).

    Raises:
        ConfigError: anything is at `path` (a dangling symlink too: it cannot be written), a
            file is among its parents, or the system cannot look it up (a name too long):
            refused before anything ran, as a usage error (the CLI's exit 2).

    Example:
        >>> check_absent(Path(tempfile.gettempdir()), "--output")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        dlforge.errors.ConfigError: --output: ... already exists; remove it or choose another directory
    """
    path = Path(path)
    fix = "give the path of a directory to create"
    blocker = first_existing(path, option, fix)
    if os.path.lexists(path):
        raise ConfigError(f"{option}: {path} already exists; remove it or choose another directory")
    if blocker is not None and not blocker.is_dir():
        raise ConfigError(f"{option}: {str(path)!r} lies under {str(blocker)!r}, a file; {fix}")


def first_existing(path: Path, option: str, fix: str) -> Path | None:
    """The first of `path` and its parents that exists, or None.

    Raises:
        ConfigError: the system cannot look one up (a name too long for the file system, no
            permission to look), naming `option` and the user's path, then `fix`.
    """
    try:
        return next((p for p in (path, *path.parents) if p.exists()), None)
    except OSError as exc:
        raise ConfigError(f"{option}: {clipped(str(path), 120)!r} cannot be looked up "
                          f"({exc.strerror or type(exc).__name__}); {fix}") from None


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


# Renaming a directory to a name nobody holds, never replacing what is there: os.rename
# replaces an empty directory at the destination without a word, so a check (lexists) then a
# rename leaves a gap in which another process's new empty folder is replaced. Linux's
# renameat2(..., RENAME_NOREPLACE) closes it: the kernel refuses any existing destination (an
# empty directory, a dangling symlink) with EEXIST. It is called through ctypes where the C
# library has it (glibc 2.28+). Where the system cannot do it (no such call, ENOSYS on an
# older kernel, EINVAL or EOPNOTSUPP on a file system without the flag, EPERM from a seccomp
# filter) the check-then-rename runs instead; any other errno is a real error (a missing
# source, no permission), raised naming both paths.
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_CANNOT = (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM)
# Errors of os.rename that mean the destination appeared after the check (a non-empty
# directory, or a non-directory such as a dangling symlink that a directory cannot replace),
# when something is indeed there: the same errnos also mean a path component is not a
# directory, which is an error.
_TAKEN = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR)


def rename_new(src: str | Path, dst: str | Path) -> bool:
    """Rename `src` to `dst` if nothing is at `dst`; say whether it was renamed.

    Args:
        src: the directory (or file) to move.
        dst: its new name, in the same file system.

    Returns:
        True when renamed; False when `dst` exists in any form (a directory, empty or not, a
        file, a symlink, dangling or not), which is left as it is.

    Raises:
        OSError: any other failure of the rename (permissions, a missing parent, a parent
            that is not a directory ...), naming `src` and `dst`.

    Example:
        >>> with tempfile.TemporaryDirectory() as name:
        ...     root = Path(name); (root / "a").mkdir(); (root / "b").mkdir()
        ...     print(rename_new(root / "a", root / "b"), rename_new(root / "a", root / "c"))
        False True
    """
    code = _rename_noreplace(src, dst)
    if code in (0, errno.EEXIST):
        return code == 0
    if code is not None and code not in _CANNOT:
        raise OSError(code, os.strerror(code), str(src), None, str(dst))
    if os.path.lexists(dst):  # the system cannot: check, then rename
        return False
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno in _TAKEN and os.path.lexists(dst):  # made since the check
            return False
        raise
    return True


def _rename_noreplace(src: str | Path, dst: str | Path) -> int | None:
    """``renameat2(src, dst, RENAME_NOREPLACE)``: 0 when done, the call's errno when it
    failed, None when this C library has no such call."""
    call = _renameat2()
    if call is None:
        return None
    if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
        return 0
    return ctypes.get_errno()


@functools.cache
def _renameat2() -> Any:
    """The C library's `renameat2`, or None (not Linux/glibc 2.28+, or no C library to open)."""
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):  # TypeError: Windows cannot open CDLL(None)
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


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
