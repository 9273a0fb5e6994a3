"""The store's tables, as SQLAlchemy ORM models.

Only portable column types (String, Integer, DateTime, JSON) so that the same tables work on
SQLite and PostgreSQL. Times are stored as UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class RunRow(Base):
    """One training (or tuning, fine-tuning, update) run."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    data_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    code_version: Mapped[str] = mapped_column(String(200))
    seed: Mapped[int] = mapped_column(Integer)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    report_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Who runs it: the process (pid on host) that created or last resumed the run, and when it
    # last said it was alive. A `running` row whose process is gone is shown as interrupted.
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# One version per run at most: registering again after a crash finds the version, never adds a
# second. A unique index (not a table constraint) so that `migrate` can add it to old stores;
# NULL run ids (bundles registered by hand) are not constrained, on SQLite and PostgreSQL alike.
RUN_VERSION_INDEX = "uq_model_versions_run_id"


class ModelVersionRow(Base):
    """One registered version of a named model; (name, version) is unique."""

    __tablename__ = "model_versions"
    # The unique constraint is what makes concurrent registration safe on every backend: of two
    # writers that picked the same number, one fails with IntegrityError and retries.
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_version"),
                      Index(RUN_VERSION_INDEX, "run_id", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    bundle_path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AliasRow(Base):
    """A movable name (production, staging, ...) pointing at one version of a model."""

    __tablename__ = "model_aliases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    """Append-only audit log: registrations, every alias change and every gate decision. Rows are
    never updated."""

    __tablename__ = "model_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str | None] = mapped_column(String(64), nullable=True)
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # What a decision compared (a gate's figures for promoted / promotion_refused), as JSON.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
