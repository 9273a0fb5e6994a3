"""Check a dataset (and its splits) before anything is trained on it.

Problems that would make training meaningless or crash later (no samples, bad labels, a single
class, a constant regression target, a class without training rows, NaN the preprocessing will not handle, infinite values)
raise one `DataError` listing every such problem, one per line. Everything else (imbalance,
duplicates, leakage between splits, constant columns or labels, columns mixing numbers and
text, skipped files, ...) becomes a warning in the `ValidationReport`. Rows in messages count
from 0 in the data as loaded (`data/values.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dlforge.data.dataset import Dataset, Splits, TaskSpec
from dlforge.data.sources.nested_folders import nested_folder_warnings
from dlforge.data.split import SPLIT_NAMES, split_marks
from dlforge.data.values import mixed_column_warnings, non_finite_problems, row_list
from dlforge.errors import DataError

if TYPE_CHECKING:
    from dlforge.config.schema import PreprocessConfig

IMBALANCE_WARNING = 3.0  # largest/smallest class above this earns a warning
# More classes than this without samples share one line, not one each (10,000 labels of ids).
MAX_CLASS_LINES = 5
_LEAKAGE_PAIRS = (("train", "val"), ("train", "test"), ("val", "test"))


@dataclass
class ValidationReport:
    """What `validate` found. JSON via `to_dict()`, a printable table via `rows()`.

    Attributes:
        source: where the data came from (`provenance.source`).
        task: the task kind.
        samples: rows per split ("all" when there are no splits).
        counts: rows per class per split (multilabel: positives per label; regression: {}).
        imbalance_ratio: largest / smallest non-empty class in the training rows, or None.
        missing: missing values per table column (only columns that have some).
        constant_columns: table columns with a single value.
        duplicates: per split, rows that exactly repeat an earlier row of the same split.
        leakage: per pair "a/b", rows of split b that exactly repeat a row of split a.
        sample_shape: shape of one sample.
        dtype: dtype of the samples (tables: column -> dtype).
        skipped: files the source could not read ({"path", "reason"}).
        warnings: one line per non-fatal problem.
    """

    source: str
    task: str
    samples: dict[str, int]
    counts: dict[str, dict[str, int]]
    imbalance_ratio: float | None
    missing: dict[str, int] = field(default_factory=dict)
    constant_columns: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    leakage: dict[str, int] = field(default_factory=dict)
    sample_shape: list[int] = field(default_factory=list)
    dtype: str | dict[str, str] = ""
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-safe builtins."""
        return asdict(self)

    def rows(self) -> list[tuple[str, str, str]]:
        """(section, item, value) string triples, in reading order, for a table printout."""
        out = [("samples", name, str(n)) for name, n in self.samples.items()]
        out += [("classes", f"{split}/{cls}", str(n))
                for split, counts in self.counts.items() for cls, n in counts.items()]
        if self.imbalance_ratio is not None:
            out.append(("imbalance", "largest/smallest class (train)", f"{self.imbalance_ratio:.2f}"))
        out += [("missing", col, str(n)) for col, n in self.missing.items()]
        out += [("constant", col, "single value") for col in self.constant_columns]
        out += [("duplicates", name, str(n)) for name, n in self.duplicates.items()]
        out += [("leakage", pair, str(n)) for pair, n in self.leakage.items()]
        out.append(("shape", "sample_shape", "x".join(map(str, self.sample_shape)) or "scalar"))
        dtypes = self.dtype.items() if isinstance(self.dtype, dict) else [("dtype", self.dtype)]
        out += [("dtype", name, str(kind)) for name, kind in dtypes]
        out += [("skipped", item["path"], item["reason"]) for item in self.skipped]
        out += [("warning", str(i), line) for i, line in enumerate(self.warnings, 1)]
        return out



