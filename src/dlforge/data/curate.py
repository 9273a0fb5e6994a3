"""Curating the training split: leave out listed samples, flip labels for experiments, and the
folds of a k-fold review. Validation and test are never touched here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Splits
from dlforge.errors import DataError


def curate(splits: Splits, dataset: Dataset, cfg: DataConfig, seed: int) -> Splits:
    """`splits` with the training split flipped (`data.flip_labels`) and trimmed (`data.exclude`,
    `data.exclude_file`); `info` records the flipped ids and the excluded ids (lineage).

    Raises:
        DataError: an excluded id names no sample of the data, or the exclude file is missing.
    """
    train, info = splits.train, dict(splits.info)
    if cfg.flip_labels is not None:
        train, flipped = flip_labels(train, cfg.flip_labels, seed)
        info["flipped"] = flipped
    excluded = excluded_ids(cfg)
    if excluded:
        train, info["excluded"] = exclude(train, dataset, excluded)
    return Splits(train=train, val=splits.val, test=splits.test, info=info)


def excluded_ids(cfg: DataConfig) -> list[str]:
    """`data.exclude` plus the ids of `data.exclude_file` (blank lines and `#` comments skipped)."""
    ids = list(cfg.exclude)
    if cfg.exclude_file is not None:
        path = Path(cfg.exclude_file)
        if not path.is_file():
            raise DataError(f"data.exclude_file: no file {cfg.exclude_file!r}; give a file of "
                            f"sample ids, one per line (`dlforge data review --drop-top N` writes one)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"data.exclude_file: {cfg.exclude_file!r} is not UTF-8 text (byte "
                            f"0x{exc.object[exc.start]:02x}); give sample ids, one per line, "
                            f"saved as UTF-8") from None
        lines = (line.strip() for line in text.splitlines())
        ids += [line for line in lines if line and not line.startswith("#")]
    return list(dict.fromkeys(ids))


def exclude(train: Dataset, dataset: Dataset, ids: list[str]) -> tuple[Dataset, dict[str, Any]]:
    """The training samples whose id is not in `ids`, and what was left out.

    Ids of validation or test samples are kept there (the test split stays the same, so runs
    with and without exclusions compare); ids the data does not have are an error.
    """
    unknown = sorted(set(ids) - set(dataset.ids.tolist()))
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise DataError(f"data.exclude: {len(unknown)} ids name no sample of this data ({shown}); "
                        f"ids are file paths under data.path, or row numbers from 0")
    drop = np.isin(train.ids, np.asarray(ids, dtype=object))
    if drop.all():
        raise DataError(f"data.exclude: it leaves out all {len(train)} training samples")
    return train.subset(np.flatnonzero(~drop)), {
        "requested": len(ids), "from_train": int(drop.sum()), "ids": train.ids[drop].tolist()}


def flip_labels(train: Dataset, fraction: float, seed: int) -> tuple[Dataset, list[str]]:
    """A copy of `train` where `round(fraction * n)` random samples (seeded) carry another class
    (uniform over the others), and their ids. Multiclass and binary tasks only."""
    if train.task.kind not in ("multiclass", "binary"):
        raise DataError(f"data.flip_labels: flips class labels; this task is {train.task.kind}")
    rng = np.random.default_rng([seed, 17])
    chosen = np.sort(rng.choice(len(train), size=round(fraction * len(train)), replace=False))
    k = len(train.task.class_names)
    y = train.y.copy()
    y[chosen] = (y[chosen] + rng.integers(1, k, size=len(chosen))) % k
    return replace(train, y=y), train.ids[chosen].tolist()


def fold_indices(y: np.ndarray, class_names: tuple[str, ...], folds: int, seed: int,
                 key: str = "review.folds") -> list[np.ndarray]:
    """Held-out positions of each of `folds` stratified folds of labels `y` (sorted, disjoint,
    covering every position).

    Raises:
        DataError: a class has fewer samples than folds (one line naming the class and count).

    Example:
        >>> [f.tolist() for f in fold_indices(np.array([0, 1, 0, 1]), ("a", "b"), 2, seed=0)]
        [[1, 2], [0, 3]]
    """
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=len(class_names))
    smallest = int(np.argmin(counts))
    if counts[smallest] < folds:
        have = int(counts[smallest])
        # fewer than 2 folds is no k-fold: then the only fix is more samples
        lower = f"Lower {key} to {have} or less, or add" if have >= 2 else "Add"
        raise DataError(f"{key}: {folds} folds need at least {folds} training samples of every "
                        f"class; class {class_names[smallest]!r} has {have}. {lower} samples of "
                        f"that class")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [np.sort(held) for _, held in splitter.split(np.zeros(len(y)), y)]
