"""Move an alias only through the gate (`promote`), and back one step (`rollback`); both
recorded in the model's audit log with what was compared.

Events: ``promoted`` (the alias moved; details = the gate's figures), ``promotion_refused``
(nothing moved; same details) and ``rolled_back`` (the alias moved to its previous holder).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlforge.config import load_config
from dlforge.config.lifecycle_schema import check_conditions
from dlforge.errors import ConfigError, NotFoundError
from dlforge.lifecycle.data_once import reading_once
from dlforge.lifecycle.forgetting import forgetting_check
from dlforge.lifecycle.gate import GateResult, judge, predictor_of, score
from dlforge.lifecycle.gate_set import (
    GateSet,
    candidate_test_set,
    check_unseen,
    held_out_set,
    run_config,
    version_splits,
)
from dlforge.registry.holders import holder_stack
from dlforge.registry.model_kind import check_bundle_kind
from dlforge.registry.refs import parse_ref

if TYPE_CHECKING:
    from dlforge.registry import ModelVersion, Store

PROMOTED, REFUSED, ROLLED_BACK = "promoted", "promotion_refused", "rolled_back"
DEFAULT_ALIAS = "production"


def promote(store: Store, name: str, candidate: int | str, *, alias: str | None = None,
            conditions: list[str] | None = None, gate_data: str | Path | None = None) -> GateResult:
    """Run the gate on `candidate` against the holder of `alias`; move the alias if it passes.

    The conditions and alias come from the candidate's run config (`evaluate.gate`) unless
    given. Either way the decision is logged (`promoted` or `promotion_refused`) with every
    compared figure; a refused promotion moves nothing.

    Args:
        store: the registry.
        name: the model.
        candidate: its version number, or a ``NAME@VERSION`` reference of the same model.
        alias: the alias to move; default the gate's (``production``).
        conditions: gate conditions overriding the config's.
        gate_data: a config whose data section is the gate set; default the candidate's test split.

    Returns:
        The gate's result (`passed` says whether the alias moved).

    Raises:
        ConfigError: a malformed condition (before anything is read), a reference to
            another model, a candidate or champion that is a GAN (which predicts nothing to
            gate; refused before the conditions are looked for: a GAN candidate's line says to
            move the alias with `dlforge models alias`, a GAN champion's to remove it with
            `dlforge models unalias` and promote again), a candidate already holding the alias,
            no conditions anywhere, or a condition naming an unmeasured metric.
        DataError: gate rows the candidate or the champion trained on, or classes that differ.
        NotFoundError: unknown model or version.
        StoreError: another process moved the alias while the gate ran (nothing moved).

    Example:
        >>> result = promote(store, "digits", 3)  # doctest: +SKIP
        >>> result.passed, [c.status for c in result.checks]  # doctest: +SKIP
        (True, ['passed', 'skipped'])
    """
    check_conditions(conditions or [])
    version = store.get_version(name, _version_number(name, candidate))
    gate_cfg = run_config(store, version).evaluate.gate if version.run_id else None
    alias = alias or (gate_cfg.alias if gate_cfg else DEFAULT_ALIAS)
    champion = _holder(store, name, alias)
    if champion is not None and champion.version == version.version:
        raise ConfigError(f"--candidate: {version.ref} already holds {name}@{alias}; nothing to promote")
    # a GAN scores nothing: refused before the gate's own checks, whose fixes would not help
    check_bundle_kind(version.ref, version.bundle_path, key="--candidate",
                      fix=f"a gate cannot score it, so point {name}@{alias} at it with "
                          f"`dlforge models alias {name} {alias} {version.version}` (no gate)")
    if champion is not None:
        check_bundle_kind(champion.ref, champion.bundle_path, key="champion",
                          role=f"which holds {name}@{alias}",
                          fix=f"a gate cannot compare {version.ref} with it: remove the alias "
                              f"with `dlforge models unalias {name} {alias}`, then promote "
                              f"{version.ref} again (its absolute conditions are still checked)")
    conditions = conditions or (gate_cfg.conditions if gate_cfg else None)
    if not conditions:
        raise ConfigError(f"evaluate.gate: {version.ref}'s run config has no gate conditions; "
                          f"give some with --require 'accuracy >= 0.9' (repeatable)")
    result = gate(store, version, champion, alias, conditions, gate_data)
    if result.passed:
        store.set_alias(name, alias, version.version, reason=result.summary(), event=PROMOTED,
                        details=result.to_dict(),
                        expect_from=champion.version if champion else None)
    else:
        store.record_event(name, REFUSED, version.version, alias=alias, reason=result.summary(),
                           details=result.to_dict())
    return result


def gate(store: Store, candidate: ModelVersion, champion: ModelVersion | None, alias: str,
         conditions: list[str], gate_data: str | Path | None = None) -> GateResult:
    """Score both models on the gate set (after checking neither trained on it) and judge;
    an update candidate is also held to `update.max_forgetting` (`lifecycle.forgetting`).
    Each data set is loaded once (`data_once`): the candidate's test split and its training
    split, the forgetting check's and the champion's are mostly the same data."""
    with reading_once():
        rows = _gate_set(store, candidate, gate_data)
        compared = [v for v in (candidate, champion) if v is not None]
        trained = {v.ref: version_splits(store, v) for v in compared if v.run_id is not None}
        check_unseen(rows, trained)
        mine = score(predictor_of(candidate), rows)
        theirs = score(predictor_of(champion), rows) if champion else None
        forgetting = forgetting_check(store, candidate)  # updates only
    return GateResult(candidate, champion, alias, rows.source, len(rows),
                      judge(list(conditions), mine, theirs) + forgetting)


def rollback(store: Store, name: str, alias: str = DEFAULT_ALIAS,
             reason: str | None = None) -> tuple[int, int]:
    """Move `alias` back to the version that held it before the current one.

    Returns:
        (from_version, to_version).

    Raises:
        NotFoundError: unknown model or alias.
        ConfigError: the alias has had no previous holder (or rollbacks used them all).
    """
    current = store.get_version(name, alias).version  # NotFoundError for an unknown alias
    stack = holder_stack(store.history(name), alias)
    if len(stack) < 2:
        raise ConfigError(f"rollback: {name}@{alias} (version {current}) has no previous holder "
                          f"to return to; point it elsewhere with `dlforge models alias`")
    target = stack[-2]
    store.set_alias(name, alias, target, event=ROLLED_BACK, expect_from=current,
                    reason=reason or f"rolled back from version {current}")
    return current, target


def _version_number(name: str, candidate: int | str) -> int | str:
    if isinstance(candidate, int) or str(candidate).isdigit():
        return int(candidate)
    other, selector = parse_ref(str(candidate))
    if other != name:
        raise ConfigError(f"--candidate: {candidate!r} is a version of {other!r}, not of {name!r}; "
                          f"a gate compares versions of one model")
    return selector


def _holder(store: Store, name: str, alias: str) -> ModelVersion | None:
    try:
        return store.get_version(name, alias)
    except NotFoundError:
        return None


def _gate_set(store: Store, candidate: ModelVersion, gate_data: str | Path | None) -> GateSet:
    if gate_data is None:
        return candidate_test_set(store, candidate)
    return held_out_set(load_config(Path(gate_data)), str(gate_data))
