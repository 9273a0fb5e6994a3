"""The registry store: runs, model versions, aliases and an append-only event log.

One SQLAlchemy database (a SQLite file in the workspace by default, any SQLAlchemy URL such as
PostgreSQL for many workers) plus an artifacts folder holding each version's bundle at
``artifacts/models/<name>/v<version>/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from dlforge.errors import ConfigError, NotFoundError, StoreError
from dlforge.registry import artifacts
from dlforge.registry.engine import (
    WRITE_OPTION,
    create_store_engine,
    default_artifacts_dir,
    mask_url,
    open_error,
)
from dlforge.registry.migrate import is_current, missing_columns, upgrade
from dlforge.registry.records import (
    Event,
    ModelSummary,
    ModelVersion,
    json_safe,
    now,
)
from dlforge.registry.refs import LATEST, check_alias, check_model_name, parse_ref, parse_selector
from dlforge.registry.retry import retrying
from dlforge.registry.runs import RunStore
from dlforge.registry.tables import AliasRow, Base, EventRow, ModelVersionRow

DB_FILE = "dlforge.db"
# Enough for many writers racing on one name; each retry re-reads the highest version.
REGISTER_ATTEMPTS = 20


class Store(RunStore):
    """Runs, model versions, aliases and their history over one SQLAlchemy database.

    Args:
        url: any SQLAlchemy URL, e.g. ``sqlite:///ws/dlforge.db`` or ``postgresql+psycopg://...``.
        artifacts_dir: where bundles are kept; default ``artifacts/`` beside a SQLite file, else
            ``artifacts/`` in the current workspace.

    Raises:
        StoreError: the database cannot be reached or is not a dlforge store.

    Example:
        >>> store = Store.open(tmp_path)                                  # doctest: +SKIP
        >>> v = store.register("digits", run.id, bundle_dir, {"accuracy": 0.97})  # doctest: +SKIP
        >>> store.set_alias("digits", "production", v.version)         # doctest: +SKIP
    """

    def __init__(self, url: str, artifacts_dir: str | Path | None = None) -> None:
        self.url = mask_url(url)
        self._raw_url = url
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir(url)
        self._engine: Engine = create_store_engine(url)
        self._writer = self._engine.execution_options(**{WRITE_OPTION: True})
        self._create_tables()

    @classmethod
    def open(cls, workspace: str | Path, url: str | None = None) -> Store:
        """The store of `workspace`: ``<workspace>/dlforge.db`` unless `url` names another."""
        workspace = Path(workspace)
        workspace.mkdir(parents=True, exist_ok=True)
        return cls(url or f"sqlite:///{workspace / DB_FILE}", artifacts_dir=workspace / "artifacts")

    @property
    def sqlalchemy_url(self) -> str:
        """The unmasked URL, for another SQLAlchemy client of the same database (e.g. an Optuna
        study's storage). Never print it: it may hold a password; print `url` instead."""
        return self._raw_url

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # ------------------------------------------------------------------------------ plumbing

    def _create_tables(self) -> None:
        # A current store is only read here (no write lock: a reader neither waits for a busy
        # writer nor needs write access); a new or older one is created or upgraded in a write
        # transaction. Two processes opening a fresh store at once may both try CREATE TABLE;
        # the loser sees "already exists" and simply finds the tables on the second pass.
        try:
            with self._engine.connect() as conn:
                if is_current(conn):
                    return
        except SQLAlchemyError:
            pass  # e.g. a file that is not a database: the write transaction names the cause

        def create() -> None:
            with self._writer.begin() as conn:
                Base.metadata.create_all(conn)
                upgrade(conn)  # a store made by an older dlforge: add what it lacks
                missing = missing_columns(conn)
                if missing:  # else each query fails on its own column, far from the cause
                    raise StoreError(
                        f"store: {self.url} lacks the column(s) {', '.join(missing)} of this "
                        f"dlforge's tables (made by another dlforge version?); open it with the "
                        f"dlforge that made it, or pass --store-url for another store")

        try:
            retrying(create, attempts=2, on=SQLAlchemyError, when=lambda e: "already exists" in str(e))
        except SQLAlchemyError as exc:
            raise open_error(self._raw_url, exc) from None

    @contextlib.contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        """A session in one transaction, committed on success; database failures -> StoreError."""
        try:
            with Session(self._writer if write else self._engine, expire_on_commit=False) as s:
                with s.begin():
                    yield s
        except IntegrityError:
            raise  # register() retries these
        except DBAPIError as exc:
            reason = str(exc.orig).splitlines()[0]
            fix = ("give this user write access to the database (and, for SQLite, its directory)"
                   if "readonly" in reason or "read-only" in reason else
                   "check the database (another process may hold it locked)")
            raise StoreError(f"store: {mask_url(self._raw_url)}: {reason}; {fix} or pass "
                             f"--store-url") from None

    # ------------------------------------------------------------------------ model versions

    def register(self, name: str, run_id: str | None, bundle_src: str | Path,
                 metrics: dict[str, Any], parent_version: int | None = None) -> ModelVersion:
        """Make a finished bundle directory the next version of model `name`.

        The bundle is moved (renamed) into ``artifacts/models/<name>/v<version>/`` within the
        transaction that claims the version number, so two processes registering at once get
        distinct numbers, none is lost, and each number has its bundle.

        A run registers at most one version (a unique index on the run id enforces it): when
        `run_id` already has a version of `name`, that version is returned, nothing is moved
        and `bundle_src` stays where it is. So a run resumed after a crash between registering
        and finishing never adds a second version.

        Raises:
            ConfigError: `name` is not a valid model name, or `run_id` already registered a
                version of another model.
            NotFoundError: `bundle_src`, the run or the parent version does not exist.
        """
        check_model_name(name)
        bundle_src = Path(bundle_src)
        if not bundle_src.is_dir():
            raise NotFoundError(
                f"bundle_src: {str(bundle_src)!r} is not a directory; write the bundle with "
                "dlforge.registry.bundle.save_bundle first"
            )
        if run_id is not None:
            self.get_run(run_id)
        if parent_version is not None:
            self.get_version(name, parent_version)
        try:  # another writer may take a number first: each attempt reads the new highest
            return retrying(lambda: self._register_once(name, run_id, bundle_src, json_safe(metrics),
                                                        parent_version),
                            attempts=REGISTER_ATTEMPTS, on=IntegrityError)
        except IntegrityError:
            raise StoreError(
                f"store: could not register {name!r} after {REGISTER_ATTEMPTS} attempts; "
                "too many processes registering at once, try again"
            ) from None

    def _register_once(self, name: str, run_id: str | None, src: Path, metrics: dict[str, Any],
                       parent_version: int | None) -> ModelVersion:
        dest: Path | None = None
        moved: int | None = None  # inode of the moved bundle, to undo only our own move
        try:
            with self._session(write=True) as s:
                done = self._run_version(s, run_id)
                if done is not None:
                    return self._same_model(s, done, name)
                last = s.scalar(select(func.max(ModelVersionRow.version))
                                .where(ModelVersionRow.name == name))
                version = (last or 0) + 1
                dest = self.artifacts_dir / "models" / name / f"v{version}"
                at = now()
                row = ModelVersionRow(name=name, version=version, run_id=run_id,
                                      bundle_path=dest.relative_to(self.artifacts_dir).as_posix(),
                                      metrics=metrics,
                                      parent_version=parent_version, created_at=at)
                s.add(row)
                s.add(EventRow(name=name, version=version, event="registered",
                               to_version=version, at=at))
                s.flush()  # claims (name, version), or raises IntegrityError
                moved = artifacts.move_into_place(src, dest)
        except BaseException:
            if moved is not None:
                artifacts.move_back(dest, src, moved)  # the row was not committed: undo the move
            raise
        return ModelVersion.from_row(row, (), self.artifacts_dir)

    def version_for_run(self, run_id: str) -> ModelVersion | None:
        """The version run `run_id` registered (exact id), or None if it registered none."""
        with self._session() as s:
            row = self._run_version(s, run_id)
            if row is None:
                return None
            return ModelVersion.from_row(row, _aliases_of(self._aliases(s, row.name), row.version),
                                         self.artifacts_dir)

    def _run_version(self, s: Session, run_id: str | None) -> ModelVersionRow | None:
        if run_id is None:
            return None
        # first(), not one(): a store migrated with duplicates from before the unique index
        return s.scalars(select(ModelVersionRow).where(ModelVersionRow.run_id == run_id)
                         .order_by(ModelVersionRow.version)).first()

    def _same_model(self, s: Session, row: ModelVersionRow, name: str) -> ModelVersion:
        if row.name != name:
            raise ConfigError(
                f"run_id: run {row.run_id} already registered {row.name}@{row.version}; a run "
                f"registers one version, so it cannot also register {name!r}"
            )
        return ModelVersion.from_row(row, _aliases_of(self._aliases(s, name), row.version),
                                     self.artifacts_dir)

    def get_version(self, name: str, version_or_alias: int | str = LATEST) -> ModelVersion:
        """One version of model `name`, by number, alias or ``latest``.

        Raises:
            NotFoundError: unknown model, version or alias, listing the available ones.
        """
        selector = parse_selector(version_or_alias)
        with self._session() as s:
            versions = self._version_numbers(s, name)
            aliases = self._aliases(s, name)
            if isinstance(selector, int):
                number = selector
                if number not in versions:
                    raise NotFoundError(
                        f"Model {name!r} has no version {number}. Available versions: "
                        f"{_join(versions)}. Use `dlforge models show {name}` to see all."
                    )
            elif selector == LATEST:
                number = versions[-1]
            elif selector in aliases:
                number = aliases[selector]
            else:
                raise NotFoundError(
                    f"Model {name!r} has no alias {selector!r}. Available aliases: "
                    f"{_join(sorted(aliases)) or 'none'}. Use `dlforge models show {name}` to see all."
                )
            row = s.scalar(select(ModelVersionRow).where(ModelVersionRow.name == name,
                                                         ModelVersionRow.version == number))
            return ModelVersion.from_row(row, _aliases_of(aliases, number), self.artifacts_dir)

    def resolve(self, ref: str) -> ModelVersion:
        """The version a reference names: ``name`` (latest), ``name@3``, ``name@production``."""
        name, selector = parse_ref(ref)
        return self.get_version(name, selector)

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of model `name`, oldest first, each with its aliases."""
        with self._session() as s:
            self._version_numbers(s, name)
            aliases = self._aliases(s, name)
            rows = s.scalars(select(ModelVersionRow).where(ModelVersionRow.name == name)
                             .order_by(ModelVersionRow.version))
            return [ModelVersion.from_row(r, _aliases_of(aliases, r.version), self.artifacts_dir)
                    for r in rows]

    def list_models(self) -> list[ModelSummary]:
        """One summary per registered model name, sorted by name."""
        with self._session() as s:
            counts = s.execute(select(ModelVersionRow.name, func.max(ModelVersionRow.version),
                                      func.count()).group_by(ModelVersionRow.name)
                               .order_by(ModelVersionRow.name)).all()
            aliases: dict[str, dict[str, int]] = {}
            for a in s.scalars(select(AliasRow)):
                aliases.setdefault(a.name, {})[a.alias] = a.version
            return [ModelSummary(name=n, latest_version=latest, count=count,
                                 aliases=dict(sorted(aliases.get(n, {}).items())))
                    for n, latest, count in counts]

    # -------------------------------------------------------------------------------- aliases

    def set_alias(self, name: str, alias: str, version: int | str, reason: str | None = None,
                  *, event: str | None = None, details: dict[str, Any] | None = None,
                  expect_from: int | None | Literal["any"] = "any") -> ModelVersion:
        """Point `alias` of model `name` at `version`, creating or moving it (logged as an event).

        Setting an alias to the version it already points at changes nothing and logs nothing.
        The event is ``alias_set`` or ``alias_moved`` unless `event` names it (``promoted``,
        ``rolled_back``); `details` (JSON) records what the decision compared. `expect_from`
        (a version, or None for no holder) moves it only if it still names what the decision
        compared against, checked in the write transaction.

        Raises:
            ConfigError: the alias is not a valid name (e.g. it looks like a number).
            NotFoundError: unknown model or version.
            StoreError: the alias no longer names `expect_from` (another process moved it).
        """
        check_alias(alias)
        target = self.get_version(name, version).version
        # two creators race on the primary key; the loser retries as a move
        logged = {"reason": reason, "event": event, "details": json_safe(details),
                  "expect_from": expect_from}
        retrying(lambda: self._move_alias(name, alias, target, logged), attempts=3, on=IntegrityError)
        return self.get_version(name, target)

    def _move_alias(self, name: str, alias: str, target: int, logged: dict[str, Any]) -> None:
        with self._session(write=True) as s:
            # FOR UPDATE (a no-op on SQLite, whose write transactions are exclusive) so that two
            # movers on PostgreSQL log the true `from_version`; two creators race on the primary
            # key instead, and the loser retries as a move.
            row = s.get(AliasRow, (name, alias), with_for_update=True)
            previous = row.version if row else None
            expected = logged["expect_from"]
            if expected != "any" and previous != expected:
                raise StoreError(f"{name}@{alias}: now names {_held(previous)}, not {_held(expected)} "
                                 f"this decision compared against (another process moved it); "
                                 f"run it again")
            if previous == target:
                return
            at = now()
            if row is None:
                s.add(AliasRow(name=name, alias=alias, version=target, updated_at=at))
            else:
                row.version, row.updated_at = target, at
            default = "alias_set" if previous is None else "alias_moved"
            s.add(EventRow(name=name, version=target, alias=alias, reason=logged["reason"], at=at,
                           event=logged["event"] or default, details=logged["details"],
                           from_version=previous, to_version=target))

    def record_event(self, name: str, event: str, version: int | None, *, alias: str | None = None,
                     reason: str | None = None, details: dict[str, Any] | None = None) -> None:
        """Append an event that moves nothing (e.g. ``promotion_refused``) to `name`'s log.

        Raises:
            NotFoundError: unknown model.
        """
        with self._session(write=True) as s:
            self._version_numbers(s, name)
            s.add(EventRow(name=name, version=version, event=event, alias=alias, reason=reason,
                           details=json_safe(details), at=now()))

    def remove_alias(self, name: str, alias: str, reason: str | None = None) -> None:
        """Remove `alias` from model `name` (logged as an event).

        Raises:
            NotFoundError: the model or the alias does not exist.
        """
        with self._session(write=True) as s:
            self._version_numbers(s, name)
            row = s.get(AliasRow, (name, alias), with_for_update=True)
            if row is None:
                aliases = self._aliases(s, name)
                raise NotFoundError(
                    f"Model {name!r} has no alias {alias!r}. Available aliases: "
                    f"{_join(sorted(aliases)) or 'none'}. Use `dlforge models show {name}` to see all."
                )
            s.delete(row)
            s.add(EventRow(name=name, version=row.version, event="alias_removed", alias=alias,
                           from_version=row.version, reason=reason, at=now()))

    def history(self, name: str) -> list[Event]:
        """The audit log of model `name`, oldest first."""
        with self._session() as s:
            self._version_numbers(s, name)
            rows = s.scalars(select(EventRow).where(EventRow.name == name).order_by(EventRow.id))
            return [Event.from_row(r) for r in rows]

    # -------------------------------------------------------------------------------- helpers

    def _version_numbers(self, s: Session, name: str) -> list[int]:
        """The versions of `name`, ascending; NotFoundError listing the models if there are none."""
        numbers = list(s.scalars(select(ModelVersionRow.version).where(ModelVersionRow.name == name)
                                 .order_by(ModelVersionRow.version)))
        if numbers:
            return numbers
        names = list(s.scalars(select(ModelVersionRow.name).distinct().order_by(ModelVersionRow.name)))
        if not names:
            raise NotFoundError(
                f"No model named {name!r}: no models are registered yet. "
                "Train and register one with `dlforge run CONFIG`."
            )
        raise NotFoundError(
            f"No model named {name!r}. Available models: {_join(names)}. "
            "Use `dlforge models list` to see all."
        )

    def _aliases(self, s: Session, name: str) -> dict[str, int]:
        return {a.alias: a.version for a in s.scalars(select(AliasRow).where(AliasRow.name == name))}


def _aliases_of(aliases: dict[str, int], version: int) -> tuple[str, ...]:
    return tuple(sorted(a for a, v in aliases.items() if v == version))


def _held(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"


def _join(items: Sequence[Any]) -> str:
    return ", ".join(str(i) for i in items)
