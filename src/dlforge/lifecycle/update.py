"""Online updates: continue training a registered model on fresh data mixed with its replay
buffer, through the one path (`train_candidate`), as a new version of the same model.

The source's weights are the start, its fitted preprocessing is reused (never refitted: the
weights were learned on what it produces), fresh labels are mapped onto the source's classes,
and replayed samples (`update.replay_ratio` of the training mix) come from the buffer kept in
its bundle (`lifecycle.replay`). The new version must then pass the gate against the alias's
holder, including the forgetting check (`lifecycle.forgetting`), before it serves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor, nn

from dlforge.candidate import TrainingPlan
from dlforge.config import RunConfig, load_config
from dlforge.config.lifecycle_schema import check_conditions
from dlforge.data.dataset import Dataset, Splits, TaskSpec
from dlforge.data.prepare import prepare_splits
from dlforge.data.select import select
from dlforge.data.sources import load_dataset
from dlforge.errors import ConfigError, DataError, NotFoundError
from dlforge.lifecycle.data_once import load_once
from dlforge.lifecycle.gate_set import GateSet, check_unseen, run_config, version_splits
from dlforge.lifecycle.replay import read_replay
from dlforge.lifecycle.transfer import check_fits
from dlforge.registry.bundle import load_bundle
from dlforge.registry.model_kind import check_bundle_kind
from dlforge.registry.refs import parse_ref

if TYPE_CHECKING:
    from dlforge.registry import ModelVersion, Store

CLASSIFICATION = ("binary", "multiclass")
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
# What a data path keeps from the source's data section: how its files are read and split.
# The class mapping (binary_from, normal_classes ...) too: the source learned the classes it made.
KEPT_DATA_KEYS = ("task", "label_columns", "text_column", "feature_columns", "categorical_columns",
                  "positive_class", "image_size", "color", "val_fraction", "test_fraction", "stratify",
                  "classes", "binary_from", "negative_name", "normal_classes", "anomaly_classes",
                  "split_column")


@dataclass(frozen=True)
class Update:
    """An update's training plan and what it is made of.

    Attributes:
        plan: the candidate's plan (source weights, fresh + replayed training samples).
        source: the version updated (the new one's parent).
        fresh, replayed: training samples of each kind in the mix.
    """

    plan: TrainingPlan
    source: ModelVersion
    fresh: int
    replayed: int


def data_kind(path: Path) -> str:
    """The data source that reads `path`: an image folder, a CSV or an .npz file.

    Raises:
        ConfigError: a path that does not exist, or one none of them reads (a usage error:
            the command line names the wrong thing, as a missing config file does).

    Example:
        >>> data_kind(Path("new_digits.npz"))  # doctest: +SKIP
        'npz'
    """
    if path.is_dir():
        return "image_folder"
    kinds = {".csv": "csv", ".npz": "npz"}
    if path.suffix.lower() not in kinds:
        raise ConfigError(f"--data: {str(path)!r} is neither a run config ({', '.join(CONFIG_SUFFIXES)}), "
                          f"an image folder, a .csv nor an .npz file; give one of those")
    if not path.is_file():
        raise ConfigError(f"--data: {str(path)!r} does not exist; give an existing image folder, "
                          f".csv or .npz file")
    return kinds[path.suffix.lower()]


def update_config(store: Store, ref: str, data: str | Path, *, conditions: list[str] | None = None,
                  overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """The run config of an update of `ref` on `data`.

    Args:
        store: the registry.
        ref: ``NAME@ALIAS`` (the alias the gate guards) or ``NAME@VERSION``.
        data: a run config (its data, train, update and gate sections are used) or a data
            path read like the source's data (image folder, .csv, .npz).
        conditions: gate conditions overriding the config's `evaluate.gate`.
        overrides: ``key=value`` overrides of the data config (`update.*`, `train.epochs` ...;
            the model, train.lr and the gate are then set as described below).

    Returns:
        The config: the source's model, `update.source` pinned to the resolved version, the
        gate on the alias, LR `update.lr` or `train.lr * update.lr_mult` of the lineage's
        first version (a chain of updates does not shrink it further). A data path takes
        the other sections from that first version's run config.

    Raises:
        NotFoundError: unknown model, version or alias.
        ConfigError: a malformed condition in `conditions`, no gate conditions; a GAN source
            (before any data is read); a path that
            does not exist or is neither a config nor data; or a lineage root registered
            without a run with a data path, or with `update.max_forgetting` set (there is no
            test split to bound).

    Example:
        >>> cfg = update_config(store, "digits@production", "new_digits.npz")  # doctest: +SKIP
        >>> cfg.update.source, cfg.evaluate.gate.alias  # doctest: +SKIP
        ('digits@1', 'production')
    """
    check_conditions(conditions or [])
    source = store.resolve(ref)
    check_source_kind(source)
    name, selector = parse_ref(ref)
    base = base_config(store, source)
    path = Path(data)
    if path.suffix.lower() in CONFIG_SUFFIXES:
        raw = load_config(path).model_dump(mode="json")
    elif base is None:
        raise ConfigError(f"--data: {source.ref} was registered without a run, so how its data "
                          f"is read is unknown; give a run config (YAML) with a data section")
    else:
        raw = base.model_dump(mode="json")
        kept = {k: raw["data"][k] for k in KEPT_DATA_KEYS}
        raw["data"] = {"source": data_kind(path), "path": str(path), **kept}
    cfg = load_config(raw, list(overrides))
    if base is None and cfg.update.max_forgetting is not None:
        raise ConfigError(f"update.max_forgetting: {source.ref}'s lineage starts with a version "
                          f"registered without a run, so there is no original test split to "
                          f"measure forgetting on; set update.max_forgetting=null (the gate then "
                          f"reports the check as skipped)")
    gate = cfg.evaluate.gate
    conditions = list(conditions or (gate.conditions if gate else []))
    if not conditions:
        raise ConfigError(f"evaluate.gate: an update must pass the gate, and {path} names no "
                          f"conditions; give some with --require 'accuracy >= champion - 0.01'")
    lr = cfg.update.lr or (base or cfg).train.lr * cfg.update.lr_mult
    raw = cfg.model_dump(mode="json") | {"tune": None, "name": name}
    raw["model"] = load_bundle(source.bundle_path).model_config
    raw["train"] = {**raw["train"], "lr": lr}
    raw["transfer"] = {**raw["transfer"], "source": None}
    raw["update"] = {**raw["update"], "source": source.ref}
    raw["registry"] = {**raw["registry"], "model_name": name, "alias": None, "enabled": True}
    alias = selector if isinstance(selector, str) and selector != "latest" else None
    raw["evaluate"]["gate"] = {"conditions": conditions, "promote": False,
                               "alias": alias or (gate.alias if gate else "production")}
    return load_config(raw)


def check_source_kind(source: ModelVersion, key: str = "model") -> None:
    """Refuse a GAN source (it has no labels to update on) before anything is read.

    Raises:
        ConfigError: the source is a GAN (`registry.model_kind.check_bundle_kind`).
    """
    check_bundle_kind(source.ref, source.bundle_path, key=key,
                      fix="update a model that predicts (a classifier, a regressor or an anomaly "
                          "detector: `dlforge models list` shows each model's type); a GAN "
                          "learns new data by training again (`dlforge run`)")


def update_plan(cfg: RunConfig, store: Store) -> Update:
    """The plan of an update candidate of `cfg.update.source` on `cfg`'s data.

    Raises:
        NotFoundError: the source version is gone.
        ConfigError: the source is a GAN (before the data is read).
        DataError: no new training samples, classes the source does not predict, samples
            its preprocessing cannot turn into its input shape, or test rows (the gate set)
            the source trained or validated on.
    """
    source = store.resolve(cfg.update.source)
    check_source_kind(source, key="update.source")  # before the data
    bundle = load_bundle(source.bundle_path)
    dataset, splits, report = _fresh_data(cfg)
    try:
        check_fits(bundle, source.ref, dataset)
    except DataError as exc:  # the check names transfer.source: this is an update's source
        raise DataError(str(exc).replace("transfer.source:", "update:", 1)) from None
    dataset, splits = on_source_classes(dataset, splits, bundle.task, source.ref)
    _check_test_rows_unseen(store, [source, _champion(store, source, cfg)], dataset, splits)
    data = prepare_splits(cfg, dataset, splits, report, preprocessor=bundle.preprocessor)
    buffer = read_replay(source.bundle_path)
    if buffer is None:
        report.warnings.append(f"update: {source.ref} has no replay buffer (registered before "
                               f"dlforge kept one, or with update.replay_size 0), so this update "
                               f"trains on the new data only; the gate still measures forgetting")
        picks, mixed = np.empty(0, dtype=np.int64), data
    else:
        picks = buffer.draw(len(data.inputs("train")), cfg.update.replay_ratio, cfg.seed)
        mixed = data.with_training(buffer.x[picks], buffer.y[picks])
    fresh = len(data.inputs("train"))
    trained_on = {"splits": "train", "samples": fresh + len(picks),
                  "update": {"source": source.ref, "data": dataset.provenance.source,
                             "fresh": fresh, "replayed": len(picks),
                             "replay_share": round(len(picks) / (fresh + len(picks)), 4),
                             "lr": cfg.train.lr}}
    plan = TrainingPlan(cfg, mixed, trained_on=trained_on,
                        prepare_model=partial(continue_from, state=bundle.model.state_dict()))
    return Update(plan, source, fresh, len(picks))


def _champion(store: Store, source: ModelVersion, cfg: RunConfig) -> ModelVersion | None:
    """The version the gate compares the update with (its alias's holder), when there is one."""
    try:
        return store.resolve(f"{source.name}@{cfg.evaluate.gate.alias}")
    except NotFoundError:
        return None


def _check_test_rows_unseen(store: Store, versions: list[ModelVersion | None], dataset: Dataset,
                            splits: Splits) -> None:
    """The gate scores the update on its data's test split: refuse, before training, test rows
    the source or the champion (`versions`) trained or validated on (the gate would refuse
    them after training and registering). A version registered without a run has no known
    splits; the gate says so."""
    known = {v.ref: v for v in versions if v is not None and v.run_id is not None}
    if not known:
        return
    test = GateSet(splits.test.x, np.asarray(splits.test.y), tuple(dataset.task.class_names),
                   "test split of the update's data")
    check_unseen(test, {ref: version_splits(store, v) for ref, v in known.items()},
                 fix="the gate scores the update on them; give data the model has not seen")


def _fresh_data(cfg: RunConfig) -> tuple[Dataset, Splits, Any]:
    """The update's data, loaded and split (once per `data_once.reading_once` block: the gate
    reads it again); no samples at all is said as such (the split would otherwise complain
    about its fractions)."""
    try:
        return load_once(cfg)
    except DataError:
        if len(select(load_dataset(cfg.data), cfg.data, cfg.seed)) == 0:
            raise DataError(f"update: {cfg.data.path or cfg.data.name} holds no samples; an update "
                            f"needs new labelled samples to learn from") from None
        raise


def continue_from(model: nn.Module, *, state: dict[str, Tensor]) -> nn.Module:
    """Load the source's weights, all of them, into the freshly built `model`."""
    model.load_state_dict(state)
    return model


def on_source_classes(dataset: Dataset, splits: Splits, task: TaskSpec,
                      ref: str) -> tuple[Dataset, Splits]:
    """The fresh data labelled in the source's classes (fresh data may hold fewer classes).

    Raises:
        DataError: another kind of task, or classes the source does not predict.
    """
    fresh = dataset.task
    if task.kind not in CLASSIFICATION or fresh.kind not in CLASSIFICATION:
        if (fresh.kind, tuple(fresh.class_names)) != (task.kind, tuple(task.class_names)):
            raise DataError(f"update: {ref} predicts {task.kind} {list(task.class_names)}, this "
                            f"data is {fresh.kind} {list(fresh.class_names)}; update it with data "
                            f"of the same task")
        return dataset, splits
    unknown = [c for c in fresh.class_names if c not in task.class_names]
    if len(unknown) == len(fresh.class_names):
        raise DataError(f"update: none of the data's classes {unknown} is one of {ref}'s "
                        f"{list(task.class_names)}; train a model for new classes with "
                        f"`dlforge finetune CONFIG --from {ref}`")
    if unknown:
        raise DataError(f"update: classes {unknown} of the data are not among {ref}'s "
                        f"{list(task.class_names)}; keep the known ones with data.classes, or "
                        f"add classes with `dlforge finetune`")
    index = np.array([task.class_names.index(c) for c in fresh.class_names], dtype=np.int64)

    def relabel(ds: Dataset) -> Dataset:
        return replace(ds, y=index[np.asarray(ds.y, dtype=np.int64)], task=task)

    return relabel(dataset), replace(splits, train=relabel(splits.train), val=relabel(splits.val),
                                     test=relabel(splits.test))


def base_config(store: Store, source: ModelVersion) -> RunConfig | None:
    """The run config of `source`'s lineage root (its settings, not a previous update's: no
    compounding); None when the root was registered without a run."""
    root = lineage_root(store, source)
    return run_config(store, root) if root.run_id else None


def lineage_root(store: Store, version: ModelVersion) -> ModelVersion:
    """The first version of `version`'s line of updates: following `parent_version` back, but
    stopping at a version made by `dlforge finetune` (its run has `transfer.source`): the
    versions before it may predict other classes from other data."""
    seen: set[int] = set()
    while version.parent_version is not None and version.version not in seen:
        if version.run_id and run_config(store, version).transfer.source is not None:
            break
        seen.add(version.version)
        version = store.get_version(version.name, version.parent_version)
    return version
