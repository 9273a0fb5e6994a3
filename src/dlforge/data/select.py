"""Choose which samples and classes a run uses: `data.classes`, `data.binary_from`,
`data.positive_fraction`, `data.normal_classes` (anomaly detection) and `data.limit`, in that
order.

This is how a multiclass source becomes, e.g., a defect-inspection task: Fashion-MNIST with
`binary_from: {defect: [Sandal]}` and `positive_fraction: 0.05` gives ~5% "defect" samples in
every split the source ships.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dlforge.config.rules import no_anomaly_named
from dlforge.data.dataset import Dataset, TaskSpec
from dlforge.data.split import stratify_key
from dlforge.errors import DataError

if TYPE_CHECKING:
    from dlforge.config.schema import DataConfig

_SINGLE_LABEL = ("multiclass", "binary")
ANOMALY_CLASSES = ("normal", "anomaly")


def select(ds: Dataset, cfg: DataConfig, seed: int) -> Dataset:
    """Apply the selection keys of the data section to `ds`.

    - `classes`: keep only these classes, in this order; labels are renumbered 0..K-1 (for
      multilabel, the label columns). Two classes of a multiclass source become a binary task
      whose positive class is the second one listed, unless `data.task` says multiclass.
    - `binary_from` `{positive: [names]}`: those classes become class 1 named `positive`, every
      other class becomes class 0 named `negative_name`.
    - `positive_fraction`: subsample the positives so they are this share of all samples,
      separately in every split the source fixed (`ds.split`). If positives are already rarer,
      negatives are subsampled instead so the share is still met.
    - `normal_classes` (with `anomaly_classes`): an anomaly task, class 0 `normal` (those
      classes) and class 1 `anomaly` (the listed anomaly classes, default every other class;
      samples of a class in neither list are dropped).
    - `limit`: stratified subsample to at most `limit` samples; a source's splits each keep
      their share of it.

    Args:
        ds: the dataset as the source loaded it.
        cfg: the data section.
        seed: seed of every subsample; the same seed gives the same rows.

    Returns:
        A new Dataset (rows in source order). `provenance.details["selection"]` records what
        was applied.

    Raises:
        DataError: unknown class names, or a key that does not fit the task.

    Example:
        >>> from dlforge.config.schema import DataConfig
        >>> cfg = DataConfig(binary_from={"defect": ["Sandal"]}, positive_fraction=0.05)
        >>> select(fashion, cfg, seed=0).task.class_names  # doctest: +SKIP
        ('ok', 'defect')
    """
    rng = np.random.default_rng(seed)
    applied: dict[str, Any] = {}
    if cfg.classes is not None:
        ds = _keep_classes(ds, _positive_last(cfg.classes, cfg.positive_class, cfg.task), cfg.task)
        applied["classes"] = list(cfg.classes)
    if cfg.binary_from is not None:
        if cfg.positive_class not in (None, *cfg.binary_from):
            raise DataError(f"data.positive_class: with data.binary_from the positive class is "
                            f"{next(iter(cfg.binary_from))!r} (got {cfg.positive_class!r}); "
                            f"remove data.positive_class or name that class")
        ds = _to_binary(ds, cfg.binary_from, cfg.negative_name)
        applied["binary_from"] = {k: list(v) for k, v in cfg.binary_from.items()}
    if cfg.positive_fraction is not None:
        ds = _positive_fraction(ds, cfg.positive_fraction, rng)
        applied["positive_fraction"] = cfg.positive_fraction
    if cfg.normal_classes:
        ds = _to_anomaly(ds, cfg.normal_classes, cfg.anomaly_classes)
        applied["normal_classes"] = list(cfg.normal_classes)
        applied["anomaly_classes"] = list(cfg.anomaly_classes or ["(every other class)"])
    if cfg.limit is not None and len(ds) > cfg.limit:
        ds = ds.subset(_limit_index(ds, cfg.limit, rng))
        applied["limit"] = cfg.limit
    if not applied:
        return ds
    details = {**ds.provenance.details, "selection": applied | {"samples": len(ds)}}
    return replace(ds, provenance=replace(ds.provenance, details=details))


def _positive_last(classes: list[str], positive: str | None, task: str | None) -> list[str]:
    """Two kept classes make a binary task whose positive class is the second one."""
    if len(classes) != 2 or task == "multiclass" or positive is None:
        return classes
    if positive not in classes:
        raise DataError(f"data.positive_class: {positive!r} is not one of data.classes {classes}")
    return [c for c in classes if c != positive] + [positive]


def _check_names(key: str, value: Any, names: list[str], ds: Dataset) -> None:
    unknown = [n for n in names if n not in ds.task.class_names]
    if unknown:
        raise DataError(
            f"{key}: unknown classes {unknown} (got {value}); available classes: "
            f"{list(ds.task.class_names)}"
        )
    if len(set(names)) != len(names):
        raise DataError(f"{key}: each class may be named once (got {value})")


def _keep_classes(ds: Dataset, classes: list[str], task: str | None) -> Dataset:
    if ds.task.kind == "regression":
        raise DataError(f"data.classes: a regression task has no classes (got {classes}); remove it")
    _check_names("data.classes", classes, classes, ds)
    old = np.array([ds.task.class_names.index(name) for name in classes], dtype=np.int64)
    if ds.task.kind == "multilabel":
        return replace(ds, y=ds.y[:, old], task=TaskSpec("multilabel", tuple(classes)))
    if len(classes) < 2:
        raise DataError(f"data.classes: keep at least 2 classes (got {classes})")
    keep = np.flatnonzero(np.isin(ds.y, old))
    ds = ds.subset(keep)
    relabel = np.full(len(ds.task.class_names), -1, dtype=np.int64)
    relabel[old] = np.arange(len(old))
    kind = "binary" if len(classes) == 2 and task != "multiclass" else "multiclass"
    return replace(ds, y=relabel[ds.y], task=TaskSpec(kind, tuple(classes)))


def _to_binary(ds: Dataset, binary_from: dict[str, list[str]], negative: str) -> Dataset:
    if ds.task.kind not in _SINGLE_LABEL:
        raise DataError(
            f"data.binary_from: needs a multiclass or binary source (got a {ds.task.kind} task)"
        )
    if len(binary_from) != 1:
        raise DataError(
            f"data.binary_from: give exactly one positive name (got {sorted(binary_from)})"
        )
    (positive, members), = binary_from.items()
    if positive == negative:
        raise DataError(
            f"data.binary_from: the positive name equals data.negative_name (got {positive!r}); "
            f"choose different names"
        )
    _check_names("data.binary_from", binary_from, members, ds)
    codes = [ds.task.class_names.index(name) for name in members]
    y = np.isin(ds.y, codes).astype(np.int64)
    return replace(ds, y=y, task=TaskSpec("binary", (negative, positive)))


def _to_anomaly(ds: Dataset, normal: list[str], anomalous: list[str] | None) -> Dataset:
    if ds.task.kind not in _SINGLE_LABEL:
        raise DataError(f"data.normal_classes: needs a multiclass or binary source to say which "
                        f"samples are normal (got a {ds.task.kind} task)")
    _check_names("data.normal_classes", normal, normal, ds)
    names = list(ds.task.class_names)
    others = [n for n in names if n not in normal]
    if anomalous == []:  # a RunConfig refuses it (config.rules); a DataConfig alone gets here
        raise DataError(no_anomaly_named(normal))
    if anomalous is None and not others:
        raise DataError(f"data.normal_classes: names every class {names}, which leaves no "
                        f"anomaly to test on; leave the anomalous classes out of it")
    is_normal = np.isin(ds.y, [names.index(n) for n in normal])
    if anomalous is None:
        keep = np.arange(len(ds))
    else:
        _check_names("data.anomaly_classes", anomalous, anomalous, ds)
        keep = np.flatnonzero(is_normal | np.isin(ds.y, [names.index(n) for n in anomalous]))
    y = (~is_normal[keep]).astype(np.int64)
    return replace(ds.subset(keep), y=y, task=TaskSpec("anomaly", ANOMALY_CLASSES))


def _positive_fraction(ds: Dataset, fraction: float, rng: np.random.Generator) -> Dataset:
    if ds.task.kind != "binary":
        raise DataError(
            f"data.positive_fraction: needs a binary task (got a {ds.task.kind} task with "
            f"classes {list(ds.task.class_names)}); build one with data.binary_from"
        )
    keep = [
        _fraction_index(group, ds.y[group], fraction, rng) for group in _split_groups(ds)
    ]
    return ds.subset(np.sort(np.concatenate(keep)))


def _fraction_index(
    rows: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Rows to keep so that positives (y == 1) are `fraction` of them."""
    pos, neg = rows[y == 1], rows[y == 0]
    want_pos = int(np.floor(fraction * len(neg) / (1 - fraction) + 0.5))
    if want_pos <= len(pos):
        pos = rng.choice(pos, size=want_pos, replace=False)
    elif len(pos):  # positives are already rarer than asked: thin the negatives instead
        want_neg = int(np.floor(len(pos) * (1 - fraction) / fraction + 0.5))
        neg = rng.choice(neg, size=min(want_neg, len(neg)), replace=False)
    return np.concatenate([pos, neg])


