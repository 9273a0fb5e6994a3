"""Searches as the dashboard reads them: Optuna's tables in the store's database, queried a
page at a time (Optuna's own API loads every trial of a study, too slow for 10,000 trials).

Only the columns read here are declared; they are Optuna's stable RDB schema (studies,
trials, trial_values, trial_params, trial_user_attributes). Studies kept in another database
(`tune.storage`) are not shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, Integer, String, Text, cast, column, func, inspect, select, table
from sqlalchemy.types import DateTime

from dlforge.errors import ConfigError, NotFoundError
from dlforge.registry.queries import MAX_PAGE_SIZE, read
from dlforge.registry.records import utc

if TYPE_CHECKING:
    from dlforge.registry import Store

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
          "WAITING": "waiting"}
studies_t = table("studies", column("study_id", Integer), column("study_name", String))
directions_t = table("study_directions", column("study_id", Integer),
                     column("direction", String), column("objective", Integer))
trials_t = table("trials", column("trial_id", Integer), column("number", Integer),
                 column("study_id", Integer), column("state", String),
                 column("datetime_start", DateTime), column("datetime_complete", DateTime))
values_t = table("trial_values", column("trial_id", Integer), column("objective", Integer),
                 column("value", Float), column("value_type", String))
params_t = table("trial_params", column("trial_id", Integer), column("param_name", String),
                 column("param_value", Float), column("distribution_json", Text))
# Optuna's state column is an ENUM on PostgreSQL, which does not compare with text: cast it.
STATE = cast(trials_t.c.state, String)
attrs_t = table("trial_user_attributes", column("trial_id", Integer), column("key", String),
                column("value_json", Text))


@dataclass(frozen=True)
class StudyLine:
    """One study: its trial counts per state and its best complete value."""

    name: str
    direction: str
    counts: dict[str, int]
    best: float | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class TrialLine:
    """One trial of a page: `value` is the final value (complete) or the last reported one."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    reason: str | None
    run_id: str | None
    seconds: float | None


def has_studies(store: Store) -> bool:
    """Whether a search ever ran on this database (Optuna creates its tables then)."""
    with read(store) as s:
        return inspect(s.connection()).has_table("trials")


def list_studies(store: Store) -> list[StudyLine]:
    """Every study in the store's database, sorted by name."""
    if not has_studies(store):
        return []
    with read(store) as s:
        heads = s.execute(
            select(studies_t.c.study_id, studies_t.c.study_name, directions_t.c.direction)
            .join(directions_t, directions_t.c.study_id == studies_t.c.study_id)
            .where(directions_t.c.objective == 0).order_by(studies_t.c.study_name)).all()
        counts: dict[int, dict[str, int]] = {}
        for sid, state, n in s.execute(select(trials_t.c.study_id, STATE, func.count())
                                       .group_by(trials_t.c.study_id, STATE)):
            counts.setdefault(sid, {})[STATES.get(str(state), str(state).lower())] = n
        best = {sid: (lo, hi) for sid, lo, hi in s.execute(
            select(trials_t.c.study_id, func.min(values_t.c.value), func.max(values_t.c.value))
            .join(values_t, values_t.c.trial_id == trials_t.c.trial_id)
            .where(STATE == "COMPLETE", values_t.c.objective == 0)
            .group_by(trials_t.c.study_id))}
    lines = []
    for sid, name, raw in heads:
        direction = _direction(raw)
        lines.append(StudyLine(name, direction, counts.get(sid, {}), _pick(best.get(sid), direction)))
    return lines


def find_study(store: Store, name: str) -> StudyLine:
    """The study named `name`.

    Raises:
        NotFoundError: no such study, listing the studies there are.
    """
    studies = list_studies(store)
    for study in studies:
        if study.name == name:
            return study
    known = ", ".join(s.name for s in studies) or "none yet"
    raise NotFoundError(f"No search named {name!r}. Searches: {known}. "
                        f"Run one with `dlforge tune CONFIG`.")


