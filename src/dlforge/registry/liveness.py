"""Is a `running` run still alive? Judged from its owner (pid on host) and its heartbeat.

A run records the process that created or last resumed it, and that process refreshes the
run's heartbeat every `HEARTBEAT_S` while it works (`pipeline.recovery.heartbeat`). A process
killed with SIGKILL (or a machine that lost power) never records an end, so its run stays
``running`` in the store; these rules show it as ``interrupted`` instead:

- on this host: the run is alive while its process exists (not a zombie) and, once it has beaten,
  while its heartbeat is younger than `STALE_AFTER_S` (which also catches a reused pid);
- on another host: while its heartbeat is younger than `STALE_AFTER_S`; a run that never beat
  (a search trial) counts as alive, since nothing here can prove it dead;
- a run recorded before runs had owners (no pid) is alive only with a fresh heartbeat.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from dlforge.registry.records import Run


class Owned(Protocol):
    """What the liveness rules read of a run (a `Run`, or a row of the runs table)."""

    status: str
    pid: int | None
    host: str | None
    heartbeat_at: datetime | None

HEARTBEAT_S = 10.0
# Twelve missed beats: long enough for a busy machine or a store locked by another writer.
STALE_AFTER_S = 120.0


def this_host() -> str:
    """The name runs record as their host."""
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host and has not exited (a zombie has)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    except OSError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no procfs (macOS): kill(pid, 0) is all we know
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def heartbeat_age(run: Owned, now: datetime | None = None) -> float | None:
    """Seconds since the run's last heartbeat, or None if it never beat."""
    if run.heartbeat_at is None:
        return None
    return ((now or datetime.now(timezone.utc)) - run.heartbeat_at).total_seconds()


def is_alive(run: Owned, now: datetime | None = None) -> bool:
    """Whether a ``running`` run's process is still at work (False for any other status)."""
    if run.status != "running":
        return False
    age = heartbeat_age(run, now)
    fresh = age is not None and age < STALE_AFTER_S
    if run.pid is None:
        return fresh
    if run.host == this_host():
        return process_alive(run.pid) and (age is None or fresh)
    return age is None or fresh


def effective_status(run: Owned, now: datetime | None = None) -> str:
    """The status to show: ``interrupted`` for a ``running`` run whose process is gone."""
    if run.status == "running" and not is_alive(run, now):
        return "interrupted"
    return run.status


SEARCH_RESUME = "dlforge tune CONFIG --resume"


def resume_command(run_id: str, kind: str) -> str:
    """The command that continues a run of `kind`: its own resume, or for a search trial its
    search's (a trial resumed alone would be tested and registered as the search's pick).

    Example:
        >>> resume_command("ab12", "run")
        'dlforge run --resume ab12'
        >>> resume_command("cd34", "trial")
        'dlforge tune CONFIG --resume'
    """
    return SEARCH_RESUME if kind == "trial" else f"dlforge run --resume {run_id}"


def resume_refusal(run: Run, registered: str | None = None, now: datetime | None = None) -> str | None:
    """Why `run` cannot be resumed (one line), or None when it can.

    Args:
        registered: the reference of the version the run registered, named in the message.
    """
    if run.kind == "trial":
        search = run.config.get("name", run.name)
        return (f"resume: run {run.id} is trial {run.name!r} of the search {search!r}; a trial is "
                f"not resumed alone (it would be tested and registered as the search's model): "
                f"continue the search with `{SEARCH_RESUME}`, which runs its unfinished trials again")
    if run.status == "completed":
        done = f" and registered {registered}" if registered else ""
        return (f"resume: run {run.id} already completed{done}; there is nothing to resume; "
                "start a new run with `dlforge run CONFIG`")
    if is_alive(run, now):
        age = heartbeat_age(run, now)
        beat = f", last heartbeat {age:.0f} s ago" if age is not None else ""
        return (f"resume: run {run.id} is still running (pid {run.pid} on {run.host}{beat}); "
                "two processes must not write one run: wait for it to end or stop it, then resume")
    return None
