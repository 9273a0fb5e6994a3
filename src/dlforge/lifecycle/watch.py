"""`dlforge update --watch DIR`: fold new files into a model as they arrive, in bounded batches.

New files are image files in class subfolders (``DIR/<class>/<file>``, as an image folder
source reads them) or ``.csv`` files of rows (as the csv source reads them). Every
`update.watch.poll_seconds` the directory is listed; once `min_files` new files are there,
up to `batch_size` of them (oldest first) are copied into a batch folder of the workspace (the
update's run config points at it, so the gate and `dlforge evaluate` can rebuild its splits
later) and folded in by one update, a candidate through the gate.

A state file records every batch: its files, and what the update made of them. SIGINT or
SIGTERM stop the watch between batches: a batch in progress when the signal arrives is
finished and recorded first, so no batch is lost or folded in twice.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dlforge.atomic import write_json
from dlforge.config.update_schema import WatchConfig
from dlforge.data.sources.image_folder import EXTENSIONS
from dlforge.errors import ConfigError, DataError, DlforgeError

IMAGES, ROWS = "image_folder", "csv"
STEP_S = 0.1  # how often a waiting watch looks at its stop flag


@dataclass
class WatchState:
    """The batches folded in so far (persisted as JSON after each batch)."""

    path: Path
    batches: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> WatchState:
        """The state saved at `path` (empty when there is none).

        Raises:
            DataError: the file is not a watch state.
        """
        if not path.is_file():
            return cls(path)
        try:
            return cls(path, list(json.loads(path.read_text(encoding="utf-8"))["batches"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"--watch: {path} is not a watch state file ({exc}); move it away "
                            f"to start over (every file in the folder is then new)") from None

    @property
    def done(self) -> set[str]:
        """Files (relative to the watched folder) already in a batch."""
        return {f for batch in self.batches for f in batch["files"]}

    def record(self, files: list[str], outcome: str) -> None:
        """Add a finished batch and save the state atomically."""
        self.batches.append({"batch": len(self.batches) + 1, "files": files, "outcome": outcome})
        write_json(self.path, {"batches": self.batches})


def pending(directory: Path, kind: str, done: set[str]) -> list[str]:
    """New files of `directory` (relative paths), oldest first (then by name)."""
    if kind == IMAGES:
        files = [f for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".")
                 for f in d.iterdir() if f.is_file() and f.suffix.lower() in EXTENSIONS]
    else:
        files = [f for f in directory.iterdir() if f.is_file() and f.suffix.lower() == ".csv"]
    new = [f for f in files if str(f.relative_to(directory)) not in done]
    return [str(f.relative_to(directory)) for f in sorted(new, key=lambda f: (f.stat().st_mtime, str(f)))]


def materialise(directory: Path, files: list[str], dest: Path, kind: str) -> Path:
    """Copy a batch's files to `dest` as one data source: an image folder, or one CSV of all
    the files' rows. Returns the path an update's `--data` takes."""
    if dest.exists():  # left by a process killed while copying: this batch was not recorded
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if kind == IMAGES:
        for name in files:
            target = dest / name
            target.parent.mkdir(exist_ok=True)
            shutil.copy2(directory / name, target)
        return dest
    rows = pd.concat([pd.read_csv(directory / name) for name in files], ignore_index=True)
    rows.to_csv(dest / "rows.csv", index=False)
    return dest / "rows.csv"


class StopFlag:
    """Set by SIGINT or SIGTERM while `catching()`; the watch stops at its next check."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    @contextlib.contextmanager
    def catching(self) -> Iterator[StopFlag]:
        """Turn SIGINT and SIGTERM into this flag for the block (handlers restored after)."""
        def handler(signum: int, frame: Any) -> None:
            self.signal = signum

        before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in before.items():
                signal.signal(s, h)


def watch(directory: Path, kind: str, fold: Callable[[Path], str], cfg: WatchConfig, *,
          state: WatchState, batches: Path, echo: Callable[[str], None], stop: StopFlag,
          max_batches: int | None = None) -> int:
    """Fold new files of `directory` in, batch by batch, until `stop` is set.

    Args:
        directory: the watched folder.
        kind: `IMAGES` or `ROWS`.
        fold: runs one update on a batch's data path; returns a one-line outcome (or raises
            a `DlforgeError`, recorded as the batch's outcome: its files are not retried). A
            `ConfigError` is the watch's, not the batch's: it stops the watch with the batch
            unrecorded, so its files are folded in once the config is fixed.
        cfg: batch size, polling interval, fewest files per batch.
        state: the batches folded in so far; saved after each batch.
        batches: where batch folders are made.
        echo: prints one progress line per batch.
        stop: the watch stops when it is set (checked between batches and while waiting).
        max_batches: stop after this many batches (None: until stopped).

    Returns:
        The number of batches folded in by this call.

    Raises:
        ConfigError: what `fold` raised for a mistake of the update's config.
    """
    count = 0
    while not stop and (max_batches is None or count < max_batches):
        new = pending(directory, kind, state.done)
        if len(new) < cfg.min_files:
            _wait(cfg.poll_seconds, stop)
            continue
        files = new[:cfg.batch_size]
        number = len(state.batches) + 1
        path = materialise(directory, files, batches / f"batch-{number:04d}", kind)
        try:
            outcome = fold(path)
        except ConfigError:
            raise
        except DlforgeError as exc:
            outcome = f"error: {str(exc).splitlines()[0]}"
        state.record(files, outcome)
        echo(f"batch {number}: {len(files)} files -> {outcome}")
        count += 1
    return count


def _wait(seconds: float, stop: StopFlag) -> None:
    deadline = time.monotonic() + seconds
    while not stop and time.monotonic() < deadline:
        time.sleep(min(STEP_S, max(0.0, deadline - time.monotonic())))
