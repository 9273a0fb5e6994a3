"""Opening the store's database: the engine, SQLite settings for many processes, error messages.

SQLite is set up so that several processes can share one file: WAL journal (readers do not
block the writer), a busy timeout (a writer waits for the lock instead of failing at once),
and write transactions that take the lock up front (``BEGIN IMMEDIATE``), so that a
read-then-write transaction never fails half way when another process wrote in between.
A SQLite file on a read-only file system is opened read-only (see `_on_read_only_media`).
Nothing here is SQLite-only SQL in the store itself: these are connection settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from dlforge.errors import StoreError, first_line

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig

BUSY_TIMEOUT_S = 60.0
# Execution option asking the SQLite "begin" hook for a write transaction.
WRITE_OPTION = "dlforge_write"


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to show in messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url


def create_store_engine(url: str) -> Engine:
    """A SQLAlchemy engine for `url`, with the SQLite settings above when it is SQLite.

    Raises:
        StoreError: the URL cannot be parsed or its driver is not installed.
    """
    try:
        parsed = make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if is_sqlite:
            parsed = _on_read_only_media(parsed)
        kwargs: dict[str, Any] = {"connect_args": {"timeout": BUSY_TIMEOUT_S}} if is_sqlite else {}
        engine = create_engine(parsed, **kwargs)
    except ArgumentError as exc:
        raise StoreError(
            f"store: cannot parse URL {mask_url(url)!r}: {first_line(exc)}; expected e.g. "
            "sqlite:///path/dlforge.db or postgresql+psycopg://user@host/dbname"
        ) from None
    except NoSuchModuleError as exc:
        raise StoreError(
            f"store: cannot open {mask_url(url)}: {first_line(exc)}; "
            "install the database driver for this URL or pass --store-url"
        ) from None
    except ImportError as exc:
        raise StoreError(
            f"store: cannot open {mask_url(url)}: driver not installed ({exc}); "
            "install it (e.g. pip install 'psycopg[binary]') or pass --store-url"
        ) from None
    if is_sqlite:
        _configure_sqlite(engine)
    return engine


def _on_read_only_media(parsed: URL) -> URL:
    """A SQLite file on a read-only file system (a read-only mount, a snapshot) opened read-only:
    SQLite cannot create the WAL index (``-shm``) beside it, so a plain open fails with "unable to
    open database file". A read-only mount does not mean the file cannot change (a Docker ``:ro``
    volume or read-only NFS while a writer elsewhere updates it), and ``immutable`` ignores the
    ``-wal`` file, so it is used only when neither ``-wal`` nor ``-shm`` lies beside the real file
    (symlinks resolved); otherwise ``mode=ro``, which reads the WAL through the existing ``-shm``.
    Reads work, any write fails with "attempt to write a readonly database". An ``immutable``
    store is read as it was when opened: a process that keeps it open (`dlforge serve`) does
    not see a writer elsewhere that starts later; restart it then."""
    db = parsed.database
    if not db or db == ":memory:" or db.startswith("file:") or not os.path.isfile(db):
        return parsed
    real = os.path.realpath(db)
    try:
        read_only = bool(os.statvfs(os.path.dirname(real)).f_flag & os.ST_RDONLY)
    except OSError:
        return parsed
    if not read_only:
        return parsed
    query = {**parsed.query, "mode": "ro", "uri": "true"}
    if not any(os.path.lexists(real + suffix) for suffix in ("-wal", "-shm")):
        query["immutable"] = "1"
    return parsed.set(database=f"file:{quote(real)}", query=query)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling issues BEGIN lazily and never BEGIN IMMEDIATE; the
    # SQLAlchemy-documented recipe turns it off and emits BEGIN from the "begin" event instead.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def open_error(url: str, exc: BaseException) -> StoreError:
    """The one-line StoreError for a database that cannot be opened or read."""
    reason = first_line(getattr(exc, "orig", None) or exc)
    if make_url_backend(url) == "sqlite":
        if "not a database" in reason or "malformed" in reason:
            fix = "move it away or pass --store-url"
        else:
            fix = "check that its directory exists and is writable, or pass --store-url"
    else:
        fix = "check that the server is running and the URL and credentials are right, or pass --store-url"
    return StoreError(f"store: cannot open {mask_url(url)}: {reason}; {fix}")


def make_url_backend(url: str) -> str:
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        return ""



def default_artifacts_dir(url: str) -> Path:
    """``artifacts/`` beside a SQLite file; for a server database, in the current workspace."""
    from dlforge.workspace import resolve_workspace

    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None
    if parsed is not None and parsed.get_backend_name() == "sqlite" \
            and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database).resolve().parent / "artifacts"
    return resolve_workspace() / "artifacts"


def store_url_for(cfg: RunConfig | None, given: str | None) -> str | None:
    """The one route to the store's URL: the config's `registry.url`, else the one given
    (`--store-url` or $DLFORGE_STORE_URL), else None for the workspace's SQLite file."""
    return (cfg.registry.url if cfg is not None else None) or given


def public_config(cfg: RunConfig) -> dict[str, Any]:
    """The config as JSON with secrets hidden (store and study passwords, the serve token):
    what the store and the reports keep."""
    out = cfg.model_dump(mode="json")
    if out["registry"].get("url"):
        out["registry"]["url"] = mask_url(out["registry"]["url"])
    if out["tune"] and out["tune"].get("storage"):
        out["tune"]["storage"] = mask_url(out["tune"]["storage"])
    if out["serve"].get("token"):
        out["serve"]["token"] = "***"
    return out
