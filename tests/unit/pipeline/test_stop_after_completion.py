"""A stop after the run was recorded `completed` (a Ctrl-C in the promotion gate, an error in
building the result) leaves it completed: it was rewritten `interrupted` or `failed`, and the
user told to resume a run that had registered its version. Any error then says the run
completed and its version (and how to run the gate by hand), not the error alone."""

from __future__ import annotations

from pathlib import Path

from dlforge.cli import main
from dlforge.pipeline import runner
from dlforge.registry import Run, Store

ROOT = Path(__file__).resolve().parents[3]
GATE_HINT = ("its promotion gate did not finish: promote it by hand with `dlforge promote "
             "breast-cancer --candidate 1`")


def _gated_run(ws: Path) -> tuple[int, Run]:
    """`dlforge run` of one epoch with a promotion gate: the exit code and the run recorded."""
    code = main(["-w", str(ws), "run", str(ROOT / "examples/breast_cancer.yaml"), "--set",
                 "train.epochs=1", "--set", "evaluate.gate={conditions: ['accuracy >= 0']}",
                 "--quiet"])
    (run,) = Store.open(ws).list_runs()
    return code, run


def test_a_ctrl_c_in_the_promotion_gate_says_the_run_completed(tmp_path, monkeypatch, capsys):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "promote", ctrl_c)
    ws = tmp_path / "ws"
    code, run = _gated_run(ws)
    assert code == 130
    assert (run.status, run.error) == ("completed", None)
    assert [v.version for v in Store.open(ws).list_versions("breast-cancer")] == [1]
    assert capsys.readouterr().err.splitlines() == [
        f"error: interrupted: run {run.id} completed and registered breast-cancer v1; "
        f"{GATE_HINT}"]


def test_an_error_after_the_completed_write_leaves_the_run_completed(tmp_path, monkeypatch,
                                                                      capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(runner._Stages, "_result", broken)
    ws = tmp_path / "ws"
    assert main(["-w", str(ws), "train", str(ROOT / "examples/breast_cancer.yaml"), "--set",
                 "train.epochs=1", "--quiet"]) == 1
    (run,) = Store.open(ws).list_runs()
    assert (run.status, run.error) == ("completed", None)
    assert capsys.readouterr().err.splitlines() == [  # was only the error: a user trained again
        f"error: RuntimeError: boom: run {run.id} completed and registered breast-cancer v1"]


def test_an_error_in_the_promotion_gate_says_the_run_completed_and_how_to_promote(
        tmp_path, monkeypatch, capsys):
    def disk_full(*args, **kwargs):
        raise OSError("disk full")  # not a DlforgeError: `_promote` does not report it

    monkeypatch.setattr(runner, "promote", disk_full)
    ws = tmp_path / "ws"
    code, run = _gated_run(ws)
    assert code == 1
    assert (run.status, run.error) == ("completed", None)
    assert capsys.readouterr().err.splitlines() == [
        f"error: OSError: disk full: run {run.id} completed and registered breast-cancer v1; "
        f"{GATE_HINT}"]


def test_a_stop_just_after_the_completed_write_committed_leaves_it_completed(tmp_path,
                                                                            monkeypatch, capsys):
    # a signal handled past the hold's bound, after SQLite's COMMIT but before the runner noted
    # it: the committed `completed` row was rewritten `interrupted`, with a resume hint
    real_finish = Store.finish_run

    def committed_then_ctrl_c(self, run_id, status, *args, **kwargs):
        real_finish(self, run_id, status, *args, **kwargs)
        if status == "completed":
            raise KeyboardInterrupt

    monkeypatch.setattr(Store, "finish_run", committed_then_ctrl_c)
    ws = tmp_path / "ws"
    code, run = _gated_run(ws)
    assert code == 130
    assert (run.status, run.error) == ("completed", None)
    assert capsys.readouterr().err.splitlines() == [
        f"error: interrupted: run {run.id} completed and registered breast-cancer v1; "
        f"{GATE_HINT}"]
