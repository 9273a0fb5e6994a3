"""The search space: `tune.space` checked against the schema, turned into Optuna distributions,
and a trial's values written back into a RunConfig.

Only keys that change the model or its training can be tuned (`model.*`, `train.*`,
`augment.*`): data is prepared once per search and reused by every trial, so keys that would
change the data (splits, preprocessing, balancing) are not tunable.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel

from dlforge.config.load import load_config
from dlforge.config.schema import RangeSpec, RunConfig
from dlforge.errors import ConfigError

TUNABLE_SECTIONS = ("model", "train", "augment")
# Keys that change how training runs, not what it learns, or that only a person should set.
NOT_TUNABLE = frozenset({
    "train.eval_batch_size", "train.num_threads", "train.precision", "train.channels_last",
    "train.time_budget_s", "train.checkpoint.save_best_only", "train.checkpoint.top_k",
    "train.checkpoint.save_last", "train.checkpoint.mode", "train.early_stopping.mode",
    "train.early_stopping.restore_best", "train.schedule.mode",
})
# Which range kinds each kind of key accepts.
ALLOWED = {
    "float": ("uniform", "log_uniform", "int", "choice"),
    "int": ("int", "log_uniform", "choice"),
    "categorical": ("choice",),
    "list": ("choice",),
}


def tunable_keys(cfg: RunConfig) -> dict[str, str]:
    """Every dotted key of `cfg` that a search may vary, with its kind.

    Kinds: `float`, `int`, `categorical` (a fixed set of names or a bool) and `list` (a list
    of ints such as `model.hidden`, tuned by `choice` of whole lists). Keys of the configured
    model type only; optional sections (e.g. `train.early_stopping`) only when they are set.
    """
    found: dict[str, str] = {}
    for section in TUNABLE_SECTIONS:
        _collect(getattr(cfg, section), section, found)
    return {k: v for k, v in sorted(found.items()) if k not in NOT_TUNABLE}


def _collect(node: BaseModel, prefix: str, found: dict[str, str]) -> None:
    for name, info in type(node).model_fields.items():
        key, value = f"{prefix}.{name}", getattr(node, name)
        if isinstance(value, BaseModel):
            _collect(value, key, found)
            continue
        kind = _kind(info.annotation)
        if kind is not None and name != "type":
            found[key] = kind


def _kind(annotation: Any) -> str | None:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _kind(args[0]) if len(args) == 1 else None
    if origin is typing.Annotated:
        return _kind(args[0])
    if origin is Literal or annotation is bool:
        return "categorical"
    if origin is list:
        return "list" if _kind(args[0]) == "int" else None
    return {int: "int", float: "float"}.get(annotation)


def check_space(cfg: RunConfig) -> None:
    """Check every `tune.space` key before any trial starts.

    Raises:
        ConfigError: one line per key that does not exist or cannot be tuned (listing the
            tunable keys), per range kind the key's type does not take, and per bound the
            schema refuses (e.g. a negative learning rate).
    """
    space = cfg.tune.space if cfg.tune else {}
    tunable = tunable_keys(cfg)
    problems = []
    if cfg.tune is not None and cfg.tune.strategy == "search" and not space:
        problems.append("tune.space: nothing to search; give at least one key, e.g. "
                        "train.lr: {log_uniform: [0.0001, 0.1]}, or remove the tune section")
    if cfg.tune is not None and cfg.tune.strategy == "capacity_ladder" and space:
        problems.append(f"tune.space: the capacity ladder grows the model's widths itself and "
                        f"searches nothing else (got {', '.join(space)}); remove tune.space or "
                        f"use tune.strategy: search")
        return _raise(problems)
    for key, spec in space.items():
        kind = tunable.get(key)
        given = _spec_kind(spec)
        if kind is None:
            problems.append(f"tune.space.{key}: not a tunable key of this config (model type "
                            f"{cfg.model.type!r}); tunable keys: {', '.join(tunable)}")
        elif given not in ALLOWED[kind]:
            problems.append(f"tune.space.{key}: a {kind} key takes {' or '.join(ALLOWED[kind])} "
                            f"(got {given})")
        else:
            problems += _bound_problems(cfg, key, _edge_values(spec))
    _raise(problems)


def _raise(problems: list[str]) -> None:
    if problems:
        raise ConfigError("\n".join(problems))


def _bound_problems(cfg: RunConfig, key: str, values: list[Any]) -> list[str]:
    """The schema's complaints about `key` set to each of `values` (ends of a range, choices)."""
    for value in values:
        try:
            apply_params(cfg, {key: value})
        except ConfigError as exc:
            detail = str(exc).splitlines()[0].split(": ", 1)[-1]
            return [f"tune.space.{key}: the value {value!r} is not allowed: {detail}"]
    return []


def _spec_kind(spec: RangeSpec) -> str:
    return next(k for k in ("uniform", "log_uniform", "int", "choice") if getattr(spec, k) is not None)


def _edge_values(spec: RangeSpec) -> list[Any]:
    kind = _spec_kind(spec)
    return list(getattr(spec, kind))


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
        kind = _spec_kind(spec)
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
