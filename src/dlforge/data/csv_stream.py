"""Streaming a numeric CSV straight from the file (`data.source: csv` with `data.streaming:
true`): no shards, the table never whole in memory.

`open_csv(cfg)` makes two bounded passes: pandas reads the file in chunks of `CHUNK_ROWS`
(labels, split marks, a check that every feature column holds numbers or True/False, and
which hold True/False: those are read as booleans, as in memory, and those that also have
blank cells as True/False/NaN objects, categorical as in memory), and a binary pass
records the byte offset of every data line. The labels are then selected, split and curated
as in memory (`folder_stream.split_index`), and each split is a `CsvSplit` whose `take` reads
a batch's lines with `os.pread` and parses them with pandas, in the loader's worker processes.
Memory holds the labels and two offsets per row.
"""

from __future__ import annotations

import io
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.data.folder_stream import FileStream, split_index
from dlforge.data.sources.common import existing_path
from dlforge.data.sources.csv_source import (
    SPLIT_VALUES,
    columns_are,
    csv_header,
    no_rows,
    unreadable_csv,
)
from dlforge.data.sources.download import sha256_file
from dlforge.data.sources.infer import label_task, multi_column_task
from dlforge.errors import DataError

CHUNK_ROWS = 65_536
_TRUE_FALSE = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False,
               "false": False}  # what pandas reads as booleans


