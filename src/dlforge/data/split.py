"""Split a Dataset once into train, validation and test, stratified, respecting the source.

A shipped test set (rows marked "test" in `Dataset.split`) stays the test set and a shipped
validation set stays the validation set; whatever is missing is carved from the remaining
rows with scikit-learn's `train_test_split`. The test split is drawn from the data as it is
(`test_distribution: natural`): resampling for imbalance happens later, on train only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from dlforge.data.dataset import Dataset, Splits, TaskSpec
from dlforge.errors import DataError

if TYPE_CHECKING:
    from dlforge.config.schema import DataConfig

SPLIT_NAMES = ("train", "val", "test")
_MAX_REGRESSION_BINS = 10


def stratify_key(y: np.ndarray, task: TaskSpec) -> np.ndarray:
    """One integer stratum per sample, used to keep splits representative.

    - multiclass / binary: the label itself.
    - multilabel: the rarest label (fewest positives in `y`) that the row has; rows without any
      label form one extra stratum (K). This approximates iterative stratification (Sechidis
      et al. 2011) with one pass of `train_test_split`: every label's rare positives are spread
      over the splits, while frequent labels follow by sheer number.
    - regression: quantile bins of the (first) target, up to 10 bins with ~10 samples each.

    Args:
        y: labels as stored in `Dataset.y`.
        task: the task spec of the dataset.

    Returns:
        int64 array (N,).

    Example:
        >>> stratify_key(np.array([[1, 1], [1, 0], [0, 0]]), TaskSpec("multilabel", ("a", "b")))
        array([1, 0, 2])
    """
    if task.kind == "multilabel":
        y = np.asarray(y, dtype=np.int64)
        counts = y.sum(axis=0)
        # an absent label gets an infinite count so it is never chosen as "rarest"
        masked = np.where(y > 0, counts[None, :], np.iinfo(np.int64).max)
        key = masked.argmin(axis=1)
        key[y.sum(axis=1) == 0] = y.shape[1]
        return key.astype(np.int64)
    if task.kind == "regression":
        target = np.asarray(y, dtype=np.float64).reshape(len(y), -1)[:, 0]
        bins = max(1, min(_MAX_REGRESSION_BINS, len(target) // 10))
        with np.errstate(invalid="ignore"):  # inf targets: refused by validation, not warned here
            codes = pd.qcut(target, q=bins, labels=False, duplicates="drop")
        return np.nan_to_num(np.asarray(codes, dtype=np.float64), nan=-1).astype(np.int64)
    return np.asarray(y, dtype=np.int64)


def split_dataset(ds: Dataset, cfg: DataConfig, seed: int) -> Splits:
    """Make the train, validation and test splits of `ds`.

    Rows the source marked "test" form the test set (`data.test_fraction` is then ignored);
    rows marked "val" form the validation set. Otherwise the test set is carved from all rows
    (`test_fraction` of them) and the validation set from the rows left for training
    (`val_fraction` of the WHOLE dataset). Carving is stratified (see `stratify_key`) when
    `data.stratify` is on; if a stratum has fewer than 2 samples, or the split is too small to
    hold every stratum, it falls back to an unstratified split and says so in
    `info["warnings"]`.

    Args:
        ds: the selected dataset; `ds.split` may fix each row's split.
        cfg: the data section (`val_fraction`, `test_fraction`, `stratify`).
        seed: seed of the random carving; the same seed gives the same splits.

    Returns:
        Splits whose `info` records the fractions, seed, counts, whether each carve was
        stratified, where the test and validation sets came from, and warnings.

    Raises:
        DataError: unknown split names in `ds.split`, or no rows left for training.

    Example:
        >>> splits = split_dataset(ds, DataConfig(), seed=0)  # doctest: +SKIP
        >>> splits.info["counts"]  # doctest: +SKIP
        {'train': 70, 'val': 15, 'test': 15}
    """
    marks = split_marks(ds)
    key = stratify_key(ds.y, ds.task)
    info: dict[str, Any] = {"seed": seed, "val_fraction": cfg.val_fraction,
                            "test_distribution": cfg.test_distribution, "warnings": []}
    pool = np.flatnonzero(marks == "train")
    n_total = len(ds)

    stratified: dict[str, bool | None] = {"test": None, "val": None}  # None: from the source
    test = np.flatnonzero(marks == "test")
    if len(test):
        info |= {"test_source": "source", "test_fraction": None,
                 "test_fraction_ignored": f"the source has a test set ({len(test)} rows)"}
    else:
        n_test = _round_half_up(cfg.test_fraction * n_total)
        pool, test, stratified["test"] = _carve(pool, n_test, key, ds.task, cfg, seed, "test", info)
        info |= {"test_source": "carved", "test_fraction": cfg.test_fraction}

    val = np.flatnonzero(marks == "val")
    if len(val):
        info["val_source"] = "source"
    else:
        n_val = _round_half_up(cfg.val_fraction * n_total)
        pool, val, stratified["val"] = _carve(pool, n_val, key, ds.task, cfg, seed, "val", info)
        info["val_source"] = "carved"

    parts = {"train": np.sort(pool), "val": np.sort(val), "test": np.sort(test)}
    info["counts"] = {name: len(idx) for name, idx in parts.items()}
    info["stratified"] = stratified
    datasets = {name: ds.subset(idx) for name, idx in parts.items()}
    for part in datasets.values():
        part.split = None  # the split is now the container; a stale per-row mark would mislead
    return Splits(train=datasets["train"], val=datasets["val"], test=datasets["test"], info=info)


def split_marks(ds: Dataset) -> np.ndarray:
    """Each row's fixed split name; rows without one (or no `ds.split`) are "train".

    Raises:
        DataError: a split name other than train, val or test.
    """
    if ds.split is None:
        return np.full(len(ds), "train", dtype=object)
    marks = np.asarray(ds.split, dtype=object)
    marks = np.where(pd.isna(marks), "train", marks)
    unknown = sorted({str(m) for m in marks} - set(SPLIT_NAMES))
    if unknown:
        raise DataError(
            f"data.split_column: unknown split values {unknown}; allowed: {', '.join(SPLIT_NAMES)}"
        )
    return marks


def _round_half_up(x: float) -> int:
    # not round(): banker's rounding, and not ceil(): 0.15 * 100 == 15.000000000000002
    return int(np.floor(x + 0.5))


def _carve(
    pool: np.ndarray, n_out: int, key: np.ndarray, task: TaskSpec, cfg: DataConfig, seed: int,
    name: str, info: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Take `n_out` rows of `pool` out as split `name`; returns (rest, taken, stratified)."""
    n_out = max(1, n_out)
    if n_out >= len(pool):
        raise DataError(
            f"data.{name}_fraction: the {name} split would take {n_out} of the {len(pool)} "
            f"remaining rows, leaving none for training; lower it or add data"
        )
    stratify = key[pool] if cfg.stratify else None
    if stratify is not None:
        problem = _stratify_problem(stratify, n_out, len(pool) - n_out, task)
        if problem:
            info["warnings"].append(f"{name} split not stratified: {problem}")
            stratify = None
    rest, taken = train_test_split(pool, test_size=n_out, random_state=seed, stratify=stratify)
    return rest, taken, stratify is not None


def _stratify_problem(strata: np.ndarray, n_out: int, n_rest: int, task: TaskSpec) -> str | None:
    """Why a stratified carve is impossible, mirroring scikit-learn's own checks; None if fine."""
    values, counts = np.unique(strata, return_counts=True)
    if counts.min() < 2:
        return f"{_stratum_name(int(values[counts.argmin()]), task)} has only {counts.min()} sample"
    if n_out < len(values) or n_rest < len(values):
        return f"{min(n_out, n_rest)} rows cannot hold all {len(values)} strata"
    return None


def _stratum_name(value: int, task: TaskSpec) -> str:
    """A stratum as a person reads it: the class or label name, or the target bin."""
    if task.kind == "regression":
        return f"target quantile bin {value}"
    if task.kind == "multilabel" and value == len(task.class_names):
        return "the group of rows without any label"
    name = task.class_names[value] if 0 <= value < len(task.class_names) else str(value)
    return f"{'label' if task.kind == 'multilabel' else 'class'} {name!r}"