def validate(
    ds: Dataset, splits: Splits | None = None, preprocess: PreprocessConfig | None = None, *,
    training: bool = True,
) -> ValidationReport:
    """Check `ds` (and `splits`, if made) and report what was found.

    Args:
        ds: the whole dataset after selection.
        splits: the splits made from `ds`; without them, the source's own `ds.split` marks
            (or the whole dataset as "all") are checked.
        preprocess: the preprocessing section; it decides whether NaN in a table is fatal
            (`impute: none`) and whether raw table values beyond float32 are (`scaling:
            none`). Without it, missing values are warnings and the default scaling applies.
        training: whether a model will be trained on `splits.train`; False (scoring a
            trained model on other splits) makes a class without training samples a warning.

    Returns:
        ValidationReport with counts, duplicates, leakage and one warning per lesser problem.

    Raises:
        DataError: one line per fatal problem: no samples, labels missing or outside the
            class list, a single class (multiclass/binary), a regression target with one
            value in every sample (every target, when there are several), a class (or multilabel label)
            with no training samples (when `training`), NaN that will not be imputed, inf in
            a table column or a regression target, NaN or inf in float samples.

    Example:
        >>> report = validate(ds, split_dataset(ds, DataConfig(), seed=0))  # doctest: +SKIP
        >>> report.leakage  # doctest: +SKIP
        {'train/val': 0, 'train/test': 0, 'val/test': 0}
    """
    if len(ds) == 0:
        raise DataError(f"data: no samples were loaded from {ds.provenance.source}")
    groups = _groups(ds, splits)
    fatal = _label_problems(ds)
    warnings: list[str] = []
    _constant_targets(ds, fatal, warnings)
    counts = {name: _class_counts(part) for name, part in groups.items()}
    train = "train" if "train" in groups else next(iter(groups))
    fatal += _empty_classes(counts, train if training else None, warnings, ds.provenance.source)
    scaling = "standard" if preprocess is None else preprocess.table.scaling
    fatal += non_finite_problems(ds.x, ds.ids, scaling=scaling)
    missing = _missing_values(ds, preprocess, fatal, warnings)
    if fatal:
        raise DataError("\n".join(fatal))
    # anomalies are rare by definition and never trained on: their ratio is no imbalance to fix
    imbalance_warnings = [] if ds.task.kind == "anomaly" else warnings
    report = ValidationReport(
        source=ds.provenance.source, task=ds.task.kind,
        samples={name: len(part) for name, part in groups.items()}, counts=counts,
        imbalance_ratio=_imbalance(counts.get(train, {}), train, imbalance_warnings), missing=missing,
        sample_shape=list(ds.sample_shape), dtype=_dtype(ds.x), skipped=list(ds.skipped),
    )
    _constant_labels(ds.task, counts[train], len(groups[train]), train, warnings)
    report.constant_columns = _constant_columns(ds, warnings)
    warnings += mixed_column_warnings(ds.x)
    report.duplicates, report.leakage = _duplicates(groups, warnings)
    _shape_problems(ds, groups, warnings)
    if ds.provenance.source == "image_folder" and ds.ids is not None:
        warnings += nested_folder_warnings(list(ds.ids), split_folders=ds.split is not None)
    if ds.skipped:
        first = ds.skipped[0]
        warnings.append(f"data: {len(ds.skipped)} files could not be read and were skipped "
                        f"(first: {first['path']}: {first['reason']})")
    report.warnings = warnings
    return report


def _groups(ds: Dataset, splits: Splits | None) -> dict[str, Dataset]:
    """The parts to count and compare: the splits, the source's split marks, or everything."""
    if splits is not None:
        return dict(splits.items())
    if ds.split is None:
        return {"all": ds}
    marks = split_marks(ds)
    return {name: ds.subset(np.flatnonzero(marks == name)) for name in SPLIT_NAMES
            if (marks == name).any()}


