"""A second Ctrl-C (the terminal's to the process group, then torchrun's forwarded one) or a
SIGTERM while a run writes its final state is held until the write ends (the run was left
`running`), then delivered: dropped, a Ctrl-C was lost and the run (or the watch) went on."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from dlforge.cli import main
from dlforge.errors import DataError
from dlforge.lifecycle.watch import StopFlag
from dlforge.pipeline import runner
from dlforge.pipeline.hold_signals import HOLD_S, holding_stop_signals
from dlforge.registry import Store
from dlforge.registry.engine import BUSY_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[3]


def _signal(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs at the next bytecode


def test_a_signal_in_the_hold_is_delivered_after_it_and_handlers_restored(capfd):
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    finished = []
    with pytest.raises(KeyboardInterrupt), holding_stop_signals() as held:
        _signal(signal.SIGINT)
        _signal(signal.SIGINT)
        finished.append(True)  # the block ran to its end
    assert (finished, held) == ([True], [signal.SIGINT, signal.SIGINT])
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == before
    assert capfd.readouterr().err == "recording the run's result; stopping after it\n"


def test_a_ctrl_c_in_the_hold_sets_a_stop_flag_after_it():
    with StopFlag().catching() as stop:  # `dlforge update --watch`
        with holding_stop_signals() as held:
            _signal(signal.SIGINT)
            assert stop.signal is None
        assert (held, stop.signal) == ([signal.SIGINT], signal.SIGINT)


def test_without_deliver_the_signals_held_are_dropped_the_first_one_answered(capfd):
    # a Ctrl-C during a write waiting for a locked store (up to 60 s) was dropped unsaid: the
    # process looked hung
    with holding_stop_signals(deliver=False, line="recording the run; a moment\n") as held:
        _signal(signal.SIGINT)
        _signal(signal.SIGTERM)
    assert held == [signal.SIGINT, signal.SIGTERM]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert capfd.readouterr().err == "recording the run; a moment\n"


def test_without_a_line_nothing_is_said(capfd):
    with pytest.raises(KeyboardInterrupt), holding_stop_signals(line=None) as held:
        _signal(signal.SIGINT)
    assert (held, capfd.readouterr().err) == ([signal.SIGINT], "")


def test_an_ignored_signal_is_not_held_and_stays_ignored(capfd):
    # held, it printed "stopping after it" and was delivered to SIG_IGN: nothing stopped
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # `dlforge run ... &` without job control
    try:
        with holding_stop_signals() as held:
            inside = signal.getsignal(signal.SIGINT)
            _signal(signal.SIGINT)
        after = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, old)
    assert (held, inside, after) == ([], signal.SIG_IGN, signal.SIG_IGN)
    assert capfd.readouterr().err == ""


def _locked_write(tmp_path: Path, seconds: float) -> tuple[list, list]:
    """A write that waits 0.6 s for another writer's lock, a SIGINT sent 0.1 s into it, under
    `holding_stop_signals(seconds)`: the signals held and what ran after the write."""
    db = tmp_path / "lock.db"
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("create table t (x)")
    other.execute("begin immediate")  # another writer holds the lock
    ours = sqlite3.connect(db, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    timers = [threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)),
              threading.Timer(0.6, other.execute, ("rollback",))]
    for timer in timers:
        timer.start()
    after: list = []
    with pytest.raises(KeyboardInterrupt), holding_stop_signals(seconds) as held:
        ours.execute("insert into t values (1)")  # waits in C for the lock
        after.append(ours.execute("select count(*) from t").fetchone())
    return held, after


def test_a_signal_that_comes_while_the_write_waits_for_the_lock_is_held_to_its_end(tmp_path):
    assert HOLD_S == 2 * BUSY_TIMEOUT_S
    assert _locked_write(tmp_path, HOLD_S) == ([signal.SIGINT], [(1,)])


def test_the_bound_is_measured_when_the_handler_runs_not_when_the_signal_came(tmp_path):
    # Python runs the handler only once SQLite's busy wait returns (0.6 s): sent at 0.1 s,
    # within a 0.3 s bound, it still acts at once, inside the write. So the bound must be
    # longer than the busy timeout, or a Ctrl-C sent early in a wait cuts the write short
    assert _locked_write(tmp_path, 0.3) == ([], [])


def test_a_signal_after_the_bound_acts_as_before():
    with pytest.raises(KeyboardInterrupt), holding_stop_signals(seconds=0.0) as dropped:
        time.sleep(0.01)
        _signal(signal.SIGINT)
    assert dropped == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(("stop", "status", "said"), [
    (KeyboardInterrupt(), "interrupted", ""),  # the run was left `running`
    # the KeyboardInterrupt delivered after the write replaced the error: the CLI said only
    # "nothing was left half-written ... run it again"
    (DataError("data: something the user must fix"), "failed", "data: something the user must fix: "),
])
def test_a_ctrl_c_during_a_stopped_or_failed_runs_write_records_it_and_says_what_stopped_it(
        tmp_path, monkeypatch, capfd, stop, status, said):
    def stops(*args, **kwargs):
        raise stop

    real_finish = Store.finish_run

    def ctrl_c_as_it_writes(self, *args, **kwargs):
        _signal(signal.SIGINT)  # torchrun's forwarded SIGINT, or the user's, as the write starts
        return real_finish(self, *args, **kwargs)

    monkeypatch.setattr(runner, "train_candidate", stops)
    monkeypatch.setattr(Store, "finish_run", ctrl_c_as_it_writes)
    ws = tmp_path / "ws"
    assert main(["-w", str(ws), "train", str(ROOT / "examples/breast_cancer.yaml"), "--quiet"]) == 130
    (run,) = Store.open(ws).list_runs()
    assert (run.status, run.error) == (status, f"{type(stop).__name__}: {stop}")
    assert capfd.readouterr().err.splitlines() == [
        f"recording the run as {status}; a moment",
        f"error: interrupted: {said}run {run.id} stopped; resume it with "
        f"`dlforge run --resume {run.id}`"]


def test_a_ctrl_c_during_the_completed_write_stops_the_run_after_it(tmp_path, monkeypatch, capfd):
    # dropped, the run went on through its promotion gate as if nothing was pressed
    real_finish, gated = Store.finish_run, []

    def ctrl_c_as_it_completes(self, run_id, status, *args, **kwargs):
        if status == "completed":
            _signal(signal.SIGINT)
        return real_finish(self, run_id, status, *args, **kwargs)

    monkeypatch.setattr(Store, "finish_run", ctrl_c_as_it_completes)
    monkeypatch.setattr(runner, "promote", lambda *args, **kwargs: gated.append(args))
    ws = tmp_path / "ws"
    assert main(["-w", str(ws), "run", str(ROOT / "examples/breast_cancer.yaml"), "--set",
                 "train.epochs=1", "--set", "evaluate.gate={conditions: ['accuracy >= 0']}",
                 "--quiet"]) == 130
    (run,) = Store.open(ws).list_runs()
    assert (run.status, run.error, gated) == ("completed", None, [])
    assert capfd.readouterr().err.splitlines() == [
        "recording the run's result; stopping after it",
        f"error: interrupted: run {run.id} completed and registered breast-cancer v1; its "
        f"promotion gate did not finish: promote it by hand with `dlforge promote breast-cancer "
        f"--candidate 1`"]
