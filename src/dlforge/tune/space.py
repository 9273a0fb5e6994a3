"""The search space as Optuna distributions, and a trial's values written back into a
RunConfig. Which keys are tunable and whether `tune.space` fits the schema is checked when the
config loads (config/tunable.py)."""

from __future__ import annotations

import json
from typing import Any

from dlforge.config.load import load_config
from dlforge.config.schema import RunConfig
from dlforge.config.tunable import spec_kind, tunable_keys


def distributions(cfg: RunConfig) -> dict[str, Any]:
    """`tune.space` as Optuna distributions, by dotted key.

    `int` and `log_uniform` on an integer key give integer distributions. Choices of lists
    (e.g. `model.hidden: {choice: [[32], [64, 32]]}`) are offered to Optuna as JSON strings,
    since its categorical values must be plain scalars; `trial_values` decodes them.
    """
    import optuna.distributions as od

    kinds = tunable_keys(cfg)
    out: dict[str, Any] = {}
    for key, spec in (cfg.tune.space if cfg.tune else {}).items():
        kind = spec_kind(spec)
        if kind == "choice":
            encode = json.dumps if kinds.get(key) == "list" else (lambda v: v)
            out[key] = od.CategoricalDistribution([encode(v) for v in spec.choice])
        elif kind == "int" or kinds.get(key) == "int":
            low, high = getattr(spec, kind)
            out[key] = od.IntDistribution(int(low), int(high), log=kind == "log_uniform")
        else:
            low, high = getattr(spec, kind)
            out[key] = od.FloatDistribution(float(low), float(high), log=kind == "log_uniform")
    return out


def trial_values(cfg: RunConfig, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's Optuna params as config values (JSON-encoded lists decoded)."""
    kinds = tunable_keys(cfg)
    return {k: json.loads(v) if kinds.get(k) == "list" else v for k, v in params.items()}


def apply_params(cfg: RunConfig, values: dict[str, Any]) -> RunConfig:
    """A copy of `cfg` with each dotted key set to its value, validated again by the schema.

    Raises:
        ConfigError: a value the schema refuses (e.g. dropout 1.0).

    Example:
        >>> apply_params(load_config({}), {"train.lr": 0.01}).train.lr
        0.01
    """
    raw = cfg.model_dump(mode="json")
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    return load_config(raw)
