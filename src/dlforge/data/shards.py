"""Sharded array files: a split data set on disk as `.npy` shards plus a JSON manifest.

`dlforge data shard CONFIG --output DIR` writes the config's data AFTER the split (and curation)
as `DIR/<split>-<k>.x.npy` / `.y.npy` shards of at most `shard_size` samples and
`DIR/manifest.json`: the task, modality, table columns, sample shape and dtypes, the count of
every split and shard, and the sha256 of every file. Raw samples are stored (uint8 images stay
uint8); preprocessing is fitted later, on the training split, like for any other source.

`ShardSet.open(dir)` checks the manifest and that every shard exists with its recorded size
(`verify=True` also re-hashes every file) before anything is trained; a missing or corrupt
shard is one `DataError` line naming the file. `ShardSplit.take(index)` reads the samples at
global positions with one positioned read per row (one read for consecutive rows), so only the
rows asked for are ever in memory (no memory map whose touched pages would count).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dlforge.atomic import check_absent, staged_dir, write_json
from dlforge.data.dataset import Dataset, Splits, TaskSpec
from dlforge.errors import ConfigError, DataError

if TYPE_CHECKING:
    from dlforge.config.schema import DataConfig

_NO_TEXTS = "texts cannot be sharded, only images and numeric tables"
_NUMERIC_ONLY = "shards hold numeric tables only"

FORMAT = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
DEFAULT_SHARD_SIZE = 4096


@dataclass(frozen=True)
class Shard:
    """One shard file pair: `count` samples starting at global position `start` of its split."""

    x_file: str
    y_file: str
    start: int
    count: int


@dataclass(frozen=True)
class ShardSplit:
    """The shards of one split; reads samples by their global position in the split.

    Example:
        >>> ShardSet.open("shards").split("train").take(np.array([5, 0]))  # doctest: +SKIP
    """

    root: Path
    name: str
    shards: tuple[Shard, ...]
    columns: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return sum(s.count for s in self.shards)

    @property
    def starts(self) -> np.ndarray:
        return np.array([s.start for s in self.shards], dtype=np.int64)

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw `(x, y)` of the samples at `index` (global positions), in that order."""
        index = np.asarray(index, dtype=np.int64)
        which = np.searchsorted(self.starts, index, side="right") - 1
        parts_x, parts_y, order = [], [], [np.zeros(0, dtype=np.int64)]
        for k in np.unique(which) if len(index) else [0]:  # no rows: an empty read of shard 0
            at = np.flatnonzero(which == k)
            shard, rows = self.shards[k], index[at] - self.shards[k].start
            parts_x.append(read_rows(self.root / shard.x_file, rows))
            parts_y.append(read_rows(self.root / shard.y_file, rows))
            order.append(at)
        back = np.argsort(np.concatenate(order), kind="stable")
        return np.concatenate(parts_x)[back], np.concatenate(parts_y)[back]

    def chunks(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The split in stored order, `size` samples at a time (a streaming pass)."""
        for start in range(0, len(self), size):
            yield self.take(np.arange(start, min(start + size, len(self))))

    def as_inputs(self, x: np.ndarray) -> np.ndarray | pd.DataFrame:
        """Raw rows as a source gives them: tables as a DataFrame of the stored columns."""
        return x if self.columns is None else pd.DataFrame(x, columns=list(self.columns))


@dataclass(frozen=True)
class ShardSet:
    """A manifest and its splits."""

    root: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, root: str | Path, *, verify: bool = False) -> ShardSet:
        """Read `root/manifest.json` and check every shard file is there with its size.

        Args:
            root: the directory `dlforge data shard` wrote.
            verify: also recompute every file's sha256 (reads everything once).

        Raises:
            DataError: no manifest, an unknown format, or a missing, resized or (with
                `verify`) changed shard; one line per problem naming the file.
        """
        root = Path(root)
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except FileNotFoundError:
            raise DataError(f"data.path: {str(root)!r} has no {MANIFEST}; write one with "
                            f"`dlforge data shard CONFIG --output {root}`") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"data.path: {root / MANIFEST} is not readable JSON ({exc})") from None
        if manifest.get("format") != FORMAT:
            raise DataError(f"data.path: {root / MANIFEST} has format {manifest.get('format')!r}; "
                            f"this dlforge reads format {FORMAT}. Write the shards again.")
        problems = [p for entry in _files(manifest) for p in _check_file(root, entry, verify)]
        if problems:
            raise DataError("\n".join(problems))
        return cls(root, manifest)

    @property
    def task(self) -> TaskSpec:
        return TaskSpec.from_dict(self.manifest["task"])

    @property
    def modality(self) -> str:
        return self.manifest["modality"]

    @property
    def decoded_bytes(self) -> int:
        """Bytes of every split's raw samples in memory (what loading them all would take)."""
        return int(self.manifest["decoded_bytes"])

    def checksums(self) -> dict[str, str]:
        """`{path: sha256}` of every shard file, as the manifest records them."""
        return {str(self.root / e["file"]): e["sha256"] for e in _files(self.manifest)}

    def split(self, name: str) -> ShardSplit:
        entries, shards, start = self.manifest["splits"][name]["shards"], [], 0
        for e in entries:
            shards.append(Shard(e["x"]["file"], e["y"]["file"], start, e["count"]))
            start += e["count"]
        columns = self.manifest.get("columns")
        return ShardSplit(self.root, name, tuple(shards), None if columns is None else tuple(columns))


def read_rows(path: Path, rows: np.ndarray) -> np.ndarray:
    """Rows `rows` of the `.npy` file at `path`, read with `os.pread` (no memory map)."""
    offset, dtype, shape = _header(str(path))
    size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    out = np.empty((len(rows), *shape), dtype=dtype)
    if not len(rows):
        return out
    flat = out.reshape(len(rows), -1).view(np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        if np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
            flat[:] = np.frombuffer(os.pread(fd, size * len(rows), offset + int(rows[0]) * size),
                                    np.uint8).reshape(len(rows), -1)
        else:
            for i, row in enumerate(rows.tolist()):
                flat[i] = np.frombuffer(os.pread(fd, size, offset + row * size), np.uint8)
    finally:
        os.close(fd)
    return out


@functools.lru_cache(maxsize=4096)
def _header(path: str) -> tuple[int, np.dtype, tuple[int, ...]]:
    """(data offset, dtype, shape of one row) of a C-ordered `.npy` file, read once."""
    fmt = np.lib.format
    with open(path, "rb") as fh:
        read = fmt.read_array_header_1_0 if fmt.read_magic(fh) == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        if fortran:  # write_shards writes C order; anything else was not written by it
            raise DataError(f"data.path: shard {Path(path).name} is not in C order; write the shards again")
        return fh.tell(), dtype, tuple(shape[1:])


def write_shards(splits: Splits, out: str | Path, *, shard_size: int = DEFAULT_SHARD_SIZE,
                 source: dict[str, Any] | None = None, keep: bool = False) -> dict[str, Any]:
    """Write `splits` as shards and a manifest into the new directory `out`, atomically.

    Args:
        splits: the split data (images or numeric tables).
        out: a directory that must not exist yet.
        shard_size: samples per shard file (the last one of a split may hold fewer).
        source: what the data came from, recorded in the manifest.
        keep: the caller found `out` absent before its work began (`dlforge data shard
            --output`): an `out` there now, or made while the shards are written, was made
            meanwhile by another process; the shards go to `out-2`, ... and
            `atomic.TargetTaken` names it, instead of being deleted.

    Returns:
        The manifest written.

    Raises:
        ConfigError: `out` exists (not `keep`; `atomic.check_absent`).
        DataError: a text data set, or a table with non-numeric columns.
        FileExistsError: `out` was made while the shards were written (not `keep`).
        TargetTaken: `out` was made after the caller's check (`keep`); the shards are kept.

    Example:
        >>> write_shards(splits, "shards", shard_size=512)["splits"]["train"]["count"]  # doctest: +SKIP
        1257
    """
    out, train = Path(out), splits.train
    if not keep:
        check_absent(out, "--output")
    columns = _columns(train)
    first = _raw(train.x)
    manifest: dict[str, Any] = {
        "format": FORMAT, "modality": train.modality, "task": train.task.to_dict(),
        "columns": columns, "source": source or {}, "shard_size": shard_size,
        "x": {"dtype": str(first.dtype), "shape": list(first.shape[1:])},
        "y": {"dtype": str(train.y.dtype), "shape": list(train.y.shape[1:])}, "splits": {},
    }
    with staged_dir(out, keep=keep) as staged:
        tmp = staged.tmp
        for name, part in splits.items():
            manifest["splits"][name] = _write_split(tmp, name, part, shard_size)
        manifest["decoded_bytes"] = sum(
            s["count"] * (first[:1].nbytes + train.y[:1].nbytes) for s in manifest["splits"].values())
        write_json(tmp / MANIFEST, manifest)
    return manifest


def _write_split(root: Path, name: str, part: Dataset, shard_size: int) -> dict[str, Any]:
    x, entries = _raw(part.x), []
    for k, start in enumerate(range(0, max(len(part), 1), shard_size)):  # an empty split: one empty shard
        rows = slice(start, start + shard_size)
        files = {}
        for kind, values in (("x", x[rows]), ("y", part.y[rows])):
            path = root / f"{name}-{k:05d}.{kind}.npy"
            np.save(path, np.ascontiguousarray(values), allow_pickle=False)
            files[kind] = {"file": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}
        entries.append({"count": len(part.y[rows]), **files})
    return {"count": len(part), "shards": entries}


def check_shardable(data: DataConfig) -> None:
    """Refuse, from the config alone, data that `write_shards` would refuse once loaded: texts
    (the imdb source, a CSV's `text_column`) and declared categorical columns; nothing is read.

    Raises:
        ConfigError: one line naming the key and its value.

    Example:
        >>> from dlforge.config.schema import DataConfig
        >>> check_shardable(DataConfig(source="csv", path="t.csv", text_column="review"))
        Traceback (most recent call last):
        ...
        dlforge.errors.ConfigError: data.text_column: texts cannot be sharded, only images and numeric tables (got 'review'); train on them in memory
    """
    for key, value in (("source", "imdb" if data.source == "imdb" else None),
                       ("text_column", data.text_column)):
        if value:
            raise ConfigError(f"data.{key}: {_NO_TEXTS} (got {value!r}); train on them in memory")
    if data.categorical_columns:
        raise ConfigError(f"data.categorical_columns: {_NUMERIC_ONLY} (got "
                          f"{data.categorical_columns!r}); encode them as numbers, or train in memory")


def _columns(part: Dataset) -> list[str] | None:
    if part.modality == "text":
        raise DataError(f"data: {_NO_TEXTS}; train on them in memory")
    if not isinstance(part.x, pd.DataFrame):
        return None
    odd = [str(c) for c in part.x.columns if not pd.api.types.is_numeric_dtype(part.x[c])]
    if odd:
        raise DataError(f"data: column(s) {', '.join(odd)} are not numeric; {_NUMERIC_ONLY} "
                        f"(encode them as numbers, or train in memory)")
    return [str(c) for c in part.x.columns]


def _raw(x: np.ndarray | pd.DataFrame) -> np.ndarray:
    return x.to_numpy(dtype=np.float64) if isinstance(x, pd.DataFrame) else np.asarray(x)


def _files(manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for split in SPLITS:
        for entry in manifest["splits"][split]["shards"]:
            yield entry["x"]
            yield entry["y"]


def _check_file(root: Path, entry: dict[str, Any], verify: bool) -> list[str]:
    path = root / entry["file"]
    if not path.is_file():
        return [f"data.path: shard {entry['file']} is missing from {root}; write the shards again"]
    if path.stat().st_size != entry["bytes"]:
        return [f"data.path: shard {entry['file']} has {path.stat().st_size} bytes, the manifest "
                f"says {entry['bytes']}; it is corrupt, write the shards again"]
    if verify and _sha256(path) != entry["sha256"]:
        return [f"data.path: shard {entry['file']} does not match its sha256 in the manifest; "
                f"it is corrupt, write the shards again"]
    return []


def _sha256(path: Path) -> str:
    # Imported here: the sources package imports this module (the `shards` source).
    from dlforge.data.sources.download import sha256_file

    return sha256_file(path)
