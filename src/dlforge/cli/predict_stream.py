"""Read `dlforge predict` inputs in batches: image files, CSV (or JSON) rows or texts, never all at once.

Everything that can be checked cheaply (paths exist, file types, CSV headers) is checked when
the stream is opened, before any output is written; the batches themselves are read lazily,
so memory holds one batch of decoded images or CSV rows whatever the input size.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby, islice
from pathlib import Path
from typing import Any

import pandas as pd

from dlforge.data.preprocess.table import missing_columns
from dlforge.data.sources.csv_source import csv_header
from dlforge.data.sources.image_folder import EXTENSIONS
from dlforge.errors import DataError

IMAGE_SUFFIXES = set(EXTENSIONS)  # what training reads from an image folder
_CSV_ERRORS = (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError)
_BAD_LINE = "\x00dlforge: malformed line"  # stands in for every field of a malformed CSV line
NO_INPUT = ("give at least one INPUT (image files or folders, CSV files, or .json/.jsonl files) "
            "or --text")


@dataclass(frozen=True)
class BadRows:
    """A batch of CSV rows that could not be parsed (with --skip-bad): one message per row."""

    errors: list[str]


@dataclass(frozen=True)
class InputStream:
    """Batches of `(ids, raw inputs)` for a Predictor, read lazily.

    Attributes:
        batches: the batches, each at most `batch_size` inputs; iterate once.
        total: the number of inputs when it is known without reading them (image files,
            texts); None for CSV rows.
        unit: what an input is: "images", "rows" or "texts".
    """

    batches: Iterator[tuple[list[str], Any]]
    total: int | None
    unit: str


def open_inputs(predictor, inputs: list[str], texts: list[str], *, batch_size: int,
                skip_bad: bool = False) -> InputStream:
    """Check the inputs for `predictor`'s modality and return a lazy stream of batches.

    Ids: the file path for images, ``text[i]`` for --text values, ``row[i]`` for CSV or JSON
    rows (numbered across all the files, in the order given).

    Args:
        predictor: a `dlforge.registry.Predictor`.
        inputs: image files, folders of images, or CSV files; or .json/.jsonl files of
            inputs for any modality (`predict_json.JsonRows`: rows, texts or pixel arrays).
        texts: texts given with --text (text models).
        batch_size: inputs per batch (at least 1).
        skip_bad: a CSV line with more fields than the header becomes a `BadRows` batch (in
            its place, with its id) instead of stopping the stream with a DataError.

    Raises:
        DataError: a missing path, a file of the wrong type, an unreadable CSV header or a CSV
            without the columns the model needs.

    Example:
        >>> stream = open_inputs(predictor, ["photos/"], [], batch_size=64)  # doctest: +SKIP
        >>> for ids, batch in stream.batches:                                # doctest: +SKIP
        ...     records = predict_batch(predictor, ids, batch, top_k=None)  # cli/predict_cmds.py
    """
    assert batch_size >= 1, batch_size  # the CLI option has min=1
    modality = predictor.modality
    if texts:
        if modality != "text":
            raise DataError(f"--text: this model takes {modality} input, not text")
        ids = [f"text[{i}]" for i in range(len(texts))]
        return InputStream(_chunks(zip(ids, texts, strict=True), batch_size), len(texts), "texts")
    if not inputs:
        raise DataError(f"predict: {NO_INPUT}")
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.exists():
            raise DataError(f"input: {str(p)!r} does not exist")
    other = "image files or folders" if modality == "image" else "CSV files"
    if _all_json(paths, other):
        from dlforge.cli.predict_json import JsonRows

        reader = JsonRows(paths, predictor, skip_bad=skip_bad)
    elif modality == "image":
        files = image_files(paths)
        pairs = ((str(f), f) for f in files)
        return InputStream(_chunks(pairs, batch_size), len(files), "images")
    else:
        reader = CsvRows(paths, predictor, skip_bad=skip_bad)
    unit = {"image": "images", "text": "texts"}.get(modality, "rows")
    return InputStream(reader.batches(batch_size), None, unit)


def _all_json(paths: list[Path], other: str) -> bool:
    """Whether `paths` are .json/.jsonl files (read by `JsonRows`), refusing a mix with `other`.

    Example:
        >>> _all_json([Path("a.json"), Path("b.jsonl")], "CSV files"), _all_json([Path("a.csv")], "CSV files")
        (True, False)
    """
    from dlforge.cli.predict_json import JSON_SUFFIXES

    is_json = [p.suffix.lower() in JSON_SUFFIXES for p in paths]
    if any(is_json) and not all(is_json):
        raise DataError(f"input: {', '.join(map(str, paths))} mix JSON and other files; give "
                        f"{other} or JSON/JSONL files in one call, not both")
    return all(is_json)


def image_files(paths: list[Path]) -> list[Path]:
    """The image files among `paths`: files as given, folders searched recursively (sorted).

    Only the paths are listed here; the images are decoded batch by batch by the Predictor.
    """
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
        else:
            raise DataError(f"input: {str(p)!r} is not an image file ({', '.join(sorted(IMAGE_SUFFIXES))}), "
                            "a folder of them, or a .json/.jsonl file of pixel arrays")
    if not files:
        raise DataError(f"input: no image files found in {', '.join(map(str, paths))}")
    return files


def _chunks(pairs, size: int) -> Iterator[tuple[list[str], list[Any]]]:
    """`(ids, items)` batches of at most `size` from an iterator of `(id, item)` pairs."""
    pairs = iter(pairs)
    while chunk := list(islice(pairs, size)):
        ids, items = zip(*chunk, strict=True)
        yield list(ids), list(items)


class CsvRows:
    """Rows of one or more CSV files, read `batch_size` rows at a time with pandas.

    Categorical columns (and the text column) are read as strings: pandas would otherwise guess each chunk's dtype on its own, and a chunk
    holding only ``1`` and blanks would turn into floats (``"1.0"``), a category the model
    never saw, where the whole file read at once keeps ``"1"``.
    """

    def __init__(self, paths: list[Path], predictor, *, skip_bad: bool = False) -> None:
        self.paths = paths
        self.skip_bad = skip_bad
        self.text_column = predictor.text_column if predictor.modality == "text" else None
        if self.text_column is not None:
            self.columns, self.as_text = [self.text_column], [self.text_column]
        else:
            self.columns, self.as_text = _table_columns(predictor.bundle.preprocessor)
        for path in paths:
            self._check_header(path)

    def batches(self, batch_size: int) -> Iterator[tuple[list[str], Any]]:
        """`(ids, rows)` batches: a DataFrame of rows, or a list of texts for text models
        (or `BadRows` with --skip-bad)."""
        offset = 0
        for path in self.paths:
            read = self._read_tolerant if self.skip_bad else self._read
            for frame in read(path, batch_size):
                count = len(frame.errors) if isinstance(frame, BadRows) else len(frame)
                ids = [f"row[{offset + i}]" for i in range(count)]
                offset += count
                if isinstance(frame, BadRows):
                    yield ids, frame
                elif self.text_column is not None:
                    # The Predictor's own rule for missing texts, applied here per chunk.
                    yield ids, frame[self.text_column].fillna("").astype(str).tolist()
                else:  # rows numbered as their ids, so an error's "row N" is id row[N]
                    yield ids, frame.set_axis(pd.RangeIndex(offset - count, offset))

    def _check_header(self, path: Path) -> None:
        if path.suffix.lower() != ".csv":
            raise DataError(f"input: {str(path)!r} is not a CSV, JSON or JSONL file; this model "
                            "takes table or text rows")
        header = csv_header(path, field="input")  # a column named twice is refused, not renamed
        missing = [c for c in self.columns if c not in header]
        if self.text_column is not None and missing:
            raise DataError(f"input: {str(path)!r} has no text column {self.text_column!r}; columns are: "
                            f"{', '.join(map(str, header))}")
        if missing:
            raise DataError(f"input: {str(path)!r} has no {missing_columns(missing)} (the model "
                            f"was trained on columns {self.columns})")

    def _read(self, path: Path, batch_size: int) -> Iterator[pd.DataFrame]:
        dtype = dict.fromkeys(self.as_text, str)
        try:
            # No usecols: with it pandas quietly accepts rows with extra fields.
            with pd.read_csv(path, dtype=dtype, chunksize=batch_size) as reader:
                for frame in reader:
                    if len(frame):
                        yield frame
        except _CSV_ERRORS as exc:
            raise DataError(f"input: cannot read {str(path)!r} as CSV: {_reason(exc)}") from None


    def _read_tolerant(self, path: Path, batch_size: int) -> Iterator[pd.DataFrame | BadRows]:
        """Like `_read`, but a line with more fields than the header becomes a `BadRows` in its
        place. pandas' python engine only splits the lines here (as text, so nothing is guessed
        yet); each run of good rows is then parsed as `_read` parses it."""
        width = len(pd.read_csv(path, nrows=0).columns)
        errors: list[str] = []

        def bad_line(fields: list[str]) -> list[str]:
            errors.append(f"{path}: malformed CSV line with {len(fields)} fields, the header has {width}")
            return [_BAD_LINE] * width

        try:
            with pd.read_csv(path, dtype=str, na_filter=False, engine="python", on_bad_lines=bad_line,
                             chunksize=batch_size) as reader:
                for raw in reader:
                    for bad, run in groupby(range(len(raw)), key=lambda i: raw.iat[i, 0] == _BAD_LINE):
                        part = raw.iloc[list(run)]
                        yield BadRows([errors.pop(0) for _ in range(len(part))]) if bad else self._reparse(part)
        except _CSV_ERRORS as exc:
            raise DataError(f"input: cannot read {str(path)!r} as CSV: {_reason(exc)}") from None

    def _reparse(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Rows read as text, parsed again from CSV as `_read` would parse them."""
        text = raw.to_csv(index=False)
        return pd.read_csv(io.StringIO(text), dtype=dict.fromkeys(self.as_text, str))


def _table_columns(preprocessor) -> tuple[list[str], list[str]]:
    """(columns the table preprocessor reads, the categorical ones among them)."""
    numeric = [s["name"] for s in getattr(preprocessor, "numeric", [])]
    categorical = [s["name"] for s in getattr(preprocessor, "categorical", [])]
    return numeric + categorical, categorical


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
