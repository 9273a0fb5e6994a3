"""Config sections of a model's life after its first run: the champion/challenger gate
(`evaluate.gate`) and transfer learning (`transfer`).

A gate condition is one line, ``METRIC OP BOUND``: ``accuracy >= 0.98`` (absolute),
``macro_f1 >= champion - 0.002`` or ``latency_ms_p95 <= 1.2 * champion`` (relative to the
version holding the gate's alias, re-scored on the same data). It is parsed when the config
loads, so a malformed condition never reaches a promotion.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from dlforge.config.base import ALIAS_PATTERN, Section
from dlforge.errors import ConfigError

OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CONDITION = re.compile(r"^\s*(?P<metric>[A-Za-z_][^<>=]*?)\s*(?P<op>>=|<=|>|<)\s*(?P<bound>.+?)\s*$")
_BOUND = re.compile(rf"^(?:(?P<abs>{_NUM})|(?:(?P<scale>{_NUM})\s*\*\s*)?champion"
                    rf"(?:\s*(?P<sign>[-+])\s*(?P<offset>{_NUM}))?)$")


@dataclass(frozen=True)
class Condition:
    """One parsed gate condition: ``metric op bound``, the bound absolute (`value`) or
    ``scale * champion + offset`` when `relative`.

    Example:
        >>> parse_condition("macro_f1 >= champion - 0.002")
        Condition(metric='macro_f1', op='>=', value=None, scale=1.0, offset=-0.002)
        >>> parse_condition("accuracy >= 0.98").relative
        False
    """

    metric: str
    op: str
    value: float | None = None
    scale: float = 1.0
    offset: float = 0.0

    @property
    def relative(self) -> bool:
        return self.value is None

    def bound(self, champion: float | None) -> float | None:
        """The number the candidate is compared with (None: relative with no champion)."""
        if not self.relative:
            return self.value
        return None if champion is None else self.scale * champion + self.offset

    def holds(self, candidate: float, champion: float | None) -> bool | None:
        """Whether the candidate meets it; None when it cannot be decided (no champion)."""
        bound = self.bound(champion)
        return None if bound is None else bool(OPERATORS[self.op](candidate, bound))


def parse_condition(text: str) -> Condition:
    """Parse ``METRIC OP BOUND``.

    Raises:
        ValueError: the text is not a condition, naming the forms allowed.
    """
    match = _CONDITION.match(text)
    bound = _BOUND.match(match.group("bound")) if match else None
    if bound is None:
        raise ValueError(f"{text!r} is not a condition; write METRIC OP BOUND with OP one of "
                         f">=, <=, >, < and BOUND a number, champion, champion - 0.01 or "
                         f"1.2 * champion")
    metric, op = match.group("metric"), match.group("op")
    if bound.group("abs") is not None:
        return Condition(metric, op, value=float(bound.group("abs")))
    offset = float(bound.group("offset") or 0.0) * (-1 if bound.group("sign") == "-" else 1)
    return Condition(metric, op, scale=float(bound.group("scale") or 1.0), offset=offset)


def check_conditions(texts: list[str], field: str = "--require") -> list[Condition]:
    """Parse conditions given outside a config (`--require`), before any work starts.

    Args:
        texts: the ``METRIC OP BOUND`` lines.
        field: the option or key they came from, named in the error.

    Returns:
        The parsed conditions, in order.

    Raises:
        ConfigError: one line per text that is not a condition, naming `field`.

    Example:
        >>> [c.op for c in check_conditions(["accuracy >= 0.9", "mae < champion"])]
        ['>=', '<']
        >>> check_conditions(["accuracy >="])
        Traceback (most recent call last):
        ...
        dlforge.errors.ConfigError: --require: 'accuracy >=' is not a condition; write METRIC OP BOUND with OP one of >=, <=, >, < and BOUND a number, champion, champion - 0.01 or 1.2 * champion
    """
    parsed, problems = [], []
    for text in texts:
        try:
            parsed.append(parse_condition(text))
        except ValueError as e:
            problems.append(f"{field}: {e}")
    if problems:
        raise ConfigError("\n".join(problems))
    return parsed


class GateConfig(Section):
    """Champion/challenger gate: what a candidate must meet before an alias moves to it."""

    conditions: list[str] = Field(
        min_length=1, description="METRIC OP BOUND lines, e.g. 'accuracy >= 0.9', "
        "'macro_f1 >= champion - 0.002', 'latency_ms_p95 <= 1.2 * champion'.")
    alias: str = Field("production", pattern=ALIAS_PATTERN,
                       description="The alias the gate guards; its holder is the champion.")
    promote: bool = Field(True, description="`dlforge run` moves the alias when the gate passes.")

    @field_validator("conditions")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        for text in v:
            parse_condition(text)
        return v

    def parsed(self) -> list[Condition]:
        """The conditions, parsed."""
        return [parse_condition(t) for t in self.conditions]


class TransferConfig(Section):
    """How `dlforge finetune` trains from a registered model's weights."""

    source: str | None = Field(
        None, description="NAME@VERSION or NAME@ALIAS to start from (`dlforge finetune --from`); "
        "its model section and preprocessing replace this config's.")
    mode: Literal["feature_extraction", "finetune"] = Field(
        "finetune", description="feature_extraction: backbone and its BatchNorm statistics "
        "frozen, only the head trains; finetune: head first, then all layers.")
    freeze_epochs: int = Field(1, ge=0, description="finetune: epochs training the head only.")
    backbone_lr_mult: float = Field(
        0.01, gt=0, le=1, description="finetune: the backbone's LR is train.lr times this.")
