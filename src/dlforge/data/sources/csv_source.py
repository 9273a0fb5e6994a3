"""CSV files (read with pandas): tables, texts, multi-label and regression targets.

- tables: feature columns (`data.feature_columns`, default every column but the labels, the
  split column and the text column), numeric and categorical, kept raw in a DataFrame;
- text: `data.text_column` becomes an object array of str;
- labels: one column (classes or a regression target) or several (multilabel, 0/1 each);
- `data.split_column` fixes each row's split (train, val/validation, test).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.data.sources.common import existing_path
from dlforge.data.sources.download import sha256_file
from dlforge.data.sources.infer import label_task, multi_column_task
from dlforge.data.values import SHOWN, stray_text
from dlforge.errors import DataError

SPLIT_VALUES = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def load(cfg: DataConfig) -> Dataset:
    """Load the CSV at `data.path` as a table or text data set.

    Raises:
        DataError: missing file or column, empty labels or text, an unknown split value,
            labels that contradict `data.task`, or a label or feature column of numbers with
            a few cells of text (features: unless listed in `data.categorical_columns`).
    """
    path = existing_path(cfg, kind="CSV file")
    if not path.is_file():
        what = "a directory" if path.is_dir() else "not a regular file (a device or a pipe)"
        raise DataError(f"data.path: {cfg.path!r} is {what}; give a CSV file")
    frame = read_csv_file(path)
    label_cols = list(cfg.label_columns)
    _require_columns(frame, path, "data.label_columns", label_cols)
    for col in label_cols:
        _require_filled(frame, path, "data.label_columns", col)
    _refuse_stray_text(frame[label_cols], path, fix="fix {them} or drop {rows}")
    where = f"column {label_cols[0]!r} of {path.name}"
    if len(label_cols) == 1:
        y, task = label_task(frame[label_cols[0]].to_numpy(), cfg, where=where,
                             target_name=label_cols[0])
    else:
        y, task = multi_column_task(frame[label_cols], cfg, where=path.name)
    x, modality = _inputs(frame, cfg, path)
    split = _split(frame, cfg, path) if cfg.split_column else None
    details = {"rows": len(frame), "columns": [str(c) for c in frame.columns]}
    return Dataset(
        x=x, y=y, task=task, modality=modality, split=split,
        provenance=Provenance(source="csv", files={str(path): sha256_file(path)}, details=details),
    )


def read_csv_file(path: Path, field: str = "data.path") -> pd.DataFrame:
    """The whole CSV at `path`, or one line naming `field` and what is wrong with the file.

    Raises:
        DataError: a directory, an empty file, a header without rows, a file that is not
            UTF-8 or not CSV, or a column named twice (`csv_header`).

    Example:
        >>> read_csv_file(Path("new.csv"), field="--data").columns.tolist()  # doctest: +SKIP
        ['a', 'b']
    """
    csv_header(path, field)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise unreadable_csv(path, exc, field) from None
    if frame.empty:
        raise no_rows(path, field)
    return frame


def csv_header(path: Path, field: str = "data.path") -> list[str]:
    """The column names on the first line of the CSV at `path`, checked before pandas reads it
    (pandas renames a repeated name `a` to `a.1`, which would make a second label column a
    feature, or a feature column a copy nobody asked for).

    Args:
        path: the CSV file.
        field: what the messages name (`input` for `dlforge predict`).

    Raises:
        DataError: the path is a directory, or the file is empty (or blank), not UTF-8, or
            names a column twice.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("a,b,label\\n1,2,x\\n")
        >>> csv_header(path)
        ['a', 'b', 'label']
    """
    if path.is_dir():
        raise DataError(f"{field}: {str(path)!r} is a directory; give a CSV file")
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:  # -sig: Excel's BOM, as pandas
            # the first line with a value, as pandas skips blank lines
            names = next((row for row in csv.reader(f) if any(c.strip() for c in row)), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise unreadable_csv(path, exc, field) from None
    if not names:
        raise DataError(f"{field}: {str(path)!r} is empty; give a CSV file with a header line "
                        f"of column names and one row per sample")
    # blank names (a header ending in empty cells, as spreadsheets save it) are pandas' own
    # `Unnamed: N` columns, not a name given twice
    repeated = [name for name, n in Counter(names).items() if n > 1 and name.strip()]
    if repeated:
        places = "; ".join(f"{name!r} in columns "
                           + ", ".join(str(i + 1) for i, c in enumerate(names) if c == name)
                           for name in repeated)
        raise DataError(f"{field}: {path.name} names a column more than once ({places}); "
                        f"give every column of the header line its own name")
    return names


def unreadable_csv(path: Path, exc: Exception, field: str = "data.path") -> DataError:
    """The one-line error for a CSV that pandas or the csv module cannot parse."""
    if isinstance(exc, UnicodeDecodeError):
        return DataError(f"{field}: {str(path)!r} is not UTF-8 text (byte "
                         f"0x{exc.object[exc.start]:02x} is not UTF-8); save it as UTF-8")
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"{field}: {str(path)!r} is not a readable CSV file ({reason})")


def no_rows(path: Path, field: str = "data.path") -> DataError:
    """The error for a CSV with a header line and no data."""
    return DataError(f"{field}: {str(path)!r} has a header but no rows")


def _inputs(frame: pd.DataFrame, cfg: DataConfig, path: Path) -> tuple[object, str]:
    """The model inputs: a text array, or the feature columns as a DataFrame."""
    if cfg.text_column:
        _require_columns(frame, path, "data.text_column", [cfg.text_column])
        _require_filled(frame, path, "data.text_column", cfg.text_column)
        return frame[cfg.text_column].astype(str).to_numpy(dtype=object), "text"
    used = set(cfg.label_columns) | {cfg.split_column}
    features = cfg.feature_columns or [c for c in frame.columns if c not in used]
    _require_columns(frame, path, "data.feature_columns", features)
    if cfg.categorical_columns:
        _require_columns(frame, path, "data.categorical_columns", cfg.categorical_columns)
    if not features:
        raise DataError(
            f"data.feature_columns: {path.name} has no columns besides the labels; "
            f"columns are: {', '.join(map(str, frame.columns))}"
        )
    table = frame[features].reset_index(drop=True)
    categorical = cfg.categorical_columns or []
    _refuse_stray_text(table[[c for c in table.columns if c not in categorical]], path,
                       fix="fix or remove {them}, or list the column in data.categorical_columns "
                           "if it is categorical")
    for col in cfg.categorical_columns or []:
        # The preprocessor one-hot encodes non-numeric columns; listed ones are categorical
        # even when their values look like numbers (zip codes, product ids).
        table[col] = table[col].astype("category")
    return table, "table"


def _refuse_stray_text(table: pd.DataFrame, path: Path, fix: str) -> None:
    """A column of numbers with a few cells of text ('abc', '?') is a typo in the data, not a
    categorical column (or a class) per distinct number: refuse it, one line per column.
    `fix` may use {them} and {rows}."""
    lines = []
    for col in table.columns:
        text = stray_text(table[col])
        if len(text):
            cells = ", ".join(f"{v!r} (line {i + 2})" for i, v in text.iloc[:SHOWN].items())
            more = f" and {len(text) - SHOWN} more" if len(text) > SHOWN else ""
            one = len(text) == 1
            lines.append(
                f"data: column {str(col)!r} of {path.name} holds numbers except for {len(text)} "
                f"value{'' if one else 's'}: {cells}{more}; "
                + fix.format(them="it" if one else "them", rows="its row" if one else "those rows"))
    if lines:
        raise DataError("\n".join(lines))


def _split(frame: pd.DataFrame, cfg: DataConfig, path: Path) -> np.ndarray:
    col = str(cfg.split_column)
    _require_columns(frame, path, "data.split_column", [col])
    values = frame[col].astype(str).to_numpy(dtype=object)
    bad = sorted({v for v in values if v not in SPLIT_VALUES})
    if bad:
        raise DataError(
            f"data.split_column: column {col!r} of {path.name} has value {bad[0]!r}; allowed "
            f"values are: {', '.join(SPLIT_VALUES)}"
        )
    return np.array([SPLIT_VALUES[v] for v in values], dtype=object)


def _require_columns(frame: pd.DataFrame, path: Path, key: str, columns: list[str]) -> None:
    have = [str(c) for c in frame.columns]
    for col in columns:
        if col not in have:
            raise DataError(f"{key}: column {col!r} not in {path.name}; {columns_are(have)}")


def columns_are(have: list[str]) -> str:
    """'columns are: a, b', and a hint when the header is one column holding another separator.

    Example:
        >>> columns_are(["a;b;label"])
        "columns are: a;b;label (one column: dlforge reads comma-separated files; this header looks ';'-separated: convert the file)"
    """
    listed = f"columns are: {', '.join(have)}"
    separator = next((sep for sep in (";", "\t", "|") if len(have) == 1 and sep in have[0]), None)
    if separator is None:
        return listed
    return (f"{listed} (one column: dlforge reads comma-separated files; this header looks "
            f"{separator!r}-separated: convert the file)")


def _require_filled(frame: pd.DataFrame, path: Path, key: str, col: str) -> None:
    empty = np.flatnonzero(frame[col].isna().to_numpy())
    if empty.size:
        rows = ", ".join(str(r + 2) for r in empty[:5])  # +2: 1-based and the header line
        more = f" and {empty.size - 5} more" if empty.size > 5 else ""
        raise DataError(
            f"{key}: column {col!r} of {path.name} has {empty.size} empty values (lines "
            f"{rows}{more}); fill or drop those rows"
        )
