"""The capacity ladder (`tune.strategy: capacity_ladder`): start with the smallest model and
grow it while validation improves.

Each rung scales every width of the configured model (units, filters, channels) by a factor,
smallest first, and trains it with ONE call to the fit loop on the data prepared once. The
climb stops at the first rung that does not improve the validation metric, or that overfits:
its generalization gap (val_loss - loss at its best epoch) widens past the previous rung's.
The best rung by validation is the one retrained, as after a search.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from dlforge.candidate import TrainingPlan, train_candidate
from dlforge.config.auto import resolve_auto
from dlforge.config.schema import RunConfig
from dlforge.config.tunable import LADDER_WIDTHS
from dlforge.data.prepare import PreparedData
from dlforge.models import describe_model
from dlforge.registry.engine import public_config
from dlforge.registry.records import current_code_version
from dlforge.tune.results import SearchOutcome, TrialSummary
from dlforge.tune.retrain import trial_record
from dlforge.tune.search import check_search
from dlforge.tune.space import apply_params
from dlforge.tune.study import direction

if TYPE_CHECKING:
    from dlforge.registry import Store

# Rungs as fractions of the configured model's widths: the configured size is the 4th rung.
FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)
# Overfitting: the gap grew by more than half and by more than this much loss.
GAP_GROWTH, GAP_MIN = 1.5, 0.02


def scaled(cfg: RunConfig, factor: float) -> RunConfig:
    """`cfg` with every width of its model multiplied by `factor` (at least 1 each)."""
    values = {}
    for key in LADDER_WIDTHS[cfg.model.type]:
        value = getattr(cfg.model, key)
        if isinstance(value, list):
            values[f"model.{key}"] = [max(1, round(v * factor)) for v in value]
        elif isinstance(value, float):
            values[f"model.{key}"] = min(4.0, value * factor)
        else:
            values[f"model.{key}"] = max(1, round(value * factor))
    return apply_params(cfg, values)


def climb(cfg: RunConfig, data: PreparedData, store: Store, *, device: Any = "cpu",
          progress: bool = True) -> SearchOutcome:
    """Train rungs from the smallest up until one stops improving or overfits.

    At most `tune.n_trials` rungs; `tune.timeout_s` stops the climb between rungs. The schema
    has checked that the model type has widths to grow.

    Raises:
        ConfigError: `tune.metric` is not a validation metric of this task.
    """
    cfg = resolve_auto(cfg, data.facts)  # `auto` keys: as the pipeline resolves them
    check_search(cfg, data.task.kind)
    start, rungs, stop = time.monotonic(), [], "every rung improved validation"
    code_version = current_code_version()  # asks git: once per ladder, not once per rung
    for i, factor in enumerate(FACTORS[: cfg.tune.n_trials]):
        if cfg.tune.timeout_s is not None and time.monotonic() - start >= cfg.tune.timeout_s:
            stop = f"tune.timeout_s ({cfg.tune.timeout_s} s) reached after {i} rungs"
            break
        rungs.append(_train_rung(cfg, data, store, device, i, factor, code_version))
        if progress:
            r = rungs[-1]
            print(f"rung {i} (x{factor}, {r['params']} params): {cfg.tune.metric} {r['value']:.4g}, "
                  f"gap {r['gap']:.4g}", file=sys.stderr, flush=True)
        reason = stop_reason(rungs, cfg.tune.metric)
        if reason:
            stop = reason
            break
    best = _best(rungs, cfg.tune.metric)
    trials = [TrialSummary(r["rung"], "complete", r["value"], r["widths"], r["run_id"], None,
                           r["seconds"]) for r in rungs]
    return SearchOutcome("capacity_ladder", cfg.tune.metric, direction(cfg.tune.metric), trials,
                         trials[best["rung"]] if best else None,
                         scaled(cfg, best["factor"]) if best else None,
                         seconds=round(time.monotonic() - start, 3), stop_reason=stop, rungs=rungs)


def _train_rung(cfg: RunConfig, data: PreparedData, store: Store, device: Any, i: int,
                factor: float, code_version: str) -> dict[str, Any]:
    rcfg = scaled(cfg, factor)
    run = store.create_run(f"{cfg.name}-rung-{i}", public_config(rcfg),
                           data.dataset.provenance.fingerprint, code_version, cfg.seed, kind="trial")
    start = time.monotonic()
    candidate = train_candidate(TrainingPlan(rcfg, data), device=device)
    metric = cfg.tune.metric
    best_row = candidate.best_row(metric)
    rung = {"rung": i, "factor": factor,
            "params": int(describe_model(candidate.model, data.input_shape)["params"]),
            "value": float(best_row[metric]), "gap": float(best_row["val_loss"] - best_row["loss"]),
            "run_id": run.id, "widths": {k: getattr(rcfg.model, k) for k in LADDER_WIDTHS[cfg.model.type]},
            "seconds": round(time.monotonic() - start, 3)}
    store.finish_run(run.id, "completed", history=candidate.history,
                     metrics={metric: rung["value"], "gap": rung["gap"], "rung": i,
                              **trial_record(candidate)})
    return rung


def stop_reason(rungs: list[dict[str, Any]], metric: str) -> str | None:
    """Why the climb stops after the last rung, or None to go on.

    Example:
        >>> stop_reason([{"value": 0.5, "gap": 0.01}, {"value": 0.4, "gap": 0.01}], "val_loss")
    """
    if len(rungs) < 2:
        return None
    last, prev = rungs[-1], rungs[-2]
    best_before = _best(rungs[:-1], metric)["value"]
    better = last["value"] > best_before if direction(metric) == "maximize" else last["value"] < best_before
    if not better:
        return (f"rung {len(rungs) - 1} did not improve {metric} ({last['value']:.4g} vs best "
                f"{best_before:.4g}): more capacity does not help")
    if last["gap"] > GAP_GROWTH * max(prev["gap"], 0.0) and last["gap"] - prev["gap"] > GAP_MIN:
        return (f"rung {len(rungs) - 1} overfits: the generalization gap widened from "
                f"{prev['gap']:.4g} to {last['gap']:.4g}")
    return None


def _best(rungs: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    if not rungs:
        return None
    # ties go to the smaller (earlier) rung
    sign = 1 if direction(metric) == "maximize" else -1
    return max(rungs, key=lambda r: sign * r["value"])  # max keeps the first of equals
