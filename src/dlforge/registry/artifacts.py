"""Moving finished bundle directories into the artifacts folder, all or nothing."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from pathlib import Path


def move_into_place(src: Path, dest: Path) -> int:
    """Move directory `src` to `dest` with one rename, so readers never see part of it.

    A `dest` left by a process that died between moving its bundle and committing its row is
    an orphan (no row names it): it is set aside under ``.orphans/`` rather than deleted.
    When `src` is on another file system it is copied beside `dest` first, then renamed.

    Returns:
        The inode of the directory now at `dest`, so that `move_back` undoes only this move.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        orphans = dest.parent / ".orphans"
        orphans.mkdir(exist_ok=True)
        os.replace(dest, orphans / f"{dest.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(src, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        try:
            shutil.copytree(src, tmp, dirs_exist_ok=True)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(src, ignore_errors=True)
    return dest.stat().st_ino


def move_back(dest: Path, src: Path, inode: int) -> None:
    """Undo `move_into_place` after its transaction failed; best effort, never raises.

    Nothing is moved if `dest` is no longer the directory we put there (another process has
    since set it aside and claimed the number) or if `src` was recreated meanwhile.
    """
    try:
        if dest.stat().st_ino != inode or src.exists():
            return
        src.parent.mkdir(parents=True, exist_ok=True)
        os.replace(dest, src)
    except OSError:
        pass  # the bundle stays at dest: an orphan that the next registration sets aside
