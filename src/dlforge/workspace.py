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

