"""`dlforge runs list/show`: a run whose process died shows as interrupted, with its resume command."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import update
from typer.testing import CliRunner

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