def trials_page(store: Store, name: str, *, state: str | None = None, page: int = 1,
                per_page: int = 50) -> tuple[list[TrialLine], int]:
    """One page of a study's trials by number, and how many match `state` (complete, pruned,
    failed, running).

    Raises:
        ConfigError: an unknown state or a page out of range.
    """
    raw = {v: k for k, v in STATES.items()}
    if state and state not in raw:
        raise ConfigError(f"state: must be one of {', '.join(raw)} (got {state!r})")
    if page < 1 or not 1 <= per_page <= MAX_PAGE_SIZE:
        raise ConfigError(f"page: must be >= 1 with 1-{MAX_PAGE_SIZE} trials per page "
                          f"(got page {page}, {per_page} per page)")
    where = [trials_t.c.study_id == _study_id(name)]
    if state:
        where.append(STATE == raw[state])
    with read(store) as s:
        total = s.scalar(select(func.count()).select_from(trials_t).where(*where))
        rows = s.execute(select(trials_t).where(*where).order_by(trials_t.c.number)
                         .limit(per_page).offset((page - 1) * per_page)).all()
        ids = [r.trial_id for r in rows]
        values = dict(s.execute(select(values_t.c.trial_id, values_t.c.value).where(
            values_t.c.trial_id.in_(ids), values_t.c.objective == 0)).all())
        params: dict[int, dict[str, Any]] = {}
        for tid, pname, pvalue, dist in s.execute(select(params_t)
                                                  .where(params_t.c.trial_id.in_(ids))):
            params.setdefault(tid, {})[pname] = _external(pvalue, dist)
        attrs: dict[int, dict[str, Any]] = {}
        for tid, key, value in s.execute(select(attrs_t).where(attrs_t.c.trial_id.in_(ids))):
            attrs.setdefault(tid, {})[key] = json.loads(value)
    return [_trial(r, values.get(r.trial_id), params.get(r.trial_id, {}), attrs.get(r.trial_id, {}))
            for r in rows], int(total or 0)


def history(store: Store, name: str) -> list[tuple[int, float]]:
    """(number, value) of every complete trial, by number: the optimisation history."""
    with read(store) as s:
        return [(n, v) for n, v in s.execute(
            select(trials_t.c.number, values_t.c.value)
            .join(values_t, values_t.c.trial_id == trials_t.c.trial_id)
            .where(trials_t.c.study_id == _study_id(name), STATE == "COMPLETE",
                   values_t.c.objective == 0).order_by(trials_t.c.number)) if v is not None]


def complete_trials(store: Store, name: str) -> list[tuple[float, dict[str, Any]]]:
    """(value, params) of every complete trial of study `name`, by number: for importances
    and parallel coordinates."""
    complete = (select(trials_t.c.trial_id)
                .where(trials_t.c.study_id == _study_id(name), STATE == "COMPLETE"))
    with read(store) as s:
        values = s.execute(select(values_t.c.trial_id, values_t.c.value)
                           .join(trials_t, trials_t.c.trial_id == values_t.c.trial_id)
                           .where(values_t.c.trial_id.in_(complete), values_t.c.objective == 0)
                           .order_by(trials_t.c.number)).all()
        params: dict[int, dict[str, Any]] = {}
        for tid, pname, pvalue, dist in s.execute(select(params_t)
                                                  .where(params_t.c.trial_id.in_(complete))):
            params.setdefault(tid, {})[pname] = _external(pvalue, dist)
    return [(v, params.get(tid, {})) for tid, v in values if v is not None]


def best_so_far(points: list[tuple[int, float]], direction: str) -> list[tuple[int, float]]:
    """The running best of an optimisation history."""
    out, best = [], None
    for n, v in points:
        best = v if best is None else (max if direction == "maximize" else min)(best, v)
        out.append((n, best))
    return out


def _study_id(name: str):
    return select(studies_t.c.study_id).where(studies_t.c.study_name == name).scalar_subquery()


def _trial(row: Any, value: float | None, params: dict[str, Any],
           attrs: dict[str, Any]) -> TrialLine:
    state = STATES.get(str(row.state), str(row.state).lower())
    start, end = utc(_as_datetime(row.datetime_start)), utc(_as_datetime(row.datetime_complete))
    seconds = (end - start).total_seconds() if start and end else None
    reason = attrs.get("reason")
    if state == "failed" and reason is None:
        reason = "interrupted: its process stopped before the trial ended"
    return TrialLine(row.number, state, value if state == "complete" else attrs.get("last_value"),
                     params, reason, attrs.get("run_id"), seconds)


def _as_datetime(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _external(value: float, distribution_json: str) -> Any:
    """A parameter as the search chose it (a choice, an int), from Optuna's float encoding."""
    return _distribution(distribution_json).to_external_repr(value)


@lru_cache(maxsize=256)
def _distribution(distribution_json: str) -> Any:
    """Parsed once per distinct JSON: a study's trials share a handful of distributions."""
    from optuna.distributions import json_to_distribution

    return json_to_distribution(distribution_json)


def _direction(raw: Any) -> str:
    return "maximize" if "MAX" in str(raw).upper() else "minimize"


def _pick(bounds: tuple[float, float] | None, direction: str) -> float | None:
    if bounds is None:
        return None
    return bounds[1] if direction == "maximize" else bounds[0]
