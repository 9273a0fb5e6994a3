"""One retry helper for the store and the study: writers racing on one database lose a unique
constraint or a CREATE TABLE now and then, and simply try again."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def retrying(call: Callable[[], T], *, attempts: int, on: type[BaseException] | tuple[type[BaseException], ...],
             when: Callable[[BaseException], bool] | None = None, backoff_s: float = 0.0) -> T:
    """`call()`, called again after an error of type `on` (for which `when(error)` holds, if
    given), at most `attempts` times in all; the last error propagates, as does any other.

    Args:
        backoff_s: sleep `backoff_s * n` seconds before the n-th retry (0: retry at once).

    Example:
        >>> tries = []
        >>> retrying(lambda: tries.append(1) or (len(tries) < 3 and 1 / 0) or len(tries),
        ...          attempts=5, on=ZeroDivisionError)
        3
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except on as exc:
            if attempt == attempts or (when is not None and not when(exc)):
                raise
            if backoff_s:
                time.sleep(backoff_s * attempt)
    raise ValueError(f"attempts: must be at least 1 (got {attempts})")
