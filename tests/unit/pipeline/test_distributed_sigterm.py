"""Rank 0 turns torchrun's SIGTERM into an error naming its run to resume, except while one is
being handled (rank 0 recording its failed collective must not be cut short); the other ranks
carry on after SIGTERM or Ctrl-C until rank 0 has gone, then leave without a word (rank 0's
line and the launcher's say it once)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from dlforge.cli import main
from dlforge.pipeline import distributed_run
from dlforge.pipeline.distributed_run import _on_stop_signals
from dlforge.registry import Store
from dlforge.train import distributed
from dlforge.train.distributed import DistributedError, Stopped

STOPPED = ("distributed: rank 0 was stopped by SIGTERM (another rank failed, or the launching "
           "process was stopped)")


@pytest.fixture
def restore_handlers():
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def _signal(signum: int = signal.SIGTERM) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs at the next bytecode


def _term() -> None:
    _signal(signal.SIGTERM)


def test_sigterm_becomes_a_stopped_error_in_rank_0(restore_handlers):
    assert _on_stop_signals(0) == []
    with pytest.raises(Stopped) as caught:
        _term()
    assert str(caught.value) == STOPPED


def _store_retry() -> None:
    try:
        raise OSError(5, "busy")  # e.g. the store retrying a write
    except OSError:
        _term()


@pytest.mark.parametrize("during", [_term, _store_retry])
def test_sigterm_while_an_error_is_handled_lets_rank_0_finish_handling_it(restore_handlers,
                                                                          during):
    assert _on_stop_signals(0) == []
    recorded = []
    try:
        raise DistributedError("distributed: rank 0 failed reducing the epoch's metrics")
    except DistributedError as exc:
        during()  # while the run is being recorded as failed
        recorded.append(str(exc))
    assert recorded == ["distributed: rank 0 failed reducing the epoch's metrics"]


def test_sigterm_while_a_library_handles_its_own_exception_still_stops_rank_0(restore_handlers):
    # a SIGTERM inside a fallback's `except OSError` was ignored: rank 0 trained on, killed
    assert _on_stop_signals(0) == []
    with pytest.raises(Stopped):
        try:
            raise OSError(38, "Function not implemented")
        except OSError:
            _term()


def test_a_stop_lost_in_a_finalizer_comes_again_while_in_the_group(restore_handlers,
                                                                    monkeypatch):
    # an e2e run once left the run `running` (rank 0 killed by torchrun; cause not found: a
    # Stopped lost this way is one)
    monkeypatch.setattr(distributed_run, "RESEND_S", 0.1)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    assert _on_stop_signals(0) == []
    try:
        _term()
    except Stopped:
        pass  # as Python does for an exception in __del__
    with pytest.raises(Stopped):
        time.sleep(2)


def test_another_rank_notes_sigterm_and_ctrl_c_and_carries_on(restore_handlers):
    # leaving at once failed the collective rank 0 waited in: "Connection closed by peer"
    received = _on_stop_signals(3)
    _signal(signal.SIGTERM)
    _signal(signal.SIGINT)
    assert received == [signal.SIGTERM, signal.SIGINT]


@pytest.fixture
def as_rank(monkeypatch, restore_handlers, tmp_path):
    """`dlforge train` as if torchrun had started it as global rank `rank` (one process)."""
    config = tmp_path / "tiny.yaml"
    config.write_text("name: tiny\ndata: {source: builtin, name: breast_cancer}\n"
                      "model: {type: mlp, hidden: [4]}\ntrain: {epochs: 2}\n")
    monkeypatch.setattr(distributed_run, "launched", lambda: True)
    monkeypatch.setattr(distributed, "close", lambda: None)

    def train(rank: int) -> int:
        monkeypatch.setattr(distributed, "init_process_group", lambda: rank)
        return main(["-w", str(tmp_path / "ws"), "train", str(config), "--quiet"])

    return train


def _rank_0_gone(signum: int | None):
    """A rank's `_follow` that gets `signum` (None: no signal), then finds rank 0 gone."""
    def follow() -> None:
        if signum is not None:
            _signal(signum)
        raise DistributedError("distributed: rank 1 failed all-reducing the gradients of epoch 3: "
                               "Connection closed by peer")

    return follow


@pytest.mark.parametrize(("signum", "code", "err"), [
    # --nproc 2 and Ctrl-C printed a bare "error: interrupted" for rank 1 besides rank 0's line;
    # with --nproc 4, "rank N was stopped by SIGTERM" for ranks torchrun stopped after rank 0 left
    (signal.SIGINT, 130, ""),
    (signal.SIGTERM, 143, ""),
    (None, 1, "error: distributed: rank 1 failed all-reducing the gradients of epoch 3: "
              "Connection closed by peer\n"),  # not stopped: the failure is news
])
def test_a_stopped_rank_other_than_0_ends_without_a_line(monkeypatch, capsys, as_rank,
                                                         signum, code, err):
    monkeypatch.setattr(distributed_run, "_follow", _rank_0_gone(signum))
    assert as_rank(1) == code
    assert capsys.readouterr().err == err


def test_sigterm_to_rank_0_names_the_run_to_resume(monkeypatch, capsys, tmp_path, as_rank):
    import dlforge.train.loop as loop_module

    monkeypatch.setattr(loop_module, "fault_point",
                        lambda name: _term() if name == "mid-epoch" else None)
    assert as_rank(0) == 1
    (run,) = Store.open(Path(tmp_path / "ws")).list_runs()
    assert (run.status, run.error) == ("failed", f"Stopped: {STOPPED}")
    assert capsys.readouterr().err == (f"error: {STOPPED}: run {run.id} stopped; resume it with "
                                       f"`dlforge run --resume {run.id}`\n")
