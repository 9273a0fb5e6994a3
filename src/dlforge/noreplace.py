"""Rename a directory to a name nobody holds, never replacing what is there.

``os.rename`` replaces an empty directory at the destination without a word, so a check
(``os.path.lexists``) then a rename leaves a gap in which another process's new empty folder
is replaced. Linux's ``renameat2(..., RENAME_NOREPLACE)`` closes it: the kernel refuses any
existing destination (an empty directory, a dangling symlink) with EEXIST. It is called
through ctypes where the C library has it (glibc 2.28+); elsewhere, or where the kernel or
the file system lacks the flag (ENOSYS, EINVAL), the check-then-rename is the fallback.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from pathlib import Path
from typing import Any

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
# The destination is taken: a file or directory there (EEXIST, ENOTEMPTY), or a
# non-directory such as a dangling symlink that a directory cannot replace (ENOTDIR).
TAKEN = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR)


def rename_new(src: str | Path, dst: str | Path) -> bool:
    """Rename `src` to `dst` if nothing is at `dst`; say whether it was renamed.

    Args:
        src: the directory (or file) to move.
        dst: its new name, in the same file system.

    Returns:
        True when renamed; False when `dst` exists in any form (a directory, empty or not, a
        file, a symlink, dangling or not), which is left as it is.

    Raises:
        OSError: any other failure of the rename (permissions, a missing parent ...).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "a").mkdir(); (root / "b").mkdir()
        >>> rename_new(root / "a", root / "b"), rename_new(root / "a", root / "c")
        (False, True)
    """
    try:
        if not _renamed_noreplace(src, dst):  # the system cannot: check, then rename
            if os.path.lexists(dst):
                return False
            os.rename(src, dst)
    except OSError as exc:
        if exc.errno in TAKEN:
            return False
        raise
    return True


def _renamed_noreplace(src: str | Path, dst: str | Path) -> bool:
    """``renameat2(src, dst, RENAME_NOREPLACE)``: True when done, False when this system has
    no such call or flag; an OSError for any failure of the call itself."""
    call = _renameat2()
    if call is None:
        return False
    if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):  # an older kernel, or a file system without it
        return False
    raise OSError(code, os.strerror(code), str(dst))


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
