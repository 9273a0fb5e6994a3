"""Write `dlforge predict` results as they come: CSV, a JSON array, JSON lines or a table.

A file is written beside its destination and renamed onto it at the end (dlforge.atomic), so
an error or Ctrl-C half way leaves no half-written file at the destination. CSV, JSON and
JSON lines stream chunk by chunk; a table needs every row for its column widths, so it buffers
(it is meant for small inputs on a terminal).
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from dlforge.cli import output
from dlforge.errors import ConfigError

FILE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
STDOUT_FORMATS = ("table", "json", "jsonl", "csv")


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """One prediction as flat columns: nested score dicts become score_<class> columns."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            flat[key] = ";".join(map(str, value))
        else:
            flat[key] = value
    return flat


def columns_for(task, *, with_error: bool = False) -> list[str]:
    """The CSV/table columns of `task`'s predictions, fixed before the first row is written.

    Multiclass rows carry only their top-k scores, so every class gets a ``scores_<class>``
    column (in class order) and the classes outside a row's top k stay empty.

    Args:
        task: the model's `TaskSpec`.
        with_error: add an ``error`` column (inputs skipped with --skip-bad).
    """
    names = list(task.class_names)
    by_kind = {
        "multiclass": ["label", *(f"scores_{n}" for n in names)],
        "binary": ["label", "score", "threshold"],
        "anomaly": ["label", "score", "threshold", "anomaly"],
        "multilabel": ["labels", *(f"scores_{n}" for n in names), *(f"thresholds_{n}" for n in names)],
        "regression": ["value"] if task.num_outputs == 1 else [f"values_{n}" for n in names],
    }
    return ["input", *by_kind[task.kind], *(["error"] if with_error else [])]


def output_format(path: Path | None, fmt: str | None) -> str:
    """The format to write: from the file suffix when there is a file, else `fmt` (default table).

    Raises:
        ConfigError: an --output that is a directory or under a file, an --output suffix or
            a --format that is not supported, or a --format that disagrees with the --output
            suffix.
    """
    if fmt is not None and fmt not in STDOUT_FORMATS:
        raise ConfigError(f"--format: must be one of {', '.join(STDOUT_FORMATS)} (got {fmt!r})")
    if path is None:
        return fmt or "table"
    output.check_file_target(path, "--output", "predictions.csv")
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise ConfigError(f"--output: {str(path)!r} must end in {', '.join(FILE_FORMATS)} "
                          f"(got {suffix or 'no suffix'!r})")
    if fmt is not None and fmt != FILE_FORMATS[suffix]:
        raise ConfigError(f"--format: {fmt} disagrees with --output {str(path)!r}, whose suffix "
                          f"writes {FILE_FORMATS[suffix]}; drop --format or make them agree")
    return FILE_FORMATS[suffix]


class Sink:
    """Receives prediction records chunk by chunk; `close` finishes the document."""

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Called once after the last chunk (not on error)."""


class CsvSink(Sink):
    """CSV with a header of fixed columns (`columns_for`); empty cells for absent values."""

    def __init__(self, fh: IO[str], columns: list[str]) -> None:
        # "\n" as pandas' to_csv writes it, not the csv module's default "\r\n"
        self.writer = csv.DictWriter(fh, fieldnames=columns, restval="", lineterminator="\n")
        self.writer.writeheader()

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        self.writer.writerows(flatten(r) for r in records)


class JsonArraySink(Sink):
    """One JSON array, written element by element, laid out as ``json.dumps(all, indent=2)``."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh
        self.count = 0

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        for record in records:
            text = json.dumps(record, indent=2, default=float).replace("\n", "\n  ")
            self.fh.write(("[\n  " if self.count == 0 else ",\n  ") + text)
            self.count += 1

    def close(self) -> None:
        self.fh.write("\n]\n" if self.count else "[]\n")


class JsonLinesSink(Sink):
    """One compact JSON object per line."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        self.fh.writelines(json.dumps(r, default=float) + "\n" for r in records)


class TableSink(Sink):
    """A rich table on stdout; rows are kept until `close` (small inputs only)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.rows: list[list[Any]] = []

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        for record in records:
            flat = flatten(record)
            self.rows.append([flat.get(c, "") for c in self.columns])

    def close(self) -> None:
        output.table(None, self.columns, self.rows)


@contextlib.contextmanager
def open_sink(path: Path | None, fmt: str, columns: list[str]) -> Iterator[Sink]:
    """A sink writing `fmt` to `path` atomically, or to stdout when `path` is None.

    On an exception in the block the file at `path` is left as it was (absent or the old one).
    """
    if path is None:
        sink = _make_sink(_Stdout(), fmt, columns)
        yield sink
        sink.close()
        return
    from dlforge.atomic import atomic_open

    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        sink = _make_sink(fh, fmt, columns)
        yield sink
        sink.close()


def _make_sink(fh: IO[str], fmt: str, columns: list[str]) -> Sink:
    if fmt == "csv":
        return CsvSink(fh, columns)
    if fmt == "json":
        return JsonArraySink(fh)
    if fmt == "jsonl":
        return JsonLinesSink(fh)
    assert fmt == "table", fmt
    return TableSink(columns)


class _Stdout:
    """Writes to whatever `sys.stdout` is at the time (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def writelines(self, lines) -> None:
        sys.stdout.writelines(lines)
