"""pydantic's validation errors as dlforge's one line per problem: `key: what is wrong (got value)`,
the value spelt as YAML spells it (`null`, `true`, `false`)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from dlforge.config.base import FIELD_PROBLEMS
from dlforge.errors import clipped

_UNION_TAGS = {"function-after", "function-before", "function-wrap", "function-plain"}


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: dotted key, pydantic's message made plain, and the value received."""
    lines = []
    errors = exc.errors()
    for err in errors:
        if not _union_member_applies(err):
            continue
        key = ".".join(str(p) for p in err["loc"]
                       if str(p) not in _UNION_TAGS and not _is_tag(p) and not _is_member(p))
        if err["type"] == FIELD_PROBLEMS:
            lines += [f"{key + '.' if key else ''}{name}: {problem} (got {_show(value)})"
                      for name, problem, value in err["ctx"]["problems"]]
            continue
        msg = _plain(err)
        if err["type"] == "literal_error" and any(_is_member(p) for p in err["loc"]):
            # 'two' for train.epochs (a number or 'auto'), 'maybe' for data.streaming (a bool or 'auto')
            other = "true, false" if _has_bool_member(err, errors) else "a number"
            msg = f"must be {other} or " + msg.removeprefix("must be ")
        elif err["type"] == "bool_parsing" and err["loc"][-1] == "bool":
            msg = "must be true, false or 'auto'"  # the only bool union: bool | 'auto'
        if err["type"] == "value_error" and (not key or msg.startswith(key + ".")):
            lines.append(msg)  # a model validator wrote a whole line already
            continue
        got = err.get("input")
        tail = "" if err["type"] in ("missing",) or msg.endswith(")") else f" (got {_show(got)})"
        lines.append(f"{key or 'config'}: {msg}{tail}")
    return "\n".join(dict.fromkeys(lines))


def _is_member(part: Any) -> bool:
    """A member of `int >= 1 | "auto"` (train.epochs) or `bool | "auto"` (data.streaming) in
    an error's location."""
    return str(part) in ("constrained-int", "bool") or str(part).startswith("literal[")


def _has_bool_member(err: dict[str, Any], errors: list[dict[str, Any]]) -> bool:
    """Whether the union `err` is about has a `bool` member (an error of it names one)."""
    field = [p for p in err["loc"] if not _is_member(p)]
    return any(e["loc"][-1] == "bool" and list(e["loc"][:-1]) == field for e in errors)


def _union_member_applies(err: dict[str, Any]) -> bool:
    """For a number-or-"auto" field, the complaint of the member the value was meant for:
    the number's for numbers, "must be 'auto'" for text."""
    members = [str(p) for p in err["loc"] if _is_member(p)]
    if not members:
        return True
    return isinstance(err.get("input"), str) == members[-1].startswith("literal[")


def _is_tag(part: Any) -> bool:
    # discriminated-union members appear in locations as their tag, e.g. 'basic_cnn'
    from dlforge.config.schema import MODEL_TYPES

    return part in MODEL_TYPES or part in (
        "constant", "step", "plateau", "exponential", "inverse_time", "cosine", "one_cycle",
    )


def _plain(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown type; allowed: {ctx.get('expected_tags')} (got {ctx.get('tag')!r})"
    if kind in ("model_type", "dict_type", "model_attributes_type"):  # "a valid dictionary ..."
        return "must be a mapping of keys to values, a section"
    if kind == "union_tag_not_found":
        return "needs a 'type' key"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {err.get('ctx', {}).get('pattern')}: letters, digits, '_', '-'"
    if kind == "literal_error":
        return "must be " + msg.removeprefix("Input should be ")
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        return "must be " + msg.removeprefix("Input should be ")
    return msg[0].lower() + msg[1:]


def _show(value: Any) -> str:
    return clipped(yaml_spelling(value))


def yaml_spelling(value: Any) -> str:
    """`value` as the YAML the user wrote it in: null, true and false for None, True and False
    (inside lists and mappings too); anything else as Python shows it (strings quoted).

    Example:
        >>> yaml_spelling(None), yaml_spelling([True, "a", 1.5]), yaml_spelling({"k": False})
        ('null', "[true, 'a', 1.5]", "{'k': false}")
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(yaml_spelling, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_spelling(k)}: {yaml_spelling(v)}"
                               for k, v in value.items()) + "}"
    return repr(value)
