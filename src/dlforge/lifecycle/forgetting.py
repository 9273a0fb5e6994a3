"""Forgetting: how much an update lost on what its lineage first learned.

The figure is the task metric (accuracy; r2 for regression; subset accuracy for multilabel) on
the ORIGINAL model's test split (the lineage root, `update.lineage_root`, rebuilt from its
run's config), scored in this process for the candidate (after), the updated source (the
parent) and the root. The gate adds two conditions to every update candidate: after >= parent
- `update.max_forgetting`, and after >= root - `update.max_forgetting` (so a chain of accepted
updates cannot lose N x the limit). Reported only when the limit is null; skipped (never
passed) when the root was registered without a run (`update_config` refuses a limit then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlforge.lifecycle.gate import FAILED, PASSED, SKIPPED, Check, predictor_of, score
from dlforge.lifecycle.gate_set import candidate_test_set, check_unseen, run_config, version_splits
from dlforge.lifecycle.update import lineage_root

if TYPE_CHECKING:
    from dlforge.registry import ModelVersion, Store

REPORTED = "reported"
METRICS = ("accuracy", "r2", "subset_accuracy", "macro_f1")  # the first the task has


def forgetting_check(store: Store, candidate: ModelVersion) -> tuple[Check, ...]:
    """The forgetting conditions of an update candidate (vs its parent, vs the lineage root);
    none for a version that is not an update.

    Raises:
        DataError: the candidate trained on rows of the original test split.
    """
    if candidate.run_id is None:
        return ()
    cfg = run_config(store, candidate)
    if cfg.update.source is None:
        return ()
    source = store.resolve(cfg.update.source)
    original = lineage_root(store, source)
    if original.run_id is None:
        return (Check("forgetting: no original test split", f"{original.ref} was registered "
                      f"without a run", float("nan"), None, None, SKIPPED),)
    rows = candidate_test_set(store, original)
    check_unseen(rows, {candidate.ref: version_splits(store, candidate)})
    after = score(predictor_of(candidate), rows)
    metric = next(m for m in METRICS if m in after)
    parent = score(predictor_of(source), rows)[metric]
    root = parent if original.version == source.version else score(predictor_of(original), rows)[metric]
    label = f"{metric} on {original.ref}'s test split"
    limit = cfg.update.max_forgetting
    return (_bound(f"vs parent {source.ref}", label, after[metric], parent, limit),
            _bound(f"vs original {original.ref}", label, after[metric], root, limit))


def _bound(against: str, label: str, after: float, before: float, limit: float | None) -> Check:
    if limit is None:
        return Check(f"forgetting {against} (reported)", label, after, before, None, REPORTED)
    bound = before - limit
    return Check(f"forgetting {against} <= {limit:g}", label, after, before, bound,
                 PASSED if after >= bound else FAILED)