def _split_groups(ds: Dataset) -> list[np.ndarray]:
    """Row positions per split the source fixed, or all rows as one group."""
    if ds.split is None:
        return [np.arange(len(ds))]
    marks = np.asarray(ds.split).astype(str)
    return [np.flatnonzero(marks == name) for name in sorted(set(marks))]


def _limit_index(ds: Dataset, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most `limit` rows, shared among the source's splits by size, stratified in each."""
    groups = _split_groups(ds)
    quotas = _largest_remainder(np.array([len(g) for g in groups]), limit)
    key = stratify_key(ds.y, ds.task)
    keep = [_stratified_take(g, key[g], q, rng) for g, q in zip(groups, quotas, strict=True)]
    return np.sort(np.concatenate(keep))


def _stratified_take(
    rows: np.ndarray, key: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """`k` of `rows`, each stratum contributing in proportion to its size.

    When `k` allows, every stratum keeps at least one row, so a quick run on `limit` samples
    does not silently lose a rare class.
    """
    strata, inverse = np.unique(key, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(strata))
    floor = 1 if k >= len(strata) else 0
    quotas = floor + _largest_remainder(sizes - floor, k - floor * len(strata))
    return np.concatenate([
        rng.choice(rows[inverse == i], size=q, replace=False) for i, q in enumerate(quotas)
    ])


def _largest_remainder(sizes: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over groups in proportion to `sizes` (Hamilton's method), exact sum."""
    if total <= 0 or sizes.sum() == 0:
        return np.zeros(len(sizes), dtype=np.int64)
    exact = sizes * (total / sizes.sum())
    quotas = np.floor(exact).astype(np.int64)
    # ties broken by the larger group first, then by position, so the result is deterministic
    order = np.lexsort((np.arange(len(sizes)), -sizes, -(exact - quotas)))
    quotas[order[: total - quotas.sum()]] += 1
    return np.minimum(quotas, sizes)
