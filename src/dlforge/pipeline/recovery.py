"""Crash safety of a run: refuse resumes that would do harm, claim the run, keep it alive.

A run killed at any point (even with SIGKILL) is resumed with `dlforge run --resume RUN_ID`:

- `check_resumable` refuses a run that already completed, or whose process is still alive
  (two processes would write one run folder), with one line each;
- `claim_for_resume` makes this process the run's owner (atomically, in the store) and deletes
  the temporary files that killed writes left in the run folder;
- `heartbeat` tells the store the run is alive while it works, so `dlforge runs list` shows a
  run whose process died as ``interrupted``.

Registration is idempotent per run (`pipeline.register.register_trained`), so a resumed run
ends with exactly one version whatever point the crash hit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from dlforge.atomic import remove_leftovers
from dlforge.errors import ConfigError, DlforgeError
from dlforge.registry import Run, Store
from dlforge.registry.liveness import HEARTBEAT_S, resume_refusal

log = logging.getLogger(__name__)


def check_resumable(store: Store, record: Run) -> Run:
    """`record` if it can be resumed, before any work; `Store.claim_run` checks again atomically.

    Raises:
        ConfigError: the run completed, or its process is still alive.
    """
    registered = store.version_for_run(record.id)
    refusal = resume_refusal(record, registered.ref if registered else None)
    if refusal:
        raise ConfigError(refusal)
    return record


def unfinished_twin(store: Store, name: str, config: dict, fingerprint: str | None,
                    newest: int = 200) -> Run | None:
    """The newest run (not a trial) of `name` that trained exactly `config` on the same data
    and died (interrupted or failed), or None: what `dlforge tune --resume` continues instead
    of starting a second run, when a search was killed while training its best config (the
    dead run would stay `interrupted`, and resuming it later would register the model twice).
    """
    for run in store.list_runs(limit=newest):
        if (run.kind != "trial" and run.name == name and run.data_fingerprint == fingerprint
                and run.config == config and store.liveness(run) in ("interrupted", "failed")):
            return run
    return None


def claim_for_resume(store: Store, run_id: str, run_dir: Path) -> Run:
    """Own run `run_id` from now on and clear the partial files of the process that died."""
    record = store.claim_run(run_id)
    for path in remove_leftovers(run_dir) if run_dir.is_dir() else []:
        log.info("removed %s, left by a killed write", path)
    return record


@contextlib.contextmanager
def heartbeat(store: Store, run_id: str, every: float = HEARTBEAT_S) -> Iterator[None]:
    """Record a heartbeat for `run_id` now and every `every` seconds until the block ends.

    A beat that fails (the store briefly unreachable) is logged and retried at the next one:
    the run itself goes on.
    """
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                store.heartbeat(run_id)
            except DlforgeError as exc:
                log.warning("heartbeat of run %s failed: %s", run_id, exc)
            if stop.wait(every):
                return

    thread = threading.Thread(target=beat, name=f"dlforge-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
