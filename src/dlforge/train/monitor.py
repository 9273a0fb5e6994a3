"""Monitored metrics: which way is better, and the message for one that is never logged.

Shared by early stopping, checkpoints, the plateau schedule, search pruning and the study's
direction, so they all read a metric name the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAXIMIZED = ("accuracy", "f1", "auc", "precision", "recall", "r2")


def resolve_mode(monitor: str, mode: str) -> str:
    """`auto` -> `max` for accuracy-like names (accuracy, f1, auc, precision, recall, r2), else `min`.

    Example:
        >>> resolve_mode("val_accuracy", "auto"), resolve_mode("val_loss", "auto")
        ('max', 'min')
    """
    if mode != "auto":
        return mode
    return "max" if any(name in monitor for name in MAXIMIZED) else "min"


def monitor_not_logged(key: str, monitor: str, available: Iterable[str]) -> str:
    """The one-line message for a monitor that names no logged metric."""
    names = ", ".join(sorted(n for n in available if n not in ("epoch", "epoch_time_s", "samples_per_s")))
    return f"{key}: {monitor!r} is not logged; available: {names}"


def not_validated(monitor: str, logs: Mapping[str, Any], state: Any) -> bool:
    """True when `logs` lacks `monitor` because its epoch was not validated (`train.val_every`):
    a monitor acts on the epochs that log it. A scripted caller without a loop state (None)
    validates every epoch.

    Example:
        >>> from types import SimpleNamespace
        >>> not_validated("val_loss", {"loss": 0.3}, SimpleNamespace(validated=False))
        True
        >>> not_validated("val_loss", {"loss": 0.3}, SimpleNamespace(validated=True))
        False
    """
    return monitor not in logs and not getattr(state, "validated", True)
