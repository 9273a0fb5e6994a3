"""The runs half of the store: recording runs, their owner and heartbeat, and claiming one to resume.

`RunStore` is a mixin of `Store` (which provides the `_session` it uses); it is kept apart so
that each file holds one concept.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dlforge.errors import ConfigError, NotFoundError
from dlforge.registry.liveness import effective_status, resume_refusal, this_host
from dlforge.registry.records import RUN_STATUSES, Run, current_code_version, json_safe, now
from dlforge.registry.tables import RunRow

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from dlforge.registry.records import ModelVersion


class RunStore:
    """Runs: create, finish, look up, heartbeat, claim for resuming."""

    if TYPE_CHECKING:  # provided by Store
        def _session(self, write: bool = False) -> AbstractContextManager[Session]: ...
        def version_for_run(self, run_id: str) -> ModelVersion | None: ...

    def create_run(self, name: str, config: dict[str, Any], data_fingerprint: str | None,
                   code_version: str | None, seed: int, kind: str = "train") -> Run:
        """Record a new run with status ``running``, owned by this process, and return it.

        Args:
            code_version: dlforge version and git commit; None records `current_code_version()`.
        """
        row = RunRow(
            id=uuid.uuid4().hex[:12], name=name, kind=kind, config=json_safe(config),
            data_fingerprint=data_fingerprint, code_version=code_version or current_code_version(),
            seed=int(seed), history=[], metrics={}, status="running", started_at=now(),
            pid=os.getpid(), host=this_host(),
        )
        with self._session(write=True) as s:
            s.add(row)
        return Run.from_row(row)

    def finish_run(self, run_id: str, status: str, history: Sequence[dict[str, Any]] | None = None,
                   metrics: dict[str, Any] | None = None, report_path: str | Path | None = None,
                   error: str | None = None) -> Run:
        """Close a run: its final status (completed, failed or interrupted), history and metrics.

        Raises:
            ConfigError: `status` is not one of the final statuses.
            NotFoundError: no run has this id.
        """
        if status not in RUN_STATUSES[1:]:
            raise ConfigError(
                f"run status: must be one of {', '.join(RUN_STATUSES[1:])} (got {status!r})"
            )
        with self._session(write=True) as s:
            row = self._run_row(s, run_id)
            row.status, row.ended_at, row.error = status, now(), error
            if history is not None:
                row.history = json_safe(list(history))
            if metrics is not None:
                row.metrics = json_safe(metrics)
            row.report_path = str(report_path) if report_path is not None else row.report_path
        return Run.from_row(row)

    def get_run(self, run_id: str) -> Run:
        """The run with this id, or the only run whose id starts with it.

        Raises:
            NotFoundError: no run, or several runs, match.
        """
        with self._session() as s:
            return Run.from_row(self._run_row(s, run_id))

    def list_runs(self, limit: int = 50) -> list[Run]:
        """The newest runs first."""
        with self._session() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.started_at.desc()).limit(limit))
            return [Run.from_row(r) for r in rows]

    def liveness(self, run: Run) -> str:
        """The status to show for `run`: its own, or ``interrupted`` when it is recorded as
        ``running`` but its process is gone (see `dlforge.registry.liveness`)."""
        return effective_status(run)

    def heartbeat(self, run_id: str) -> None:
        """Record that the process working on `run_id` is alive now."""
        with self._session(write=True) as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(heartbeat_at=now()))

    def claim_run(self, run_id: str) -> Run:
        """Make this process the owner of an unfinished run, to resume it: status ``running``,
        this pid and host, a fresh heartbeat. Check and claim are one transaction, so of two
        processes resuming one run at once, one gets it and the other is refused.

        Raises:
            ConfigError: the run completed, or its process is still alive (one line each).
            NotFoundError: no run, or several runs, match `run_id`.
        """
        run = self.get_run(run_id)
        registered = self.version_for_run(run.id)
        with self._session(write=True) as s:
            row = s.get(RunRow, run.id, with_for_update=True)
            refusal = resume_refusal(Run.from_row(row), registered.ref if registered else None)
            if refusal:
                raise ConfigError(refusal)
            row.status, row.ended_at, row.error = "running", None, None
            row.pid, row.host, row.heartbeat_at = os.getpid(), this_host(), now()
        return Run.from_row(row)

    def _run_row(self, s: Session, run_id: str) -> RunRow:
        prefix = str(run_id).strip().lower()
        matches = [] if not prefix else list(s.scalars(
            select(RunRow).where(RunRow.id.startswith(prefix, autoescape=True)).limit(6)))
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFoundError(f"No run with id {run_id!r}. Use `dlforge runs list` to see runs.")
        ids = ", ".join(sorted(r.id for r in matches))
        raise NotFoundError(
            f"Run id {run_id!r} is ambiguous: it starts {ids}. Give more characters; "
            "use `dlforge runs list` to see runs."
        )
