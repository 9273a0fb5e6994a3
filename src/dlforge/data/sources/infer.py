"""Task inference and class naming, shared by every source.

The rules (docs/architecture.md): several label columns -> multilabel; numeric labels with
non-integer values -> regression; 2 classes -> binary; else multiclass. Class names are strings,
sorted (numbers in numeric order), except binary, where the positive class
(`data.positive_class`, default the second sorted name) comes last so that y == 1 means positive.
Sources whose label ids have a fixed meaning (IDX, CIFAR) pass `class_names` and keep that order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import TaskKind, TaskSpec
from dlforge.data.values import BEYOND_FLOAT32, beyond_float32, row_list
from dlforge.errors import DataError


def requested_task(cfg: DataConfig) -> TaskKind | None:
    """The task the labels must fit now, or None to infer it.

    With `data.classes`, `data.binary_from` or `data.normal_classes` the source's full class set is loaded first and
    `data/select.py` narrows it afterwards, so `data.task` describes the selected data and is
    not checked against all the source's classes here.
    """
    if cfg.classes or cfg.binary_from or cfg.normal_classes:
        return None
    return cfg.task


def label_task(
    values: np.ndarray,
    cfg: DataConfig,
    *,
    where: str,
    class_names: Sequence[str] | None = None,
    default_kind: TaskKind | None = None,
    target_name: str = "target",
) -> tuple[np.ndarray, TaskSpec]:
    """Turn one column of raw labels into `y` and its TaskSpec.

    Args:
        values: raw labels (N,): strings or numbers; integer ids when `class_names` is given.
        cfg: the data config (task, positive_class, classes, binary_from).
        where: what the labels are, for messages, e.g. "column 'label' of spam.csv".
        class_names: fixed names indexed by label id (IDX, CIFAR); the order is kept.
        default_kind: the kind when neither `data.task` nor a fixed rule decides (builtin
            diabetes is regression although its targets are whole numbers).
        target_name: the regression target's name.

    Returns:
        (y, task): int64 ids (binary: 1 = positive) or float32 targets.

    Raises:
        DataError: the labels contradict `data.task`, or `data.positive_class` is unknown.
    """
    values = np.asarray(values)
    requested = requested_task(cfg)
    if requested == "multilabel":
        raise DataError(
            f"data.task: 'multilabel' needs several 0/1 label columns; got one: {where} "
            f"(list the label columns in data.label_columns, or remove data.task)"
        )
    with np.errstate(invalid="ignore"):  # inf % 1 is NaN: a non-integer, reported by validation
        fractional = values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0)
    kind = requested or default_kind or ("regression" if fractional else None)
    if kind == "regression":
        return _regression(values, where, target_name)
    if fractional:
        sample = values[np.mod(values, 1) != 0][0]
        raise DataError(
            f"data.task: {kind!r} needs class labels; found the non-integer "
            f"value {_show(sample)} in {where} (use task: regression)"
        )
    ids, names = _class_ids(values, where, class_names)
    if kind is None:
        kind = "binary" if len(names) == 2 else "multiclass"
    if kind == "binary":
        return _binary(ids, names, cfg, where)
    return ids, TaskSpec("multiclass", tuple(names))


def _regression(values: np.ndarray, where: str, target_name: str) -> tuple[np.ndarray, TaskSpec]:
    if values.dtype.kind not in "biuf":
        raise DataError(
            f"data.task: 'regression' needs numeric targets; found {_show(values[0])} in {where}"
        )
    rows = beyond_float32(values)
    if rows.size:
        raise DataError(f"data.label_columns: {where} has {rows.size} targets (rows "
                        f"{row_list(rows)}) " + BEYOND_FLOAT32.format(it="the target"))
    return values.astype(np.float32), TaskSpec("regression", (target_name,))


def _class_ids(
    values: np.ndarray, where: str, class_names: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """Integer ids and the name of each id."""
    if class_names is not None:
        ids = values.astype(np.int64)
        bad = ids[(ids < 0) | (ids >= len(class_names))]
        if bad.size:
            raise DataError(
                f"{where}: label {int(bad[0])} is out of range; the source has "
                f"{len(class_names)} classes (0..{len(class_names) - 1})"
            )
        return ids, list(class_names)
    if values.dtype.kind in "biuf":
        uniq, ids = np.unique(values, return_inverse=True)  # numeric order
        names = [str(int(v)) for v in uniq]
    else:
        uniq, ids = np.unique(values.astype(str), return_inverse=True)
        names = [str(v) for v in uniq]
    return ids.astype(np.int64).reshape(-1), names


def _binary(
    ids: np.ndarray, names: list[str], cfg: DataConfig, where: str
) -> tuple[np.ndarray, TaskSpec]:
    if len(names) != 2:
        raise DataError(
            f"data.task: 'binary' needs exactly 2 classes; found {len(names)} in {where}: "
            f"{', '.join(names)} (remove data.task, or use data.binary_from)"
        )
    positive = cfg.positive_class if cfg.positive_class is not None else names[1]
    if positive not in names:
        raise DataError(
            f"data.positive_class: {positive!r} is not one of the classes in {where}: "
            f"{', '.join(names)}"
        )
    pos_id = names.index(positive)
    negative = names[1 - pos_id]
    return (ids == pos_id).astype(np.int64), TaskSpec("binary", (negative, positive))


def multi_column_task(frame: pd.DataFrame, cfg: DataConfig, *, where: str) -> tuple[np.ndarray, TaskSpec]:
    """Several label columns: multilabel (0/1 each) or, with task regression, several targets.

    Args:
        frame: the label columns only, in `data.label_columns` order.
        cfg: the data config.
        where: the file, for messages.

    Raises:
        DataError: a column is not 0/1 for multilabel, or `data.task` needs one column.
    """
    columns = [str(c) for c in frame.columns]
    requested = requested_task(cfg)
    if requested == "regression":
        _require_numeric(frame, where, "regression")
        return frame.to_numpy(dtype=np.float32), TaskSpec("regression", tuple(columns))
    if requested in ("binary", "multiclass"):
        raise DataError(
            f"data.task: {requested!r} takes one label column; data.label_columns has "
            f"{len(columns)}: {', '.join(columns)} (use task: multilabel, or one column)"
        )
    _require_numeric(frame, where, "multilabel")
    for col in frame.columns:
        bad = frame[col][~frame[col].isin([0, 1])]
        if len(bad):
            raise DataError(
                f"data.label_columns: column {col!r} of {where} must hold 0/1 for a multilabel "
                f"task (got {_show(bad.iloc[0])}); set data.task: regression for numeric targets"
            )
    return frame.to_numpy(dtype=np.int64), TaskSpec("multilabel", tuple(columns))


def _require_numeric(frame: pd.DataFrame, where: str, kind: str) -> None:
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):  # bools count as numeric here
            raise DataError(
                f"data.label_columns: column {col!r} of {where} must be numeric for a {kind} "
                f"task (got {_show(frame[col].iloc[0])})"
            )


def _show(value: object) -> str:
    """repr of a value as a user wrote it (numpy scalars shown as plain Python numbers)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)
