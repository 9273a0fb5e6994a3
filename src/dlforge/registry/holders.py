"""Who held each alias of a model, when and why: read from the append-only audit log.

Rollback walks this history one step per call: promotions and moves push a holder, a
rollback pops one, a removal clears the alias. So after v1 -> v2 -> v3 two rollbacks give
v2 then v1, and a third finds no previous holder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dlforge.registry.records import Event

# Events that point an alias at `to_version`; `rolled_back` steps back; `alias_removed` clears.
MOVES = ("alias_set", "alias_moved", "promoted")
ROLLBACK = "rolled_back"
REMOVED = "alias_removed"


@dataclass(frozen=True)
class Tenure:
    """One stretch of time an alias named one version.

    Attributes:
        alias: the alias.
        version: the version it named.
        since: when the alias moved to it; `until` when it moved away (None: still holds).
        event: what moved it there (alias_set, alias_moved, promoted, rolled_back).
        reason: why, as recorded.
    """

    alias: str
    version: int
    since: datetime
    until: datetime | None
    event: str
    reason: str | None


def tenures(events: Sequence[Event]) -> list[Tenure]:
    """Every holder of every alias, in order of time.

    Example:
        >>> tenures([])
        []
    """
    out: list[Tenure] = []
    open_: dict[str, int] = {}  # alias -> index in `out` of its current tenure
    for e in events:
        if e.alias is None or (e.event not in MOVES and e.event not in (ROLLBACK, REMOVED)):
            continue
        if e.alias in open_:
            i = open_.pop(e.alias)
            t = out[i]
            out[i] = Tenure(t.alias, t.version, t.since, e.at, t.event, t.reason)
        if e.event != REMOVED:
            open_[e.alias] = len(out)
            out.append(Tenure(e.alias, e.to_version, e.at, None, e.event, e.reason))
    return out


def holder_stack(events: Sequence[Event], alias: str) -> list[int]:
    """The versions `alias` held, oldest first, as rollbacks see them: the last is the current
    holder, the one before it what a rollback returns to."""
    stack: list[int] = []
    for e in events:
        if e.alias != alias:
            continue
        if e.event in MOVES:
            stack.append(e.to_version)
        elif e.event == ROLLBACK:
            if stack:
                stack.pop()
            if not stack or stack[-1] != e.to_version:
                stack.append(e.to_version)
        elif e.event == REMOVED:
            stack.clear()
    return stack
