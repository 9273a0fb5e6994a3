"""The in-memory dataset every source returns, and the three splits made from it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

Modality = Literal["image", "table", "text"]
TaskKind = Literal["multiclass", "binary", "multilabel", "regression", "anomaly"]


@dataclass(frozen=True)
class TaskSpec:
    """What is predicted.

    Attributes:
        kind: multiclass (one of K, integer labels), binary (0/1, class 1 is the positive one),
            multilabel (K independent 0/1 labels), regression (float targets), anomaly (0
            normal, 1 anomaly; the model reconstructs its input and never sees the labels).
        class_names: one name per class (binary and anomaly: [negative, positive]) or per label; for
            regression the target column name(s).
    """

    kind: TaskKind
    class_names: tuple[str, ...]

    @property
    def num_outputs(self) -> int:
        """Width of the model's head: 1 logit for binary, one per class or label otherwise."""
        if self.kind == "binary":
            return 1
        return max(1, len(self.class_names))

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        return cls(kind=d["kind"], class_names=tuple(d["class_names"]))


@dataclass(frozen=True)
class Provenance:
    """Where the samples came from: the source, and the sha256 of every file read."""

    source: str
    files: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "files": dict(self.files), "details": dict(self.details)}

    @property
    def fingerprint(self) -> str:
        """A short hash of the source, its details and its files' contents, stable across
        machines: files count by their path below the folder they share, not where it is."""
        import hashlib
        import json

        blob = json.dumps({"source": self.source, "files": _relative_keys(self.files),
                           "details": {k: v for k, v in self.details.items() if k not in _LOCAL_DETAILS}},
                          sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# Provenance details that name a place on this machine; the files' checksums identify the data.
_LOCAL_DETAILS = frozenset({"root", "path"})


def _relative_keys(files: dict[str, str]) -> dict[str, str]:
    """`files` keyed by each path relative to the folder all of them are in."""
    if not files:
        return {}
    try:
        base = os.path.commonpath([os.path.dirname(os.path.abspath(k)) for k in files])
    except ValueError:  # different drives (Windows): keep the paths as given
        return dict(files)
    return {Path(os.path.relpath(os.path.abspath(k), base)).as_posix(): v for k, v in files.items()}


@dataclass
class Dataset:
    """Samples and labels, in memory, before preprocessing.

    Attributes:
        x: images as an array (N, C, H, W), uint8 or float; tables as a DataFrame of raw
            columns (numeric and categorical, NaN allowed); texts as an object array (N,) of str.
        y: int64 (N,) for multiclass/binary; int64 (N, K) of 0/1 for multilabel;
            float32 (N,) or (N, T) for regression.
        task: what is predicted.
        modality: image, table or text.
        provenance: source and file checksums.
        split: optional per-sample names ("train", "val", "test") fixed by the source (a
            shipped test set, or a csv split column); None lets `data.split` decide.
        skipped: files the source could not read, as {"path", "reason"} dicts (for the report).
        ids: one string per sample naming it in its source (image folders: the file's path
            under the root; other sources: the row number in the source, from 0), kept through
            selection and splitting; `load_dataset` fills it.
    """

    x: np.ndarray | pd.DataFrame
    y: np.ndarray
    task: TaskSpec
    modality: Modality
    provenance: Provenance
    split: np.ndarray | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def concat(self, other: Dataset) -> Dataset:
        """The samples of this set, then those of `other` (same source, task and modality)."""
        if isinstance(self.x, pd.DataFrame):
            x = pd.concat([self.x, other.x], ignore_index=True)
        else:
            x = np.concatenate([self.x, other.x])
        split = None if self.split is None or other.split is None else np.concatenate(
            [self.split, other.split])
        ids = None if self.ids is None or other.ids is None else np.concatenate([self.ids, other.ids])
        return Dataset(x=x, y=np.concatenate([self.y, other.y]), task=self.task,
                       modality=self.modality, provenance=self.provenance, split=split,
                       skipped=self.skipped, ids=ids)

    def subset(self, index: np.ndarray) -> Dataset:
        """The samples at `index` (integer positions), everything else shared."""
        index = np.asarray(index, dtype=np.int64)
        x = self.x.iloc[index].reset_index(drop=True) if isinstance(self.x, pd.DataFrame) else self.x[index]
        split = None if self.split is None else self.split[index]
        ids = None if self.ids is None else self.ids[index]
        return replace(self, x=x, y=self.y[index], split=split, ids=ids)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one raw sample: (C, H, W), (n_columns,) or () for text."""
        if isinstance(self.x, pd.DataFrame):
            return (self.x.shape[1],)
        return tuple(self.x.shape[1:])


@dataclass
class Splits:
    """Train, validation and test sets made once from a Dataset.

    `test` is touched only by the final evaluation; choices (early stopping, thresholds,
    search) see `val` only.
    """

    train: Dataset
    val: Dataset
    test: Dataset
    info: dict[str, Any] = field(default_factory=dict)

    def items(self) -> list[tuple[str, Dataset]]:
        return [("train", self.train), ("val", self.val), ("test", self.test)]