@dataclass(frozen=True)
class CsvSplit:
    """One split of a CSV: the byte range of each row's line and its label.

    Example:
        >>> split = open_csv(cfg, seed=0).split("train")  # doctest: +SKIP
        >>> frame, y = split.take(np.array([3, 0]))  # doctest: +SKIP
    """

    path: Path
    header: bytes
    columns: tuple[str, ...]  # the feature columns, in the table's order
    starts: np.ndarray
    ends: np.ndarray
    y: np.ndarray
    ids: np.ndarray  # row numbers in the file, from 0, as strings
    booleans: tuple[str, ...] = ()  # the feature columns holding True/False
    flags: tuple[str, ...] = ()  # those holding True/False and blanks: categorical, as in memory

    def __len__(self) -> int:
        return len(self.starts)

    def take(self, index: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """The feature columns (float64; bool for `booleans`; True, False or NaN objects for
        `flags`, as pandas reads the whole file) and labels of the rows at `index`, in that
        order."""
        index = np.asarray(index, dtype=np.int64)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            lines = [os.pread(fd, int(self.ends[k] - self.starts[k]), int(self.starts[k]))
                     for k in index.tolist()]
        finally:
            os.close(fd)
        text = self.header + b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
        dtypes = {c: bool if c in self.booleans else str if c in self.flags else np.float64
                  for c in self.columns}
        frame = pd.read_csv(io.BytesIO(text), usecols=list(self.columns), dtype=dtypes)
        for c in self.flags:  # objects in every batch, so each is categorical, as in memory
            frame[c] = frame[c].map(_TRUE_FALSE).astype(object)
        return frame[list(self.columns)], self.y[index]

    def chunks(self, size: int) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        """The split in file order, `size` rows at a time (a streaming pass)."""
        for start in range(0, len(self), size):
            yield self.take(np.arange(start, min(start + size, len(self))))

    def as_inputs(self, x: pd.DataFrame) -> pd.DataFrame:
        """Parsed rows are already the source's raw table."""
        return x


def open_csv(cfg: DataConfig, seed: int) -> FileStream:
    """Index the CSV at `data.path` and split it as `load_and_split` would, in bounded memory.

    Raises:
        DataError: a missing file or column, empty labels, a feature column that is not
            numeric, one holding True/False in some chunks and numbers in others, or quoted
            line breaks (rows that are not one line each).
    """
    path = existing_path(cfg, kind="CSV file")
    labels, split, features, (booleans, flags) = _scan(path, cfg)
    starts, ends, header = _line_offsets(path)
    if len(starts) != len(labels):
        raise DataError(f"data.path: {path.name} has {len(labels)} rows in {len(starts)} lines; "
                        f"quoted line breaks cannot be streamed: remove them, or set "
                        f"data.streaming: false")
    where = f"column {cfg.label_columns[0]!r} of {path.name}"
    y, task = (label_task(labels.iloc[:, 0].to_numpy(), cfg, where=where,
                          target_name=cfg.label_columns[0])
               if labels.shape[1] == 1 else multi_column_task(labels, cfg, where=path.name))
    ids = np.arange(len(y)).astype(str).astype(object)
    index = Dataset(x=np.arange(len(y)), y=y, task=task, modality="table", split=split, ids=ids,
                    provenance=Provenance(source="csv", files={str(path): sha256_file(path)},
                                          details={"rows": len(y), "streamed": True}))
    splits, task = split_index(index, cfg, seed)
    parts = {name: CsvSplit(path, header, features, starts[part.x], ends[part.x], part.y, part.ids,
                            booleans, flags) for name, part in splits.items()}
    return FileStream(parts, task, index.provenance, modality="table")


def _scan(path: Path, cfg: DataConfig) -> tuple[pd.DataFrame, np.ndarray | None, tuple[str, ...],
                                                tuple[tuple[str, ...], tuple[str, ...]]]:
    """Labels, split marks, the feature columns and those of them holding True/False (without
    and with blanks: `_true_false`), `CHUNK_ROWS` rows at a time."""
    columns = csv_header(path)
    used = [*cfg.label_columns, *([cfg.split_column] if cfg.split_column else [])]
    features = tuple(cfg.feature_columns or [c for c in columns if c not in used])
    missing = [c for c in (*used, *features) if c not in columns]
    if missing:
        raise DataError(f"data: column {missing[0]!r} not in {path.name}; {columns_are(columns)}")
    labels, marks, kinds = _chunks(path, cfg, features)
    frame = pd.concat(labels, ignore_index=True)
    empty = [c for c in frame.columns if frame[c].isna().any()]
    if empty:
        raise DataError(f"data.label_columns: column {empty[0]!r} of {path.name} has empty "
                        f"values; fill or drop those rows")
    split = None
    if cfg.split_column:
        values = pd.concat(marks, ignore_index=True).to_numpy(dtype=object)
        bad = sorted({v for v in values if v not in SPLIT_VALUES})
        if bad:
            raise DataError(f"data.split_column: column {cfg.split_column!r} of {path.name} has "
                            f"value {bad[0]!r}; allowed values are: {', '.join(SPLIT_VALUES)}")
        split = np.array([SPLIT_VALUES[v] for v in values], dtype=object)
    return frame, split, features, _true_false(kinds, path)


def _chunks(path: Path, cfg: DataConfig, features: tuple[str, ...]
            ) -> tuple[list[pd.DataFrame], list[pd.Series | None], dict[str, set[str]]]:
    """The label columns and split marks of every chunk, checking the features are numbers
    (or True/False), and the kinds (`_kind`) each feature column had in the chunks."""
    labels, marks, first_line = [], [], 2
    kinds: dict[str, set[str]] = {c: set() for c in features}
    try:
        for chunk in pd.read_csv(path, chunksize=CHUNK_ROWS):
            if chunk.empty:  # a header line alone still gives one chunk, without rows
                continue
            seen = {c: _kind(chunk[c]) for c in features}
            text = [c for c in features if seen[c] is None]
            if text:
                raise DataError(f"data: column {text[0]!r} of {path.name} is not numeric (lines "
                                f"{first_line}-{first_line + len(chunk) - 1}); a streamed CSV "
                                f"holds numeric features only: set data.streaming: false")
            for c in features:
                kinds[c].add(seen[c])
            labels.append(chunk[list(cfg.label_columns)])
            marks.append(chunk[cfg.split_column].astype(str) if cfg.split_column else None)
            first_line += len(chunk)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise unreadable_csv(path, exc) from None
    if not labels:
        raise no_rows(path)
    return labels, marks, kinds


def _kind(col: pd.Series) -> str | None:
    """What a chunk's column holds: "empty" (no values), "bool" (True/False), "flags"
    (True/False and blanks: objects), "number", or None (text)."""
    if col.isna().all():
        return "empty"
    if pd.api.types.is_bool_dtype(col):
        return "bool"
    if pd.api.types.is_numeric_dtype(col):
        return "number"
    if col.dtype == object and col.dropna().map(type).eq(bool).all():
        return "flags"
    return None


def _true_false(kinds: dict[str, set[str]], path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The True/False columns, decided for the whole file as pandas reads it in memory: those
    without a blank (boolean, numbers 1/0) and those with blanks (objects: categorical).

    Raises:
        DataError: a column true/false in some chunks and numeric in others.
    """
    values = {c: seen - {"empty"} for c, seen in kinds.items()}
    mixed = [c for c, seen in values.items() if "number" in seen and seen & {"bool", "flags"}]
    if mixed:
        raise DataError(f"data: column {mixed[0]!r} of {path.name} holds true/false in some rows "
                        f"and numbers in others; a streamed CSV column holds one or the other: "
                        f"write it as 1/0, or set data.streaming: false")
    true_false = [c for c, seen in values.items() if seen and seen <= {"bool", "flags"}]
    blanks = {c for c in true_false if kinds[c] & {"empty", "flags"}}
    return (tuple(c for c in true_false if c not in blanks),
            tuple(c for c in true_false if c in blanks))


def _line_offsets(path: Path) -> tuple[np.ndarray, np.ndarray, bytes]:
    """Byte start and end of every non-blank line after the header, and the header line (the
    first non-blank one, as pandas reads it)."""
    starts, ends = array("q"), array("q")  # 8 bytes a row, not a Python int each
    with path.open("rb") as f:
        header, position = b"", 0
        while not header.strip():
            header = f.readline()
            position += len(header)
            if not header:
                break
        for line in f:
            if line.strip():
                starts.append(position)
                ends.append(position + len(line))
            position += len(line)
    if not header.endswith(b"\n"):
        header += b"\n"
    return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), header
