"""Paged, filtered and sorted reads of the runs table, answered by the database.

For pages over stores with thousands of runs (the `dlforge ui` runs table): a page reads one
page of rows and the columns it shows, never every run's config and history.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dlforge.errors import ConfigError
from dlforge.registry.liveness import effective_status
from dlforge.registry.records import RUN_STATUSES, Run, utc
from dlforge.registry.tables import RunRow

if TYPE_CHECKING:
    from dlforge.registry.store import Store

SORTS = {"created": RunRow.started_at, "name": RunRow.name, "kind": RunRow.kind,
         "status": RunRow.status}
MAX_PAGE_SIZE = 200
MAX_COMPARED = 5


@dataclass(frozen=True)
class RunFilter:
    """Which runs a page lists: `kind`/`status` exact, `name` a case-insensitive substring."""

    kind: str | None = None
    status: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class RunLine:
    """One row of the runs table: what it shows, without config or history."""

    id: str
    name: str
    kind: str
    status: str
    metrics: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    error: str | None

    @property
    def seconds(self) -> float | None:
        """Wall time from start to end, None while running."""
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else None


@dataclass(frozen=True)
class RunPage:
    """One page of runs and the number of runs matching the filter."""

    lines: list[RunLine]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def runs_page(store: Store, where: RunFilter = RunFilter(), *, sort: str = "created",
              descending: bool = True, page: int = 1, per_page: int = 50) -> RunPage:
    """One page of runs matching `where`, ordered by `sort` (then by id, so pages are stable).

    Raises:
        ConfigError: an unknown sort key or status, or a page or page size out of range.
    """
    if sort not in SORTS:
        raise ConfigError(f"sort: must be one of {', '.join(SORTS)} (got {sort!r})")
    if where.status is not None and where.status not in RUN_STATUSES:
        raise ConfigError(f"status: must be one of {', '.join(RUN_STATUSES)} (got {where.status!r})")
    if page < 1 or not 1 <= per_page <= MAX_PAGE_SIZE:
        raise ConfigError(f"page: must be >= 1 with 1-{MAX_PAGE_SIZE} runs per page "
                          f"(got page {page}, {per_page} per page)")
    order = SORTS[sort].desc() if descending else SORTS[sort].asc()
    columns = (RunRow.id, RunRow.name, RunRow.kind, RunRow.status, RunRow.metrics,
               RunRow.started_at, RunRow.ended_at, RunRow.error, RunRow.pid, RunRow.host,
               RunRow.heartbeat_at)
    with read(store) as s:
        conditions = _conditions(where, s)
        total = s.scalar(select(func.count()).select_from(RunRow).where(*conditions))
        rows = s.execute(select(*columns).where(*conditions).order_by(order, RunRow.id)
                         .limit(per_page).offset((page - 1) * per_page)).all()
    lines = [RunLine(r.id, r.name, r.kind, _shown_status(r), r.metrics or {}, utc(r.started_at),
                     utc(r.ended_at), r.error) for r in rows]
    return RunPage(lines, int(total or 0), page, per_page)


def _shown_status(row: Any) -> str:
    """The status a run shows, as `dlforge runs list` shows it: a ``running`` run whose
    process is gone is ``interrupted`` (and the status filter matches what is shown)."""
    owner = SimpleNamespace(status=row.status, pid=row.pid, host=row.host,
                            heartbeat_at=utc(row.heartbeat_at))
    return effective_status(owner)


def runs_by_ids(store: Store, ids: Sequence[str]) -> list[Run]:
    """The runs with these ids (or unique prefixes), in the order given (for a comparison).

    Raises:
        ConfigError: more than `MAX_COMPARED` ids.
        NotFoundError: an id names no run.
    """
    if len(ids) > MAX_COMPARED:
        raise ConfigError(f"compare: at most {MAX_COMPARED} runs at once (got {len(ids)})")
    return [store.get_run(run_id) for run_id in ids]


def read(store: Store) -> AbstractContextManager[Session]:
    """A read-only session on the store's database, for queries over other tables in it (the
    Optuna studies that searches keep there); database failures become `StoreError`."""
    return store._session()  # noqa: SLF001 - the store's own package


def _conditions(where: RunFilter, s: Session) -> list[Any]:
    out = []
    if where.kind:
        out.append(RunRow.kind == where.kind)
    if where.status in ("running", "interrupted"):
        dead = _dead_running(s)  # stored `running`, shown `interrupted`
        out.append(RunRow.id.in_(dead) | (RunRow.status == "interrupted")
                   if where.status == "interrupted"
                   else (RunRow.status == "running") & RunRow.id.not_in(dead))
    elif where.status:
        out.append(RunRow.status == where.status)
    if where.name:
        out.append(func.lower(RunRow.name).contains(where.name.lower(), autoescape=True))
    return out


def _dead_running(s: Session) -> list[str]:
    """Ids of the runs stored `running` whose process is gone (few: runs in flight)."""
    rows = s.execute(select(RunRow.id, RunRow.status, RunRow.pid, RunRow.host, RunRow.heartbeat_at)
                     .where(RunRow.status == "running")).all()
    return [r.id for r in rows if _shown_status(r) == "interrupted"]
