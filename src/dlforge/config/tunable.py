"""Which config keys a search may vary, and the checks of `tune.space` against the schema.

Only keys that change the model or its training can be tuned (`model.*`, `train.*`,
`augment.*`): data is prepared once per search and reused by every trial, so keys that would
change the data (splits, preprocessing, balancing) are not tunable.
"""

from __future__ import annotations

import types
import typing
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from dlforge.config.messages import format_validation_error

if TYPE_CHECKING:
    from dlforge.config.schema import RangeSpec, RunConfig

TUNABLE_SECTIONS = ("model", "train", "augment")
# Keys that change how training runs, not what it learns, or that only a person should set.
NOT_TUNABLE = frozenset({
    "train.eval_batch_size", "train.num_threads", "train.precision", "train.channels_last",
    "train.dropout_kernel", "train.dense_kernel", "train.conv_bias_grad", "train.time_budget_s", "train.checkpoint.save_best_only",
    "train.checkpoint.top_k",
    "train.checkpoint.save_last", "train.checkpoint.mode", "train.early_stopping.mode",
    "train.early_stopping.restore_best", "train.schedule.mode", "train.val_every",
})
AUTO_HINT = ": name a model.type to tune its keys"
# Which range kinds each kind of key accepts.
ALLOWED = {
    "float": ("uniform", "log_uniform", "int", "choice"),
    "int": ("int", "log_uniform", "choice"),
    "categorical": ("choice",),
    "list": ("choice",),
}
# The capacity ladder's width keys per model type; every one is scaled by a rung's factor.
LADDER_WIDTHS = {"mlp": ("hidden",), "basic_cnn": ("filters", "dense"), "mobilenet": ("width",),
                 "resnet_small": ("width",), "text_pool": ("embedding_dim", "hidden"),
                 "text_cnn": ("embedding_dim", "filters"), "autoencoder": ("hidden", "latent_dim")}


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
    # `Literal["auto"]` beside a number (train.epochs) is left to the data: the number is tuned
    args = [a for a in typing.get_args(annotation)
            if a is not type(None) and typing.get_args(a) != ("auto",)]
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


def space_problems(cfg: RunConfig) -> list[str]:
    """One line per `tune.space` key that does not exist or cannot be tuned (listing the
    tunable keys), per range kind the key's type does not take, and per bound the schema
    refuses (e.g. a negative learning rate)."""
    space = cfg.tune.space if cfg.tune else {}
    if cfg.tune is not None and cfg.tune.strategy == "search" and not space:
        return ["tune.space: nothing to search; give at least one key, e.g. "
                "train.lr: {log_uniform: [0.0001, 0.1]}, or remove the tune section"]
    if cfg.tune is not None and cfg.tune.strategy == "capacity_ladder" and space:
        return [f"tune.space: the capacity ladder grows the model's widths itself and searches "
                f"nothing else (got {', '.join(space)}); remove tune.space or use "
                f"tune.strategy: search"]
    tunable = tunable_keys(cfg)
    problems = []
    for key, spec in space.items():
        kind, given = tunable.get(key), spec_kind(spec)
        if kind is None:
            problems.append(f"tune.space.{key}: not a tunable key of this config (model type "
                            f"{cfg.model.type!r}{AUTO_HINT if cfg.model.type == 'auto' else ''}"
                            f"); tunable keys: {', '.join(tunable)}")
        elif given not in ALLOWED[kind]:
            problems.append(f"tune.space.{key}: a {kind} key takes {' or '.join(ALLOWED[kind])} "
                            f"(got {given})")
        else:
            problems += _bound_problems(cfg, key, list(getattr(spec, given)))
    return problems


def grid_problems(cfg: RunConfig) -> list[str]:
    """Grid search needs a finite set of values per key: `choice` or `int` ranges."""
    if cfg.tune is None or cfg.tune.sampler != "grid":
        return []
    return [f"tune.space.{key}: the grid sampler needs choice or int ranges (got {kind}); list "
            f"the values to try, e.g. {{choice: [..]}}, or use tune.sampler: random"
            for key, spec in cfg.tune.space.items()
            if (kind := spec_kind(spec)) in ("uniform", "log_uniform")]


def spec_kind(spec: RangeSpec) -> str:
    """`uniform`, `log_uniform`, `int` or `choice`: the one range kind `spec` gives."""
    return next(k for k in ("uniform", "log_uniform", "int", "choice") if getattr(spec, k) is not None)


def _bound_problems(cfg: RunConfig, key: str, values: list[Any]) -> list[str]:
    """The schema's complaint about `key` set to one of `values` (ends of a range, choices).

    Only the key's section is validated again (e.g. `train`), not the whole config, whose own
    validation runs these checks."""
    section, _, rest = key.partition(".")
    node = getattr(cfg, section)
    for value in values:
        raw = node.model_dump(mode="json")
        *parents, leaf = rest.split(".")
        target = raw
        for part in parents:
            target = target[part]
        target[leaf] = value
        try:
            type(node).model_validate(raw)
        except ValidationError as exc:
            detail = format_validation_error(exc).splitlines()[0].split(": ", 1)[-1]
            return [f"tune.space.{key}: the value {value!r} is not allowed: {detail}"]
    return []
