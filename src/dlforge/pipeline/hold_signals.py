"""Hold off Ctrl-C and SIGTERM while a run writes its final state to the store.

A terminal's Ctrl-C reaches every process of its group, and torchrun passes another SIGINT on
to its processes (`dlforge train --nproc N`): rank 0's second KeyboardInterrupt landed in the
store write recording the first, and the run was left `running`. Inside `holding_stop_signals`
those signals are noted and dropped (the process is stopping already, or the run is complete);
the hold is bounded: one that comes after `HOLD_S` seconds acts as before, so a store that hangs
can still be interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

HOLD_S = 10.0  # a final write takes milliseconds; a store that hangs this long may be stopped
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def holding_stop_signals(seconds: float = HOLD_S) -> Iterator[list[int]]:
    """Drop SIGINT and SIGTERM for up to `seconds` while the block runs; yield the list of the
    signals dropped. Nothing is held outside the main thread (it alone may set handlers).

    Example:
        >>> import os
        >>> with holding_stop_signals() as dropped:
        ...     os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt
        >>> dropped == [signal.SIGINT]
        True
    """
    dropped: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield dropped
        return
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    start = time.monotonic()

    def restore() -> None:
        for signum, handler in before.items():
            signal.signal(signum, handler)

    def hold(signum: int, _frame: object) -> None:
        if time.monotonic() - start <= seconds:
            dropped.append(signum)
            return
        restore()  # held too long: the signal acts as it would have
        signal.raise_signal(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, hold)
    try:
        yield dropped
    finally:
        restore()
