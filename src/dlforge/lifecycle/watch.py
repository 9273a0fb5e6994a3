"""`dlforge update --watch DIR`: fold new files into a model as they arrive, in bounded batches.

New files are image files in class subfolders (``DIR/<class>/<file>``, as an image folder
source reads them) or ``.csv`` files of rows (as the csv source reads them). Every
`update.watch.poll_seconds` the directory is listed; once `min_files` new files are there,
up to `batch_size` of them (oldest first) are copied into a batch folder of the workspace (the
update's run config points at it, so the gate and `dlforge evaluate` can rebuild its splits
later) and folded in by one update, a candidate through the gate. A file is taken only once
its size and modification time did not change for one poll, so a file still being copied is
left for a later poll.

A state file records every batch: its files, and what the update made of them. A batch that
failed (an unreadable file, data the update refuses) is listed apart under ``failed``: its
files are reported, not retried, until `dlforge update --watch DIR --retry-failed` (or removing
them from the state file) puts them back. SIGINT or SIGTERM stop the watch between batches: a
batch in progress when the signal arrives is finished and recorded first. A process killed
outright (SIGKILL, power loss) between registering a batch's version and recording the batch
trains that batch again at the next start (a second version of the same files); a batch is
never lost.
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
from dlforge.data.sources.image_folder import class_images
from dlforge.errors import ConfigError, DataError, DlforgeError

IMAGES, ROWS = "image_folder", "csv"
STEP_S = 0.1  # how often a waiting watch looks at its stop flag


@dataclass
class WatchState:
    """The batches folded in so far (persisted as JSON after each batch)."""

    path: Path
    batches: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    retried: list[dict[str, Any]] = field(default_factory=list)  # failed before, files pending

    @classmethod
    def load(cls, path: Path) -> WatchState:
        """The state saved at `path` (empty when there is none).

        Raises:
            DataError: the file is not a watch state.
        """
        if not path.is_file():
            return cls(path)
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, list(saved["batches"]), list(saved.get("failed", [])),
                       list(saved.get("retried", [])))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"--watch: {path} is not a watch state file ({exc}); move it away "
                            f"to start over (every file in the folder is then new)") from None

    @property
    def done(self) -> set[str]:
        """Files (relative to the watched folder) already in a batch, failed ones included
        (they wait for `retry_failed`)."""
        return {f for batch in self.batches + self.failed for f in batch["files"]}

    @property
    def next_number(self) -> int:
        """The number of the next batch (failed and retried batches keep theirs, and their
        folders: a version may have been registered from one before it failed)."""
        return 1 + max((b["batch"] for b in self.batches + self.failed + self.retried), default=0)

    def record(self, files: list[str], outcome: str, *, failed: bool = False) -> None:
        """Add a finished batch (to `failed` when it failed) and save the state atomically."""
        entry = {"batch": self.next_number, "files": files, "outcome": outcome}
        (self.failed if failed else self.batches).append(entry)
        self._save()

    def retry_failed(self) -> list[str]:
        """Move the failed batches to `retried`, so that their files are pending again;
        returns those files."""
        files = [f for batch in self.failed for f in batch["files"]]
        if self.failed:
            self.retried, self.failed = self.retried + self.failed, []
            self._save()
        return files

    def _save(self) -> None:
        write_json(self.path, {"batches": self.batches, "failed": self.failed,
                               "retried": self.retried})


def pending(directory: Path, kind: str, done: set[str]) -> list[str]:
    """New files of `directory` (relative paths), oldest first (then by name)."""
    return list(signatures(directory, kind, done))


def signatures(directory: Path, kind: str, done: set[str]) -> dict[str, tuple[int, int]]:
    """New files of `directory` with their (size, mtime in ns), oldest first (then by name)."""
    if kind == IMAGES:
        files = [f for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".")
                 for f in class_images(d)]
    else:
        files = [f for f in directory.iterdir() if f.is_file() and f.suffix.lower() == ".csv"]
    stats = {str(f.relative_to(directory)): f.stat() for f in files}
    new = sorted((s.st_mtime_ns, name) for name, s in stats.items() if name not in done)
    return {name: (stats[name].st_size, stats[name].st_mtime_ns) for _, name in new}


def stable(now: dict[str, tuple[int, int]], before: dict[str, tuple[int, int]]) -> list[str]:
    """The files of `now` whose size and mtime are those of the poll before (in `now`'s order):
    a file still being written is left for a later poll."""
    return [name for name, sig in now.items() if before.get(name) == sig]


def materialise(directory: Path, files: list[str], dest: Path, kind: str) -> Path:
    """Copy a batch's files to `dest` as one data source: an image folder, or one CSV of all
    the files' rows. Returns the path an update's `--data` takes.

    Raises:
        DataError: a CSV file that is empty or not CSV (naming it).
    """
    if dest.exists():  # left by a process killed while copying: this batch was not recorded
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if kind == IMAGES:
        for name in files:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(directory / name, target)
        return dest
    rows = pd.concat([_read_rows(directory / name) for name in files], ignore_index=True)
    rows.to_csv(dest / "rows.csv", index=False)
    return dest / "rows.csv"


def _read_rows(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"--watch: {path} is not a readable CSV file ({first}); fix or remove it, "
                        f"then retry its batch with --retry-failed") from None


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
            a `DlforgeError`: the batch is recorded as failed, its files are not retried). A
            `ConfigError` is the watch's, not the batch's: it stops the watch with the batch
            unrecorded, so its files are folded in once the config is fixed.
        cfg: batch size, polling interval, fewest files per batch (of files unchanged since
            the poll before).
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
    count, before = 0, {}
    while not stop and (max_batches is None or count < max_batches):
        now = signatures(directory, kind, state.done)
        ready, before = stable(now, before), now
        if len(ready) < cfg.min_files:
            _wait(cfg.poll_seconds, stop)
            continue
        files, number = ready[:cfg.batch_size], state.next_number
        outcome, failed = _fold(directory, files, batches / f"batch-{number:04d}", kind, fold)
        state.record(files, outcome, failed=failed)
        echo(f"batch {number}: {len(files)} files -> {outcome}")
        count += 1
    return count


def _fold(directory: Path, files: list[str], dest: Path, kind: str,
          fold: Callable[[Path], str]) -> tuple[str, bool]:
    """(outcome, failed) of one batch; a `ConfigError` is raised (the batch stays pending)."""
    try:
        return fold(materialise(directory, files, dest, kind)), False
    except ConfigError:
        raise
    except DlforgeError as exc:
        return f"error: {str(exc).splitlines()[0]}", True


def _wait(seconds: float, stop: StopFlag) -> None:
    deadline = time.monotonic() + seconds
    while not stop and time.monotonic() < deadline:
        time.sleep(min(STEP_S, max(0.0, deadline - time.monotonic())))
