"""`dlforge runs list/show`: a run whose process died shows as interrupted, with its resume command."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import update
from typer.testing import CliRunner

from dlforge.cli import main
from dlforge.cli.app import app
from dlforge.registry import Store
from dlforge.registry.tables import RunRow


def test_a_killed_run_shows_as_interrupted_with_the_command_that_resumes_it(tmp_path):
    store = Store.open(tmp_path)
    killed = store.create_run("killed", {}, None, None, 0)
    live = store.create_run("live", {}, None, None, 0)  # owned by this test's process
    done = store.create_run("done", {}, None, None, 0)
    store.finish_run(done.id, "completed")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with store._session(write=True) as s:
        s.execute(update(RunRow).where(RunRow.id == killed.id).values(pid=gone.pid))
    result = CliRunner().invoke(app, ["-w", str(tmp_path), "runs", "list"])
    listing = result.stdout.splitlines()
    assert listing[0].split() == ["id", "name", "status", "started", "headline"]
    assert {line.split()[0]: line.split()[2] for line in listing[1:]} == {
        killed.id: "interrupted", live.id: "running", done.id: "completed"}
    assert result.stderr == (f"run {killed.id} was interrupted (its process is gone); resume it "
                             f"with `dlforge run --resume {killed.id}`\n")
    shown = CliRunner().invoke(app, ["-w", str(tmp_path), "runs", "show", killed.id]).output
    assert "status   interrupted" in shown
    assert f"process  pid {gone.pid} on " in shown
    assert f"resume   dlforge run --resume {killed.id}" in shown


def test_an_interrupted_search_trial_points_to_its_search_and_is_never_resumed_alone(tmp_path, capsys):
    store = Store.open(tmp_path)
    trial = store.create_run("s-trial-1", {"name": "s"}, None, None, 0, kind="trial")
    store.finish_run(trial.id, "interrupted", error="the search was interrupted during this trial")
    listed = CliRunner().invoke(app, ["-w", str(tmp_path), "runs", "list"])
    assert listed.stderr == (f"run {trial.id} was interrupted (its process is gone); it is a search "
                             "trial: resume its search with `dlforge tune CONFIG --resume`\n")
    shown = CliRunner().invoke(app, ["-w", str(tmp_path), "runs", "show", trial.id]).output
    assert "resume   dlforge tune CONFIG --resume" in shown
    assert main(["-w", str(tmp_path), "run", "--resume", trial.id]) == 2
    assert capsys.readouterr().err == (
        f"error: resume: run {trial.id} is trial 's-trial-1' of the search 's'; a trial is not resumed "
        "alone (it would be tested and registered as the search's model): continue the search "
        "with `dlforge tune CONFIG --resume`, which runs its unfinished trials again\n")
    assert store.get_run(trial.id).status == "interrupted"
    assert store.list_models() == []


def _interrupt_at(point):
    def fault_point(name):
        if name == point:
            raise KeyboardInterrupt
    return fault_point


def test_ctrl_c_during_a_run_says_interrupted_and_how_to_resume(tmp_path, monkeypatch, capsys):
    import dlforge.train.loop as loop_module

    config = tmp_path / "tiny.yaml"
    config.write_text("name: tiny\ndata: {source: builtin, name: breast_cancer}\n"
                      "model: {type: mlp, hidden: [4]}\ntrain: {epochs: 2}\n")
    monkeypatch.setattr(loop_module, "fault_point", _interrupt_at("mid-epoch"))
    assert main(["-w", str(tmp_path / "ws"), "run", str(config), "--quiet"]) == 130
    (stopped,) = Store.open(tmp_path / "ws").list_runs()
    assert stopped.status == "interrupted"
    assert capsys.readouterr().err == (f"error: interrupted: run {stopped.id} stopped; resume it "
                                       f"with `dlforge run --resume {stopped.id}`\n")


def test_ctrl_c_during_a_search_says_how_to_continue_it(tmp_path, monkeypatch, capsys):
    import dlforge.train.loop as loop_module

    config = tmp_path / "search.yaml"
    config.write_text("name: s\ndata: {source: builtin, name: breast_cancer}\n"
                      "model: {type: mlp, hidden: [4]}\ntrain: {epochs: 2}\n"
                      "tune: {n_trials: 2, space: {train.lr: {log_uniform: [0.001, 0.01]}}}\n")
    monkeypatch.setattr(loop_module, "fault_point", _interrupt_at("mid-epoch"))
    assert main(["-w", str(tmp_path / "ws"), "tune", str(config), "--quiet"]) == 130
    assert capsys.readouterr().err == ("error: interrupted: the search stopped during trial 0; "
                                       "continue it with `dlforge tune CONFIG --resume`\n")
    (trial,) = Store.open(tmp_path / "ws").list_runs()
    assert (trial.kind, trial.status) == ("trial", "interrupted")
    # a worker's --resume would fail the running trials of the others: it restarts as a worker
    assert main(["-w", str(tmp_path / "ws"), "tune", str(config), "--worker", "--quiet"]) == 130
    assert capsys.readouterr().err == (
        "error: interrupted: the worker stopped during trial 1; restart this worker with "
        "`dlforge tune CONFIG --worker` (add --resume only when no other worker is running)\n")


def test_a_pruned_trial_shows_its_reason_not_an_error(tmp_path):
    store = Store.open(tmp_path)
    pruned = store.create_run("s-trial-2", {"name": "s"}, None, None, 0, kind="trial")
    store.finish_run(pruned.id, "completed", error="pruned after epoch 2: val_loss 0.9 was worse "
                     "than the pruner's bar at that epoch")
    shown = CliRunner().invoke(app, ["-w", str(tmp_path), "runs", "show", pruned.id]).output
    assert "reason   pruned after epoch 2: val_loss 0.9 was worse than the pruner's bar" in shown
    assert "error" not in shown
