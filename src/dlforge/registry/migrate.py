"""Bring a store made by an older dlforge up to the current tables, in place.

`create_all` makes missing tables but never changes a table that exists, so each change to a
shipped table gets a step here. Every step is idempotent and portable (SQLite and PostgreSQL)
and runs when a store is opened and `is_current` finds something missing, in the transaction
that creates the tables (on SQLite a write transaction, so two processes opening an old store at
once upgrade it once). A current store is opened without a write.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, func, inspect, select

from dlforge.registry.tables import RUN_VERSION_INDEX, Base, EventRow, ModelVersionRow, RunRow

log = logging.getLogger(__name__)

# Columns added to `runs` after its first release: the owner and heartbeat of a run.
RUN_OWNER_COLUMNS = ("pid", "host", "heartbeat_at")
# Columns added to `model_events`: the figures a gate decision compared.
EVENT_DETAIL_COLUMNS = ("details",)


def upgrade(conn: Connection) -> None:
    """Add what an older store lacks: the run owner columns, the event details column and the
    one-version-per-run index."""
    _add_columns(conn, RunRow, RUN_OWNER_COLUMNS)
    _add_columns(conn, EventRow, EVENT_DETAIL_COLUMNS)
    _add_run_version_index(conn)


def is_current(conn: Connection) -> bool:
    """Whether the database has all of dlforge's tables, columns and the one-version-per-run
    index: nothing for `create_all` or `upgrade` to do, so opening it needs no write. A store
    whose legacy duplicate run versions keep the index out is as current as it can be (`upgrade`
    would only warn again), or every reading command would take the write lock."""
    inspector = inspect(conn)
    have = set(inspector.get_table_names())
    if any(t.name not in have for t in Base.metadata.sorted_tables) or missing_columns(conn):
        return False
    indexes = inspector.get_indexes(ModelVersionRow.__tablename__)
    return any(i["name"] == RUN_VERSION_INDEX for i in indexes) or bool(duplicate_run_versions(conn))


def missing_columns(conn: Connection) -> list[str]:
    """``table.column`` for each column of dlforge's tables the database lacks after `upgrade`:
    a store made by another (newer, or foreign) schema, which queries would fail on one by one.

    Example:
        >>> missing_columns(conn)  # doctest: +SKIP
        ['model_versions.metrics']
    """
    inspector = inspect(conn)
    missing = []
    for table in Base.metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in have]
    return missing


def _add_columns(conn: Connection, table: type[Base], names: tuple[str, ...]) -> None:
    """ALTER TABLE ... ADD COLUMN for each of `names` the table lacks (nullable columns only)."""
    name_of = table.__tablename__
    have = {c["name"] for c in inspect(conn).get_columns(name_of)}
    for name in names:
        if name not in have:
            kind = table.__table__.c[name].type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {name_of} ADD COLUMN {name} {kind}")


def _add_run_version_index(conn: Connection) -> None:
    indexes = inspect(conn).get_indexes(ModelVersionRow.__tablename__)
    if any(i["name"] == RUN_VERSION_INDEX for i in indexes):
        return
    duplicates = duplicate_run_versions(conn)
    if duplicates:
        # Versions stay as they are (they may be serving); registration still finds a run's
        # version first, and `check_store` lists these until someone resolves them.
        log.warning("store: %d runs have several model versions (%s); the unique index on "
                    "model_versions.run_id is added once each run has one",
                    len(duplicates), "; ".join(f"{r}: {', '.join(v)}" for r, v in duplicates.items()))
        return
    index = next(i for i in ModelVersionRow.__table__.indexes if i.name == RUN_VERSION_INDEX)
    index.create(conn)


def duplicate_run_versions(conn: Connection) -> dict[str, list[str]]:
    """Runs with more than one version: {run_id: ["name@version", ...]} (none in a sound store)."""
    mv = ModelVersionRow.__table__
    runs = select(mv.c.run_id).where(mv.c.run_id.is_not(None)).group_by(mv.c.run_id) \
        .having(func.count() > 1)
    rows = conn.execute(select(mv.c.run_id, mv.c.name, mv.c.version)
                        .where(mv.c.run_id.in_(runs)).order_by(mv.c.run_id, mv.c.version))
    out: dict[str, list[str]] = {}
    for run_id, name, version in rows:
        out.setdefault(run_id, []).append(f"{name}@{version}")
    return out
