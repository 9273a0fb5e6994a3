"""Defer Ctrl-C and SIGTERM while a run writes its final state to the store.

A terminal's Ctrl-C reaches every process of its group, and torchrun passes another SIGINT on
to its processes (`dlforge train --nproc N`): rank 0's second KeyboardInterrupt landed in the
store write recording the first, and the run was left `running`. Inside `holding_stop_signals`
those signals are held until the write has finished, with one line saying so (the process
does not look hung), then the first one is delivered to the handler that was there before: a
Ctrl-C still stops a plain run, and still sets `dlforge update --watch`'s stop flag, only after
the run's result is recorded. A caller that is stopping already may drop them instead
(`deliver=False`). A signal the process ignores (`SIG_IGN`: a run started with `&` from a
shell without job control ignores SIGINT) is not held: it stays ignored.

Python runs a signal's handler when the interpreter next gets control, not when the signal
arrives: a write waiting in SQLite's busy handler (up to `BUSY_TIMEOUT_S`) sees a Ctrl-C sent
early in the wait only after it, however early it came. So the bound is not a limit on the
write but a guard for one that never ends (a store that hangs), longer than any wait for the
store's lock: a signal handled more than `HOLD_S` seconds into the hold acts at once.

The hold cannot defer SIGKILL. Under `--nproc`, torchrun kills what is left `SHUTDOWN_S` (5 s,
cli/launch.py) after its SIGTERM or forwarded SIGINT: rank 0 still waiting then for a store
another process holds locked is killed mid-write, and its run stays `running` (resumable: its
process is gone). That wait is kept short on purpose: the same timeout ends a rank that hangs
(a stopped process ignores SIGTERM), and BUSY_TIMEOUT_S (60 s) there would hold every stopped
job with a hung rank for a minute, where the final write takes milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

from dlforge.registry.engine import BUSY_TIMEOUT_S

HOLD_S = 2 * BUSY_TIMEOUT_S  # a final write takes milliseconds, or one wait for the lock
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HELD_LINE = "recording the run's result; stopping after it\n"


@contextlib.contextmanager
def holding_stop_signals(seconds: float = HOLD_S, *, deliver: bool = True,
                         line: str | None = HELD_LINE) -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM (those not ignored) while the block runs; yield the list of the
    signals held. The first one held prints `line` to stderr (None: nothing), saying what the
    process does before it acts. On leaving, the handlers before are restored and, with
    `deliver`, the first signal held is raised again through them. A signal handled after
    `seconds` acts at once. Nothing is held outside the main thread (it alone may set
    handlers).

    Example:
        >>> import os
        >>> with holding_stop_signals(deliver=False, line=None) as held:
        ...     os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt, here or after
        >>> held == [signal.SIGINT]
        True
    """
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS
              if signal.getsignal(signum) is not signal.SIG_IGN}  # ignored: nothing to stop
    start, acted = time.monotonic(), []

    def restore() -> None:
        for signum, handler in before.items():
            signal.signal(signum, handler)

    def hold(signum: int, _frame: object) -> None:
        if time.monotonic() - start > seconds:  # a write that never ends: it may be stopped
            acted.append(signum)
            restore()
            signal.raise_signal(signum)
            return
        if line and not held:  # the process answers at once, and says what it does first
            os.write(2, line.encode())  # not sys.stderr: a handler may run inside its write
        held.append(signum)

    for signum in before:
        signal.signal(signum, hold)
    try:
        yield held
    finally:
        restore()
        if deliver and held and not acted:
            signal.raise_signal(held[0])  # the handler before runs now (KeyboardInterrupt, a flag)
