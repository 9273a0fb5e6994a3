"""The one retry helper of the store and the study."""

from __future__ import annotations

import pytest

from dlforge.registry import retry
from dlforge.registry.retry import retrying


def _failing(times: int, exc: BaseException):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return len(calls)

    return call, calls


def test_retries_until_the_call_succeeds():
    call, calls = _failing(2, KeyError("race"))
    assert retrying(call, attempts=3, on=KeyError) == 3 and len(calls) == 3


def test_the_last_error_propagates_after_the_attempts():
    call, calls = _failing(5, KeyError("race"))
    with pytest.raises(KeyError, match="race"):
        retrying(call, attempts=3, on=KeyError)
    assert len(calls) == 3


def test_other_errors_and_refused_ones_are_not_retried():
    call, calls = _failing(1, ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        retrying(call, attempts=3, on=KeyError)
    call, calls = _failing(1, KeyError("no such table"))
    with pytest.raises(KeyError):
        retrying(call, attempts=3, on=KeyError, when=lambda e: "already exists" in str(e))
    assert len(calls) == 1


def test_backoff_grows_with_each_retry(monkeypatch):
    sleeps = []
    monkeypatch.setattr(retry.time, "sleep", sleeps.append)
    call, _ = _failing(2, KeyError("race"))
    retrying(call, attempts=3, on=KeyError, backoff_s=0.2)
    assert sleeps == [0.2, 0.4]