def _valid_labels(ds: Dataset) -> np.ndarray:
    """Mask of single-label rows whose label is a class index (not NaN, in 0..K-1)."""
    y = np.asarray(ds.y)
    with np.errstate(invalid="ignore"):
        ok = (y >= 0) & (y < len(ds.task.class_names)) & (y == np.floor(y))
    return ok & ~pd.isna(y)


def _label_problems(ds: Dataset) -> list[str]:
    y, kind, names = np.asarray(ds.y), ds.task.kind, list(ds.task.class_names)
    lines = []
    n_nan = int(pd.isna(y).sum()) if y.dtype.kind in "fO" else 0
    if n_nan:
        lines.append(f"data: {n_nan} labels are missing (NaN); drop those rows or fill in their labels")
    if kind == "multilabel":
        if y.ndim != 2 or y.shape[1] != len(names):
            return lines + [f"data: labels have shape {y.shape} but the task has {len(names)} "
                            f"labels {names}; give one 0/1 column per label"]
        bad = y[~pd.isna(y) & (y != 0) & (y != 1)]
        if len(bad):
            lines.append(f"data: {len(bad)} multilabel values are not 0 or 1 "
                         f"(values {_some(bad)}); use 0/1 columns")
    elif kind in ("multiclass", "binary"):
        if len(names) < 2:
            lines.append(f"data: all labels are one class ({names[0]!r}); a classifier needs at "
                         f"least 2 classes: add samples of another class, or check data.path "
                         f"and data.classes")
        bad = y[~_valid_labels(ds) & ~pd.isna(y)]
        if len(bad):
            lines.append(f"data: {len(bad)} labels are outside the class list (values "
                         f"{_some(bad)}); allowed are 0..{len(names) - 1} for classes {names}")
    elif kind == "regression" and y.dtype.kind == "f" and np.isinf(y).any():
        rows = np.flatnonzero(np.isinf(y).reshape(len(y), -1).any(axis=1))
        lines.append(f"data: {rows.size} regression targets are infinite (rows "
                     f"{row_list(rows, ids=ds.ids)}); replace them or drop those rows")
    return lines


def _some(values: np.ndarray, k: int = 5) -> str:
    uniq = pd.unique(values.ravel())
    shown = ", ".join(str(v) for v in sorted(uniq.tolist())[:k])
    return shown + (", ..." if len(uniq) > k else "")


def _class_counts(ds: Dataset) -> dict[str, int]:
    """Rows per class (valid labels only), positives per label, or {} for regression."""
    names = ds.task.class_names
    if ds.task.kind == "regression":
        return {}
    if ds.task.kind == "multilabel":
        y = np.asarray(ds.y, dtype=np.float64).reshape(len(ds), -1)
        sums = np.nansum(y == 1, axis=0) if y.shape[1] == len(names) else np.zeros(len(names))
        return {name: int(n) for name, n in zip(names, sums, strict=True)}
    y = np.asarray(ds.y)[_valid_labels(ds)].astype(np.int64)
    counts = np.bincount(y, minlength=len(names))
    return {name: int(counts[i]) for i, name in enumerate(names)}


# What to ask when many classes have no training samples, by the source that named the classes.
LABEL_QUESTIONS = {
    "csv": "is data.label_columns a column of labels? ",
    "image_folder": "is each sub-folder of data.path (or of its train/ folder) a class? ",
}


