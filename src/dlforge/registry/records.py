"""What the store hands out: plain frozen records, detached from any database session."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlforge.errors import StoreError
from dlforge.registry.tables import EventRow, ModelVersionRow, RunRow

RUN_STATUSES = ("running", "completed", "failed", "interrupted")


@dataclass(frozen=True)
class Run:
    """One run as recorded in the store.

    Attributes:
        id: short hex id; any unique prefix finds it with `Store.get_run`.
        config: the resolved run config, as JSON.
        code_version: dlforge version and, when known, the git commit.
        status: running, completed, failed or interrupted.
        history: one dict per epoch; metrics: final metrics (JSON, non-finite floats as None).
        pid, host: the process that created or last resumed the run; heartbeat_at: when it last
            said it was alive (`registry.liveness` tells a live run from a dead one).
    """

    id: str
    name: str
    kind: str
    config: dict[str, Any]
    data_fingerprint: str | None
    code_version: str
    seed: int
    history: list[Any]
    metrics: dict[str, Any]
    status: str
    started_at: datetime
    ended_at: datetime | None
    report_path: str | None
    error: str | None
    pid: int | None = None
    host: str | None = None
    heartbeat_at: datetime | None = None

    @classmethod
    def from_row(cls, row: RunRow) -> Run:
        return cls(
            id=row.id, name=row.name, kind=row.kind, config=row.config or {},
            data_fingerprint=row.data_fingerprint, code_version=row.code_version, seed=row.seed,
            history=row.history or [], metrics=row.metrics or {}, status=row.status,
            started_at=utc(row.started_at), ended_at=utc(row.ended_at),
            report_path=row.report_path, error=row.error, pid=row.pid, host=row.host,
            heartbeat_at=utc(row.heartbeat_at),
        )


@dataclass(frozen=True)
class ModelVersion:
    """One registered version; `bundle_path` is its bundle directory.

    The store keeps the path relative to its artifacts folder, so a workspace (or a shared
    artifacts mount) can move without breaking the registry.
    """

    name: str
    version: int
    run_id: str | None
    bundle_path: Path
    metrics: dict[str, Any]
    parent_version: int | None
    created_at: datetime
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name@version``, the reference `Store.resolve` and `registry.load` accept."""
        return f"{self.name}@{self.version}"

    @classmethod
    def from_row(cls, row: ModelVersionRow, aliases: tuple[str, ...] = (),
                 artifacts_dir: Path | None = None) -> ModelVersion:
        return cls(
            name=row.name, version=row.version, run_id=row.run_id,
            bundle_path=bundle_dir(artifacts_dir or Path(), row.bundle_path, f"{row.name}@{row.version}"),
            metrics=row.metrics or {},
            parent_version=row.parent_version, created_at=utc(row.created_at), aliases=aliases,
        )


def bundle_dir(artifacts_dir: Path, stored: str, ref: str) -> Path:
    """The bundle directory a row's `stored` bundle_path names, always inside `artifacts_dir`.

    The store writes paths relative to the artifacts folder; one that is absolute or climbs
    out with '..' was not written by dlforge, and loading it could read any directory.

    Raises:
        StoreError: `stored` escapes the artifacts folder.
    """
    relative = Path(stored)
    if relative.anchor or ".." in relative.parts:
        raise StoreError(f"{ref}: the store's bundle_path {stored!r} leaves the artifacts folder "
                         f"{artifacts_dir} (absolute or with '..'); re-register the model")
    return artifacts_dir / relative


@dataclass(frozen=True)
class ModelSummary:
    """One line of `Store.list_models`."""

    name: str
    latest_version: int
    count: int
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """One entry of a model's audit log.

    `version` is the version the event is about: the new one for ``registered``, the target
    for ``alias_set``/``alias_moved``/``promoted``/``rolled_back``, the former target for
    ``alias_removed``, the refused candidate for ``promotion_refused``. `details` holds what a
    gate decision compared (JSON), else None.
    """

    name: str
    version: int | None
    event: str
    alias: str | None
    from_version: int | None
    to_version: int | None
    reason: str | None
    at: datetime
    details: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: EventRow) -> Event:
        return cls(
            name=row.name, version=row.version, event=row.event, alias=row.alias,
            from_version=row.from_version, to_version=row.to_version, reason=row.reason,
            at=utc(row.at), details=row.details,
        )


def utc(value: datetime | None) -> datetime | None:
    """Attach UTC to a naive time read back from SQLite (which drops the zone)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def now() -> datetime:
    return datetime.now(timezone.utc)


def json_safe(obj: Any) -> Any:
    """A JSON value every backend accepts: numpy scalars become Python numbers, NaN/inf None.

    PostgreSQL's JSON type refuses NaN, so a diverged run's loss is stored as null.
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        obj = obj.item()  # numpy / torch scalar
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def current_code_version() -> str:
    """``dlforge <version>``, plus ``+git <sha>`` when dlforge runs from a git checkout."""
    import subprocess

    from dlforge import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"dlforge {__version__}" + (f" +git {sha}" if sha else "")
