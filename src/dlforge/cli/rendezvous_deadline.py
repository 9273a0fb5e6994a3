"""The launching process's own deadline for the rendezvous of `--nnodes M`.

torch's TCPStore client waits for the store's handshake without a timeout, so a rendezvous
endpoint where something other than a rendezvous store listens (another service, a plain
socket) hangs torchrun for ever, whatever `--timeout` says. The call blocks the main thread in
C++, where no exception or Python signal handler reaches it; a timer thread therefore ends the
process with one line. It fires only before the rendezvous has completed, when no worker
process has been started yet (torch starts them after its `_rendezvous` step), so nothing is
left behind.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

MARGIN_S = 5.0  # beyond 2 x --timeout: the store's connect and the join may each take it
_DONE = "._rendezvous.success"  # torch.distributed.elastic's metric when the agent has joined


def _exit_with(line: str) -> None:
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()
    os._exit(1)  # the main thread is blocked in C++: the CLI's own exit cannot run


class RendezvousDeadline:
    """A torch.distributed.elastic metric handler: `on_expiry(message)` runs after `seconds`
    unless the rendezvous-success metric comes first.

    Args:
        seconds: the deadline, from `start()`.
        message: the line handed to `on_expiry`.
        on_expiry: by default prints ``error: MESSAGE`` and ends the process with code 1.

    Example:
        >>> seen = []
        >>> deadline = RendezvousDeadline(60, "late", on_expiry=seen.append).start()
        >>> deadline.emit(type("Metric", (), {"name": "SimpleElasticAgent._rendezvous.success"}))
        >>> deadline.expire(); seen
        []
    """

    def __init__(self, seconds: float, message: str,
                 on_expiry: Callable[[str], Any] = _exit_with) -> None:
        self.message = message
        self.on_expiry = on_expiry
        self.joined = False
        self._lock = threading.Lock()  # expiry and the join exclude each other
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True

    def start(self) -> RendezvousDeadline:
        """Start the timer; returns self."""
        self._timer.start()
        return self

    def emit(self, metric_data: Any) -> None:
        """torch's `MetricHandler.emit`: the rendezvous-success metric stops the deadline."""
        if metric_data.name.endswith(_DONE):
            with self._lock:
                self.joined = True
            self._timer.cancel()

    def expire(self) -> None:
        """Run `on_expiry` unless the rendezvous has completed (holding the lock, so the agent
        cannot go on to start workers meanwhile)."""
        with self._lock:
            if not self.joined:
                self.on_expiry(self.message)

    def cancel(self) -> None:
        """Stop the timer (torchrun has returned or raised)."""
        self._timer.cancel()


def watch_rendezvous(seconds: float, message: str, **kwargs: Any) -> RendezvousDeadline:
    """Start a `RendezvousDeadline` and register it as torch.distributed.elastic's metric
    handler (whose metrics nothing else reads: torchrun's own handler does nothing).

    Example:
        >>> deadline = watch_rendezvous(60, "late", on_expiry=print)  # doctest: +SKIP
    """
    from torch.distributed.elastic import metrics

    deadline = RendezvousDeadline(seconds, message, **kwargs).start()
    metrics.configure(deadline, group="torchelastic")
    return deadline