def _empty_classes(counts: dict[str, dict[str, int]], train: str | None,
                   warnings: list[str], source: str = "") -> list[str]:
    """Fatal lines for classes without training samples (`train`: the training group, None
    when nothing will be trained on it); warnings for the other groups' empty classes. Up to
    MAX_CLASS_LINES classes get a line each; more (a label column of ids) share one line,
    asking what `source` (a Provenance.source) took for classes, where it has a question."""
    empty = [cls for cls, n in counts.get(train, {}).items() if n == 0]
    fix = "add samples (or raise data.limit, if set) or drop it with data.classes"
    if len(empty) > MAX_CLASS_LINES:
        classes = len(counts[train])
        fatal = [f"data: {len(empty)} of {classes} classes have no training samples "
                 f"({_first(empty)}); {LABEL_QUESTIONS.get(source, '')}A class needs "
                 f"samples in the training split: {fix.replace('drop it', 'drop them')}"]
    else:
        fatal = [f"data: class {cls!r} has no training samples; {fix}" for cls in empty]
    for split, per_class in counts.items():
        if split == train:
            continue
        missing = [cls for cls, n in per_class.items() if n == 0]
        if len(missing) > MAX_CLASS_LINES:
            warnings.append(f"data: {len(missing)} classes have no samples in the {split} split "
                            f"({_first(missing)})")
        else:
            warnings += [f"data: class {cls!r} has no samples in the {split} split" for cls in missing]
    return fatal


def _first(names: list[str], k: int = 3) -> str:
    return ", ".join(repr(n) for n in names[:k]) + f" and {len(names) - k} more"


def _constant_labels(task: TaskSpec, counts: dict[str, int], rows: int, train: str,
                     warnings: list[str]) -> None:
    """Multilabel: a label set in every training row has nothing to learn. (A label set in no
    training row is fatal, as a class without training samples.)"""
    if task.kind != "multilabel" or rows == 0:
        return
    warnings += [f"data: label {name!r} is 1 in every sample of {_where(train)}, so there is "
                 f"nothing to learn for it; drop it from data.label_columns"
                 for name, n in counts.items() if n == rows]


# What to ask about a constant regression target, by the source that named the targets.
TARGET_QUESTIONS = {
    "csv": "check that data.label_columns names the target, or ",
    "npz": "check the y array of data.path, or ",
}


def _constant_targets(ds: Dataset, fatal: list[str], warnings: list[str]) -> None:
    """Regression: a target with one value in every sample has nothing to learn. Fatal when
    every target is constant (as a single class is), a warning for one of several targets;
    the line asks what the source took for targets, where it has a question."""
    if ds.task.kind != "regression" or len(ds) < 2:
        return
    source = ds.provenance.source
    y = np.asarray(ds.y, dtype=np.float64).reshape(len(ds), -1)
    lines = []
    for name, col in zip(ds.task.class_names, y.T, strict=False):
        col = col[np.isfinite(col)]
        if len(col) > 1 and (col == col[0]).all():
            lines.append(f"data: regression target {name!r} is {col[0]:g} in every sample, so "
                         f"there is nothing to learn; {TARGET_QUESTIONS.get(source, '')}add "
                         f"samples with other values")
    (fatal if len(lines) == y.shape[1] else warnings).extend(lines)


def _imbalance(counts: dict[str, int], train: str, warnings: list[str]) -> float | None:
    present = {cls: n for cls, n in counts.items() if n > 0}
    if len(present) < 2:
        return None
    big, small = max(present, key=present.get), min(present, key=present.get)
    ratio = present[big] / present[small]
    if ratio > IMBALANCE_WARNING:
        warnings.append(
            f"data: classes are imbalanced in {_where(train)} (largest/smallest = {ratio:.1f}: {big!r} "
            f"{present[big]}, {small!r} {present[small]}); consider balance.method and judge "
            f"by per-class recall, not accuracy"
        )
    return ratio


def _where(group: str) -> str:
    return "the dataset" if group == "all" else f"the {group} split"


def _missing_values(
    ds: Dataset, preprocess: PreprocessConfig | None, fatal: list[str], warnings: list[str]
) -> dict[str, int]:
    """Missing values per table column; fatal where the configured preprocessing won't fill them."""
    if not isinstance(ds.x, pd.DataFrame):
        return {}
    missing = {str(col): int(n) for col, n in ds.x.isna().sum().items() if n > 0}
    for col, n in missing.items():
        numeric = pd.api.types.is_numeric_dtype(ds.x[col])
        key, fix = ("impute", "median or mean") if numeric else ("categorical_impute", "most_frequent")
        rows = row_list(np.flatnonzero(ds.x[col].isna().to_numpy()), ids=ds.ids)
        line = f"data: column {col!r} has {n} missing values (rows {rows})"
        if preprocess is None:
            warnings.append(line)
        elif getattr(preprocess.table, key) == "none":
            fatal.append(f"{line}; set preprocess.table.{key} to {fix}")
    return missing


