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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlforge.config.schema import RunConfig
from dlforge.data.prepare import PreparedData, make_loaders
from dlforge.errors import ConfigError, DlforgeError
from dlforge.models import describe_model
from dlforge.models.for_data import build_for_data
from dlforge.registry.engine import public_config
from dlforge.registry.records import current_code_version
from dlforge.runtime import seed_everything
from dlforge.train.loop import fit
from dlforge.tune.retrain import trial_record
from dlforge.tune.search import check_search
from dlforge.tune.space import apply_params
from dlforge.tune.study import direction

if TYPE_CHECKING:
    from dlforge.registry import Store

# Rungs as fractions of the configured model's widths: the configured size is the 4th rung.
FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)
# Width keys per model type; every one is scaled by the rung's factor.
WIDTHS = {"mlp": ("hidden",), "basic_cnn": ("filters", "dense"), "mobilenet": ("width",),
          "resnet_small": ("width",), "text_pool": ("embedding_dim", "hidden"),
          "text_cnn": ("embedding_dim", "filters"), "autoencoder": ("hidden", "latent_dim")}
# Overfitting: the gap grew by more than half and by more than this much loss.
GAP_GROWTH, GAP_MIN = 1.5, 0.02


@dataclass
class LadderResult:
    """The rungs climbed (one dict each), why the climb stopped, and the best rung's config."""

    metric: str
    rungs: list[dict[str, Any]]
    stop_reason: str
    best_config: RunConfig | None
    seconds: float = 0.0
    best: dict[str, Any] | None = field(default=None)

    def require_best(self) -> RunConfig:
        """The best rung's config. Raises DlforgeError when no rung trained."""
        if self.best_config is None:
            raise DlforgeError(f"tune: no rung of the capacity ladder trained; {self.stop_reason}")
        return self.best_config

    @property
    def best_source(self) -> str:
        """`rung 2`: the best rung, as notes name it."""
        return f"rung {self.best['rung']}"

    @property
    def best_run_id(self) -> str:
        """The best rung's run in the store."""
        return self.best["run_id"]

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": "capacity_ladder", "metric": self.metric, "stop_reason": self.stop_reason,
                "best_rung": self.best["rung"] if self.best else None, "rungs": self.rungs}

    def plots(self) -> list[tuple[str, bytes]]:
        from dlforge.tune.plots import ladder_png

        return [(f"Capacity ladder: {self.metric} and generalization gap per size", ladder_png(self))]


def scaled(cfg: RunConfig, factor: float) -> RunConfig:
    """`cfg` with every width of its model multiplied by `factor` (at least 1 each)."""
    values = {}
    for key in WIDTHS[cfg.model.type]:
        value = getattr(cfg.model, key)
        if isinstance(value, list):
            values[f"model.{key}"] = [max(1, round(v * factor)) for v in value]
        elif isinstance(value, float):
            values[f"model.{key}"] = min(4.0, value * factor)
        else:
            values[f"model.{key}"] = max(1, round(value * factor))
    return apply_params(cfg, values)


def climb(cfg: RunConfig, data: PreparedData, store: Store, *, device: Any = "cpu",
          progress: bool = True) -> LadderResult:
    """Train rungs from the smallest up until one stops improving or overfits.

    At most `tune.n_trials` rungs; `tune.timeout_s` stops the climb between rungs.

    Raises:
        ConfigError: the model type has no widths to grow (e.g. linear), or a bad tune section.
    """
    if cfg.model.type not in WIDTHS:
        raise ConfigError(f"tune.strategy: capacity_ladder grows a model's widths; model.type "
                          f"{cfg.model.type!r} has none. Use one of {', '.join(WIDTHS)}")
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
    best_cfg = scaled(cfg, best["factor"]) if best else None
    return LadderResult(cfg.tune.metric, rungs, stop, best_cfg,
                        round(time.monotonic() - start, 3), best)


def _train_rung(cfg: RunConfig, data: PreparedData, store: Store, device: Any, i: int,
                factor: float, code_version: str) -> dict[str, Any]:
    rcfg = scaled(cfg, factor)
    run = store.create_run(f"{cfg.name}-rung-{i}", public_config(rcfg),
                           data.dataset.provenance.fingerprint, code_version, cfg.seed, kind="trial")
    seed_everything(cfg.seed)
    model = build_for_data(rcfg.model, data)
    params = describe_model(model, data.preprocessor.output_shape)["params"]
    loaders = make_loaders(rcfg, data.dataset, data.tensors, data.balanced, data.preprocessor)
    result = fit(model, loaders, rcfg.train, data.task, seed=cfg.seed, device=device, progress=False)
    metric = cfg.tune.metric
    pick = max if direction(metric) == "maximize" else min
    best_row = pick(result.history, key=lambda row: row[metric])
    rung = {"rung": i, "factor": factor, "params": int(params), "value": float(best_row[metric]),
            "gap": float(best_row["val_loss"] - best_row["loss"]), "run_id": run.id,
            "widths": {k: getattr(rcfg.model, k) for k in WIDTHS[cfg.model.type]}}
    store.finish_run(run.id, "completed", history=result.history,
                     metrics={metric: rung["value"], "gap": rung["gap"], "rung": i,
                              **trial_record(rcfg, data, result, device)})
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
