"""A testing hook: kill this process at a named point, to prove that runs survive crashes.

`fault_point(name)` does nothing unless the environment variable ``DLFORGE_FAULT_AT`` names
that point (the cost otherwise is one environment lookup). When it does, the process sends
itself SIGKILL, as the OOM killer or a power cut would: no exception, no ``finally``, no
atexit handler runs. ``DLFORGE_FAULT_AT=NAME@N`` kills at the N-th time the point is reached.

The points, in the order a run reaches them (tests/e2e/test_fault_injection.py uses each):

- ``mid-epoch``: an epoch's training batches are done, its validation and checkpoint are not;
- ``checkpoint-write``: a checkpoint's bytes are in its temporary file, not yet renamed;
- ``mid-report``: the report's HTML is in its temporary file, not yet renamed;
- ``bundle-saved``: the model bundle is written, not yet registered;
- ``registered``: the version's row is committed, the alias not yet moved;
- ``alias-moved``: the alias is moved, the run not yet recorded as completed.

With data parallelism, ``DLFORGE_FAULT_RANK=R`` limits the fault to rank R (torchrun's
``RANK``), and ``DLFORGE_FAULT_SIGNAL=SIGSTOP`` freezes the process instead (a hung rank).

Not for production use: never set ``DLFORGE_FAULT_AT`` outside tests.
"""

from __future__ import annotations

import os
import signal

ENV = "DLFORGE_FAULT_AT"
RANK_ENV = "DLFORGE_FAULT_RANK"
SIGNAL_ENV = "DLFORGE_FAULT_SIGNAL"
POINTS = ("mid-epoch", "checkpoint-write", "mid-report", "bundle-saved", "registered", "alias-moved")
_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """SIGKILL this process if ``DLFORGE_FAULT_AT`` is `name` (or `name@N`, at the N-th call)."""
    target = os.environ.get(ENV)
    if target is not None:
        _maybe_kill(name, target)


def _maybe_kill(name: str, target: str) -> None:
    point, _, nth = target.partition("@")
    rank = os.environ.get(RANK_ENV)
    if point != name or (rank is not None and rank != os.environ.get("RANK", "0")):
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.Signals[os.environ.get(SIGNAL_ENV, "SIGKILL")])
