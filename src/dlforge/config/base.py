"""What every config section shares: unknown keys fail, a loaded config is frozen, numbers are
finite and booleans are not numbers."""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterator
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

# A model name is also a directory name under artifacts/models/; registry/refs.py uses these too.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ALIAS_PATTERN = r"^[a-z][a-z0-9_-]*$"

# The error type of `Section._plain_numbers`; config/load.py turns it into one line per field.
FIELD_PROBLEMS = "field_problems"


class Section(BaseModel):
    """Base of every config section: unknown keys fail; frozen, so a config that loaded (and
    passed every cross-field rule) stays the config that runs. Derive a changed copy with
    `load_config(cfg, overrides)` or `tune.space.apply_params`.

    Numbers are finite: no field takes inf or NaN, whether written as a number (``.inf``, in
    a list, or in a value of type ``Any`` such as `tune.space.*.choice`) or as text that a
    float field would parse (``"1e400"``; ``allow_inf_nan=False``). Booleans are not numbers: integer and float fields (and lists of
    them) refuse ``true``/``false``, which pydantic would otherwise read as 1 and 0.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _plain_numbers(cls, data: Any) -> Any:
        # A model validator, not a field validator on "*": pydantic refuses a `before` field
        # validator on the `type` field that selects a model or schedule.
        if not isinstance(data, dict):
            return data
        problems = [(name, problem, value) for name, value in data.items()
                    if name in cls.model_fields and (problem := _number_problem(cls, name, value))]
        if problems:
            message = "; ".join(f"{name}: {problem} (got {value!r})" for name, problem, value in problems)
            raise PydanticCustomError(FIELD_PROBLEMS, message, {"problems": problems})
        return data


def _number_problem(model: type[BaseModel], name: str, value: Any) -> str | None:
    """What is wrong with `value` for the field `name` of `model`, or None."""
    leaves = _field_leaves(model, name)
    if any(isinstance(t, type) and issubclass(t, BaseModel) for t in leaves):
        return None  # a nested section checks its own fields
    if any(isinstance(v, float) and not math.isfinite(v) for v in _scalars(value)):
        return "must be a finite number"
    numbers = leaves - {typing.Literal}  # a number or a word such as "auto" (train.epochs)
    if numbers and numbers <= {int, float, type(None)} and any(isinstance(v, bool) for v in _scalars(value)):
        return f"must be {'a number' if float in leaves else 'an integer'}, not true or false"
    return None


@cache
def _field_leaves(model: type[BaseModel], name: str) -> frozenset[Any]:
    return _leaf_types(model.model_fields[name].annotation)


def _leaf_types(annotation: Any) -> frozenset[Any]:
    """The types a value of `annotation` is made of, looking through unions, lists, tuples
    and dict values; Literal and Any count as themselves."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    if origin is typing.Literal or annotation is typing.Any:
        return frozenset({typing.Literal if origin else typing.Any})
    if origin in (typing.Union, types.UnionType, list, tuple, dict):
        args = typing.get_args(annotation)[1:] if origin is dict else typing.get_args(annotation)
        return frozenset().union(*(_leaf_types(a) for a in args if a is not Ellipsis))
    return frozenset({annotation})


def _scalars(value: Any) -> Iterator[Any]:
    """Every scalar inside `value`, looking through lists, tuples and dict values."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _scalars(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    else:
        yield value
