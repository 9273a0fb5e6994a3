"""A surviving rank turns torchrun's SIGTERM into an error, except while one is being handled
(rank 0 recording its failed collective must not be cut short)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from dlforge.pipeline.distributed_run import _stop_on_sigterm
from dlforge.train.distributed import DistributedError


@pytest.fixture
def handler():
    before = signal.getsignal(signal.SIGTERM)
    _stop_on_sigterm(0)
    yield
    signal.signal(signal.SIGTERM, before)


def _term() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)  # the handler runs at the next bytecode


def test_sigterm_becomes_a_distributed_error_naming_the_rank(handler):
    with pytest.raises(DistributedError, match=r"^distributed: rank 0 was stopped by SIGTERM "
                                               r"\(another rank failed, or the launching "
                                               r"process was stopped\)$"):
        _term()


def test_sigterm_while_an_error_is_handled_lets_the_handling_finish(handler):
    recorded = []
    try:
        raise DistributedError("distributed: rank 0 failed reducing the epoch's metrics")
    except DistributedError as exc:
        _term()  # e.g. while the run is being recorded as failed
        recorded.append(str(exc))
    assert recorded == ["distributed: rank 0 failed reducing the epoch's metrics"]
