"""Check a store against the database's own integrity check and dlforge's invariants.

The invariants a crash at any point must keep:

- at most one model version per run;
- every version's bundle directory exists, and every alias points at an existing version;
- no run is shown as ``running`` without a live process (`Store.liveness`), which holds by
  construction; `check_store` lists the runs whose process is gone, as notes, with the command
  that resumes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select, text

from dlforge.registry.liveness import is_alive
from dlforge.registry.migrate import duplicate_run_versions
from dlforge.registry.records import Run
from dlforge.registry.tables import AliasRow, ModelVersionRow, RunRow

if TYPE_CHECKING:
    from dlforge.registry.store import Store


@dataclass(frozen=True)
class StoreCheck:
    """`problems`: broken invariants (empty for a sound store); `interrupted`: ids of runs
    recorded as running whose process is gone (resumable with `dlforge run --resume ID`)."""

    problems: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_store(store: Store) -> StoreCheck:
    """Run every check on `store`; one line per problem."""
    problems: list[str] = []
    with store._engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            result = [row[0] for row in conn.execute(text("PRAGMA integrity_check"))]
            if result != ["ok"]:
                problems += [f"sqlite integrity_check: {line}" for line in result]
        for run_id, refs in duplicate_run_versions(conn).items():
            problems.append(f"run {run_id}: {len(refs)} model versions ({', '.join(refs)}); "
                            "a run registers one")
        versions = conn.execute(select(ModelVersionRow.name, ModelVersionRow.version,
                                       ModelVersionRow.bundle_path)).all()
        aliases = conn.execute(select(AliasRow.name, AliasRow.alias, AliasRow.version)).all()
    for name, version, bundle in versions:
        if not (store.artifacts_dir / bundle).is_dir():
            problems.append(f"{name}@{version}: bundle {store.artifacts_dir / bundle} is missing")
    known = {(name, version) for name, version, _ in versions}
    problems += [f"{name}@{alias}: points at version {version}, which does not exist"
                 for name, alias, version in aliases if (name, version) not in known]
    with store._session() as s:
        running = [Run.from_row(r) for r in s.scalars(select(RunRow).where(RunRow.status == "running"))]
    return StoreCheck(problems, sorted(r.id for r in running if not is_alive(r)))
