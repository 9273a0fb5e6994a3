"""What the values of a data set look like: numbers that are not finite, and table columns
that mix numbers with text.

Rows are positions in the data as loaded, counting from 0 (for a CSV file without
`data.classes`, `data.binary_from` or `data.limit`, row r is on line r + 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# A column whose filled cells are at least this share numbers is a numeric column with a few
# mistyped cells; below it, a column mixing numbers and text is plausibly categorical.
MOSTLY_NUMERIC = 0.9
SHOWN = 5  # row numbers or values quoted in one message
# Models compute in float32: a larger finite value (1e300) would turn infinite in training.
FLOAT32_MAX = float(np.finfo(np.float32).max)
BEYOND_FLOAT32 = ("beyond float32's range (about 3.4e38), in which the model computes; rescale "
                  "{it} (e.g. divide by a power of 10) or drop those rows")


def text_cells(col: pd.Series) -> pd.Series:
    """The filled cells of a text or object column that do not read as numbers ('abc', '?').

    Numeric and categorical (`data.categorical_columns`) columns have none.
    """
    if pd.api.types.is_numeric_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
        return col.iloc[:0]
    filled = col.dropna()
    return filled[pd.to_numeric(filled, errors="coerce").isna()]


def stray_text(col: pd.Series) -> pd.Series:
    """The text cells of a column that is numbers except for a few of them, else empty.

    "A few": at least ``MOSTLY_NUMERIC`` of the filled cells are numbers. Such a column would
    otherwise become a categorical column with one feature per distinct number.
    """
    text = text_cells(col)
    filled = int(col.notna().sum())
    return text if filled - len(text) >= MOSTLY_NUMERIC * filled else text.iloc[:0]


def mixed_column_warnings(x: object) -> list[str]:
    """One warning per table column that mixes numbers and text (read as categorical), or
    otherwise holds values of several Python types."""
    if not isinstance(x, pd.DataFrame):
        return []
    lines = []
    for col in x.columns:
        text = text_cells(x[col])
        numbers = int(x[col].notna().sum()) - len(text)
        if len(text) and numbers:
            lines.append(
                f"data: column {str(col)!r} mixes numbers ({numbers} values) and text "
                f"({len(text)} values, e.g. {quoted(text)}) and is read as categorical, one "
                f"feature per distinct value; list it in data.categorical_columns if that is "
                f"meant, else fix the text values")
        elif pd.api.types.is_object_dtype(x[col]):
            kinds = sorted({type(v).__name__ for v in x[col].dropna()})
            if len(kinds) > 1:
                lines.append(f"data: column {str(col)!r} mixes value types {kinds}")
    return lines


def non_finite_problems(x: object, ids: np.ndarray | None = None, *,
                        scaling: str = "none") -> list[str]:
    """One line per table column holding inf, or one line for float samples holding NaN/inf;
    and values beyond float32's range, where they reach the model as they are.

    NaN in a table is a missing value (imputed or refused by `validate`), not counted here.
    Rows are named by `ids` when given (a source's row numbers, which a streamed or selected
    data set's positions are not), else by position. `scaling`: `preprocess.table.scaling`;
    other than none, table columns are scaled in float64 before the model sees them, so a raw
    value beyond float32 (1e40) is fine, and a column whose scaling overflows float64 is
    refused here as the preprocessor refuses it.
    """
    if isinstance(x, pd.DataFrame):
        lines = []
        for col in x.columns:
            values = x[col]
            if pd.api.types.is_float_dtype(values):
                rows = np.flatnonzero(np.isinf(values.to_numpy(dtype=np.float64)))
                if rows.size:
                    lines.append(f"data: column {str(col)!r} has {rows.size} infinite values "
                                 f"(rows {row_list(rows, ids=ids)}); replace them or drop those rows")
                if scaling != "none" and scaling_overflows(values.to_numpy(np.float64), scaling):
                    lines.append("data: " + scaling_overflow_line(col, scaling))
                rows = (np.empty(0, dtype=np.intp) if scaling != "none"
                        else beyond_float32(values.to_numpy()))
                if rows.size:
                    lines.append(f"data: column {str(col)!r} has {rows.size} values (rows "
                                 f"{row_list(rows, ids=ids)}) " + BEYOND_FLOAT32.format(it="the column"))
        return lines
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and len(x):
        rows = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        lines = [f"data: {rows.size} samples contain NaN or infinite values (rows "
                 f"{row_list(rows, ids=ids)}); replace them or drop those samples"] if rows.size else []
        rows = beyond_float32(x)
        if rows.size:
            lines.append(f"data: {rows.size} samples (rows {row_list(rows, ids=ids)}) hold values "
                         + BEYOND_FLOAT32.format(it="the samples"))
        return lines
    return []


def scaling_overflows(values: np.ndarray, kind: str) -> bool:
    """Whether `kind` scaling ("standard" or "minmax") of a column's finite values overflows
    float64: the mean or standard deviation (values such as 1e300: their squares are
    infinite), or the minimum or range.

    Example:
        >>> scaling_overflows(np.array([1e300, -1e300]), "standard")
        True
        >>> scaling_overflows(np.array([1e300, -1e300]), "minmax")
        False
    """
    values = values[np.isfinite(values)]
    if not values.size:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "standard":
            stats = [values.mean(), values.std()]
        else:
            stats = [values.min(), values.max() - values.min()]
    return not np.isfinite(stats).all()


def scaling_overflow_line(col: object, kind: str) -> str:
    """The line refusing column `col`, whose `kind` scaling overflows float64."""
    spread = "mean or standard deviation" if kind == "standard" else "minimum or range"
    return (f"column {str(col)!r}: its values are too large for {kind} scaling (their {spread} "
            f"overflows float64); rescale the column (e.g. divide by a power of 10) or drop "
            f"those rows")


def beyond_float32(values: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Rows (first axis) holding a finite value too large for float32. Integers and floats of
    at most 4 bytes cannot hold one: they are not read at all; wider ones are read `chunk`
    values at a time, not copied whole.

    Example:
        >>> beyond_float32(np.array([1.0, -1e300, np.inf, 3e38])).tolist()
        [1]
    """
    values = np.asarray(values)
    if values.dtype.kind in "biu" or (values.dtype.kind == "f" and values.dtype.itemsize <= 4):
        return np.empty(0, dtype=np.intp)
    flat = values.reshape(len(values), -1)
    step = max(1, chunk // max(flat.shape[1], 1))
    found = []
    for start in range(0, len(flat), step):
        part = np.abs(np.asarray(flat[start:start + step], dtype=np.float64))
        found.append(start + np.flatnonzero(((part > FLOAT32_MAX) & np.isfinite(part)).any(axis=1)))
    return np.concatenate(found) if found else np.empty(0, dtype=np.intp)


def row_list(rows: np.ndarray | list[int], offset: int = 0, ids: np.ndarray | None = None) -> str:
    """The first row numbers (plus `offset`), or their `ids`, and how many more: '3, 7 and 12 more'.

    Example:
        >>> row_list([0, 2], ids=np.array(["12", "11", "10"], dtype=object))
        '10, 12'
    """
    if ids is None:
        names = [str(int(r) + offset) for r in rows]
    else:  # in file order (a streamed data set holds its splits one after another)
        names = sorted((str(ids[int(r)]) for r in rows),
                       key=lambda v: (0, int(v), "") if v.isdigit() else (1, 0, v))
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else "")


def quoted(values: pd.Series) -> str:
    """The first distinct values, quoted: "'abc', '?'"."""
    return ", ".join(repr(v) for v in pd.unique(values.astype(str))[:SHOWN].tolist())
