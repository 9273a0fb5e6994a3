"""The rows a gate scores both models on, and the check that neither model trained on them.

By default the gate set is the candidate's own test split (rebuilt from its run's stored
config, as `dlforge evaluate` does); `--gate-data CONFIG` names held-out data instead (every
row of that config's data section). Either way no row may appear in the training or
validation split of the candidate or of the champion: a model scored on rows it learned from
would be flattered, and the comparison would be unfair.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dlforge.config import load_config
from dlforge.data.validate import row_hashes
from dlforge.errors import DataError
from dlforge.lifecycle.data_once import load_once

if TYPE_CHECKING:
    from dlforge.config import RunConfig
    from dlforge.data.dataset import Splits
    from dlforge.registry import ModelVersion, Store


@dataclass(frozen=True)
class GateSet:
    """Raw inputs and labels of the gate set, with where they came from.

    Attributes:
        x: raw inputs (what a `Predictor` takes); y: the labels.
        class_names: the data's classes, in label order.
        source: e.g. ``"test split of run 3f2a (digits@2)"``.
    """

    x: Any
    y: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.y)

    def on_classes(self, names: tuple[str, ...], ref: str) -> GateSet:
        """These rows labelled in `names` (a model's classes), when the set's classes are a
        subset of them (single-label tasks).

        Raises:
            DataError: a class of the set is not in `names`, or multilabel sets that differ.
        """
        index = [names.index(c) if c in names else -1 for c in self.class_names]
        if -1 in index or self.y.ndim != 1:
            raise DataError(f"gate set: its classes {list(self.class_names)} differ from "
                            f"{ref}'s {list(names)}; gate models of the same classes")
        return replace(self, y=np.asarray(index, dtype=np.int64)[self.y], class_names=names)


def run_config(store: Store, version: ModelVersion) -> RunConfig:
    """The config of the run that trained `version`.

    Raises:
        DataError: the version was registered without a run, so its data is unknown.
    """
    if version.run_id is None:
        raise DataError(f"{version.ref}: registered without a run, so its training data is "
                        f"unknown; gate it on held-out data with --gate-data CONFIG")
    raw = dict(store.get_run(version.run_id).config)
    raw["registry"] = {**raw.get("registry", {}), "url": None}  # stored masked; data needs none
    return load_config(raw)


def version_splits(store: Store, version: ModelVersion) -> Splits:
    """The train/validation/test splits `version` was trained with, rebuilt from its run
    (once per `data_once.reading_once` block)."""
    return load_once(run_config(store, version))[1]


def candidate_test_set(store: Store, version: ModelVersion) -> GateSet:
    """The candidate's own test split."""
    dataset, splits, _ = load_once(run_config(store, version))
    return GateSet(splits.test.x, np.asarray(splits.test.y), tuple(dataset.task.class_names),
                   f"test split of run {version.run_id} ({version.ref})")


def held_out_set(cfg: RunConfig, path: str) -> GateSet:
    """Every row of `cfg`'s data section (after its class selection), loaded for scoring: a
    class without training samples there is no error (no model is trained on it)."""
    dataset, _, _ = load_once(cfg, training=False)
    return GateSet(dataset.x, np.asarray(dataset.y), tuple(dataset.task.class_names),
                   f"data of {path}")


def check_unseen(gate: GateSet, trained: dict[str, Splits],
                 fix: str = "gate on data neither model learned from (--gate-data CONFIG with "
                            "held-out data)") -> None:
    """Refuse a gate set sharing rows with what any model trained or validated on.

    Args:
        gate: the gate set.
        trained: ``{"digits@2": splits, ...}`` of the models compared.
        fix: what the message tells the user to do.

    Raises:
        DataError: one line per model whose training or validation data holds gate rows.
    """
    seen = set(row_hashes(gate.x).tolist())
    problems = []
    for ref, splits in trained.items():
        for part in ("train", "val"):
            rows = getattr(splits, part)
            n = len(seen.intersection(row_hashes(rows.x).tolist()))
            if n:
                problems.append(f"gate set: {n} of its {len(gate)} rows ({gate.source}) are in "
                                f"the {part} split {ref} trained with; {fix}")
    if problems:
        raise DataError("\n".join(problems))