def _constant_columns(ds: Dataset, warnings: list[str]) -> list[str]:
    if not isinstance(ds.x, pd.DataFrame) or len(ds) < 2:
        return []
    constant = [str(col) for col, n in ds.x.nunique(dropna=False).items() if n <= 1]
    warnings += [f"data: column {col!r} has a single value and carries no information; leave it "
                 f"out of data.feature_columns" for col in constant]
    return constant


def row_hashes(x: np.ndarray | pd.DataFrame) -> np.ndarray:
    """One hash per sample, equal for exactly equal samples.

    Arrays (images, any shape) and texts are hashed with hashlib (BLAKE2b, 128 bits) over each
    row's bytes; tables with pandas' vectorised `hash_pandas_object` (64 bits per row), which
    hashes values, so NaN equals NaN and int 1 equals float 1.0 in the same column.
    """
    if isinstance(x, pd.DataFrame):
        return pd.util.hash_pandas_object(x, index=False).to_numpy()
    if x.dtype == object:
        return np.array([hashlib.blake2b(str(s).encode("utf-8"), digest_size=16).digest()
                         for s in x], dtype=object)
    flat = np.ascontiguousarray(x).reshape(len(x), -1)
    return np.array([hashlib.blake2b(row, digest_size=16).digest() for row in flat], dtype=object)


def _duplicates(
    groups: dict[str, Dataset], warnings: list[str]
) -> tuple[dict[str, int], dict[str, int]]:
    hashes = {name: row_hashes(part.x) for name, part in groups.items()}
    duplicates = {name: len(h) - len(set(h.tolist())) for name, h in hashes.items()}
    for name, n in duplicates.items():
        if n:
            warnings.append(f"data: {_where(name)} has {n} exact duplicate samples; "
                            f"remove them from the source")
    leakage = {}
    for first, second in _LEAKAGE_PAIRS:
        if first in hashes and second in hashes:
            seen = set(hashes[first].tolist())
            n = sum(h in seen for h in hashes[second].tolist())
            leakage[f"{first}/{second}"] = n
            if n:
                warnings.append(f"data: {n} {second} samples also appear in {first} (leakage); "
                                f"remove the duplicates from the source")
    return duplicates, leakage


def _dtype(x: np.ndarray | pd.DataFrame) -> str | dict[str, str]:
    if isinstance(x, pd.DataFrame):
        return {str(col): str(kind) for col, kind in x.dtypes.items()}
    return str(x.dtype)


def _shape_problems(ds: Dataset, groups: dict[str, Dataset], warnings: list[str]) -> None:
    """Warn about samples of the wrong kind: shapes or dtypes that differ, texts that are not."""
    shapes = {name: (part.sample_shape, str(_dtype(part.x))) for name, part in groups.items()}
    if len(set(shapes.values())) > 1:
        warnings.append(f"data: splits differ in sample shape or dtype: {shapes}")
    if ds.modality == "image" and (not isinstance(ds.x, np.ndarray) or ds.x.ndim != 4):
        warnings.append(f"data: images should be an array (N, C, H, W) (got shape "
                        f"{getattr(ds.x, 'shape', None)})")
    elif ds.modality == "text":
        not_str = sum(not isinstance(s, str) for s in ds.x)
        empty = sum(isinstance(s, str) and not s.strip() for s in ds.x)
        if not_str:
            warnings.append(f"data: {not_str} texts are not strings")
        if empty:
            warnings.append(f"data: {empty} texts are empty")
