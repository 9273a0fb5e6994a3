"""Rank 0 turns torchrun's SIGTERM into an error naming its run to resume, except while one is
being handled (rank 0 recording its failed collective must not be cut short); the other ranks
leave without a word on SIGTERM or Ctrl-C (rank 0's line and the launcher's say it once)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from dlforge.cli import main
from dlforge.errors import QuietExit
from dlforge.pipeline import distributed_run
from dlforge.pipeline.distributed_run import _stop_on_sigterm
from dlforge.registry import Store
from dlforge.train import distributed
from dlforge.train.distributed import DistributedError, Stopped

STOPPED = ("distributed: rank 0 was stopped by SIGTERM (another rank failed, or the launching "
           "process was stopped)")


@pytest.fixture
def restore_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def _term() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)  # the handler runs at the next bytecode


def test_sigterm_becomes_a_stopped_error_in_rank_0(restore_sigterm):
    _stop_on_sigterm(0)
    with pytest.raises(Stopped) as caught:
        _term()
    assert str(caught.value) == STOPPED


def test_sigterm_while_an_error_is_handled_lets_rank_0_finish_handling_it(restore_sigterm):
    _stop_on_sigterm(0)
    recorded = []
    try:
        raise DistributedError("distributed: rank 0 failed reducing the epoch's metrics")
    except DistributedError as exc:
        _term()  # e.g. while the run is being recorded as failed
        recorded.append(str(exc))
    assert recorded == ["distributed: rank 0 failed reducing the epoch's metrics"]


@pytest.mark.parametrize("handling", [False, True])
def test_sigterm_ends_another_rank_quietly(restore_sigterm, handling):
    # `--nproc 4` whose rank 0 exited 2: ranks waiting for its config each printed "rank N was
    # stopped by SIGTERM" when torchrun's SIGTERM came before the closed connection
    _stop_on_sigterm(3)
    with pytest.raises(QuietExit) as caught:
        if handling:
            try:
                raise DistributedError("distributed: rank 3 failed waiting for rank 0's config")
            except DistributedError:
                _term()
        else:
            _term()
    assert caught.value.code == 128 + signal.SIGTERM


@pytest.fixture
def as_rank(monkeypatch, restore_sigterm, tmp_path):
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


def _raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(("stop", "code"), [(_raise_keyboard_interrupt, 130), (_term, 143)])
def test_ctrl_c_or_sigterm_ends_another_rank_without_a_line(monkeypatch, capsys, as_rank,
                                                             stop, code):
    # --nproc 2 and Ctrl-C printed a bare "error: interrupted" per rank besides rank 0's line
    monkeypatch.setattr(distributed_run, "_follow", stop)
    assert as_rank(1) == code
    assert capsys.readouterr().err == ""


def test_sigterm_to_rank_0_names_the_run_to_resume(monkeypatch, capsys, tmp_path, as_rank):
    import dlforge.train.loop as loop_module

    monkeypatch.setattr(loop_module, "fault_point",
                        lambda name: _term() if name == "mid-epoch" else None)
    assert as_rank(0) == 1
    (run,) = Store.open(Path(tmp_path / "ws")).list_runs()
    assert (run.status, run.error) == ("failed", f"Stopped: {STOPPED}")
    assert capsys.readouterr().err == (f"error: {STOPPED}: run {run.id} stopped; resume it with "
                                       f"`dlforge run --resume {run.id}`\n")
