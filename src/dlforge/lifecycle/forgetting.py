"""Forgetting: how much an update lost on what its lineage first learned.

The figure is the task metric (accuracy; r2 for regression; subset accuracy for multilabel) on the ORIGINAL model's test
split (the first version of the lineage, rebuilt from its run's config), scored for the
updated source (before) and the candidate (after), in this process. The gate adds it as a
condition of every update candidate: refused when the drop exceeds `update.max_forgetting`
(reported only when that is null).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlforge.lifecycle.gate import FAILED, PASSED, Check, predictor_of, score
from dlforge.lifecycle.gate_set import candidate_test_set, check_unseen, run_config, version_splits
from dlforge.lifecycle.update import lineage_root

if TYPE_CHECKING:
    from dlforge.registry import ModelVersion, Store

REPORTED = "reported"
METRICS = ("accuracy", "r2", "subset_accuracy", "macro_f1")  # the first the task has


def forgetting_check(store: Store, candidate: ModelVersion) -> Check | None:
    """The forgetting condition of an update candidate; None for a version that is not one.

    Raises:
        DataError: the candidate trained on rows of the original test split.
    """
    if candidate.run_id is None:
        return None
    cfg = run_config(store, candidate)
    if cfg.update.source is None:
        return None
    source = store.resolve(cfg.update.source)
    original = lineage_root(store, source)
    rows = candidate_test_set(store, original)
    check_unseen(rows, {candidate.ref: version_splits(store, candidate)})
    before = score(predictor_of(source), rows)
    after = score(predictor_of(candidate), rows)
    metric = next(m for m in METRICS if m in after)
    limit = cfg.update.max_forgetting
    label = f"{metric} on {original.ref}'s test split"
    if limit is None:
        return Check("forgetting (reported)", label, after[metric], before[metric], None, REPORTED)
    bound = before[metric] - limit
    return Check(f"forgetting <= {limit:g}", label, after[metric], before[metric], bound,
                 PASSED if after[metric] >= bound else FAILED)
