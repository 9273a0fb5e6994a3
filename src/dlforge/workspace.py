"""Where a user's runs, store and artifacts live."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_WORKSPACE = "dlforge-workspace"


def resolve_workspace(path: str | Path | None = None, *, create: bool = True) -> Path:
    """The workspace directory: `path`, else $DLFORGE_WORKSPACE, else ./dlforge-workspace.

    The directory is created if missing, unless `create` is False (a check that only reads).
    """
    chosen = Path(path or os.environ.get("DLFORGE_WORKSPACE") or DEFAULT_WORKSPACE).expanduser()
    if create:
        chosen.mkdir(parents=True, exist_ok=True)
    return chosen.resolve()


def cache_dir(configured: str | Path | None = None) -> Path:
    """Download cache: `configured`, else $DLFORGE_CACHE, else ~/.cache/dlforge."""
    chosen = configured or os.environ.get("DLFORGE_CACHE") or Path.home() / ".cache" / "dlforge"
    return Path(chosen).expanduser()


def unused_dir(path: Path) -> Path:
    """`path`, or else the first of `path-2`, `path-3`, ... that does not exist: a command's
    default output directory, so that running the command again keeps the earlier output
    instead of refusing to overwrite a directory the user never named.

    Example:
        >>> unused_dir(Path("no-such-directory"))
        PosixPath('no-such-directory')
    """
    number = 2
    chosen = path
    while chosen.exists():
        chosen = path.with_name(f"{path.name}-{number}")
        number += 1
    return chosen
