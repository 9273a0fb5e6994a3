"""Where a user's runs, store and artifacts live."""

from __future__ import annotations

import os
from pathlib import Path

from dlforge.errors import ConfigError, clipped

DEFAULT_WORKSPACE = "dlforge-workspace"


def resolve_workspace(path: str | Path | None = None, *, create: bool = True) -> Path:
    """The workspace directory: `path`, else $DLFORGE_WORKSPACE, else ./dlforge-workspace.

    The directory is created if missing, unless `create` is False (a check that only reads).

    Raises:
        ConfigError: the path is a file (or under one), cannot be looked up (a name too long
            for the file system, an unknown ``~user``) or cannot be created.
    """
    given = path or os.environ.get("DLFORGE_WORKSPACE") or DEFAULT_WORKSPACE
    try:
        chosen = Path(given).expanduser()
        is_file = chosen.exists() and not chosen.is_dir()
    except (OSError, RuntimeError) as exc:  # RuntimeError: '~nouser/...'
        raise _unusable(given, f"cannot be looked up ({getattr(exc, 'strerror', None) or exc})") from None
    if is_file:
        raise _unusable(given, "is a file, not a directory")
    if create:
        try:
            chosen.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unusable(given, f"cannot be created ({exc.strerror})") from None
    return chosen.resolve()


def _unusable(given: str | Path, what: str) -> ConfigError:
    return ConfigError(f"workspace: {clipped(str(given), 120)!r} {what}; give --workspace (or "
                       f"$DLFORGE_WORKSPACE) a directory, or a path where one can be made")


def cache_dir(configured: str | Path | None = None) -> Path:
    """Download cache: `configured`, else $DLFORGE_CACHE, else ~/.cache/dlforge."""
    chosen = configured or os.environ.get("DLFORGE_CACHE") or Path.home() / ".cache" / "dlforge"
    return Path(chosen).expanduser()

