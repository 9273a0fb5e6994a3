"""A search killed mid-trial (SIGKILL, no clean-up) resumes with `--resume`: the trial it left
running is closed as interrupted and run again, and the budget ends complete."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml
from tests.unit.tune.test_tune_workers import resolved

from dlforge.cli import main
from dlforge.config import load_config
from dlforge.registry import Store
from dlforge.tune.results import INTERRUPTED
from dlforge.tune.study import open_study

RAW = {"data": {"limit": 300}, "model": {"type": "mlp", "hidden": [32]},
       "train": {"epochs": 60, "batch_size": 16, "num_threads": 1, "early_stopping": False},
       "evaluate": {"baseline": False},
       "tune": {"n_trials": 2, "pruner": "none", "metric": "val_accuracy",
                "space": {"train.lr": {"log_uniform": [0.001, 0.1]}}}}


@pytest.mark.slow
def test_a_killed_search_resumes_where_it_stopped(tmp_path, capsys):
    config, ws = tmp_path / "tune.yaml", tmp_path / "ws"
    config.write_text(yaml.safe_dump(RAW))
    proc = subprocess.Popen([sys.executable, "-m", "dlforge", "-w", str(ws), "tune", str(config),
                             "--worker", "-q"])
    cfg = resolved(load_config(RAW))  # the study is named by the resolved config, as search names it
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill it while its first trial trains
        time.sleep(0.5)
        if (ws / "dlforge.db").exists():
            with Store.open(ws) as store:
                if any(r.kind == "trial" and r.status == "running" for r in store.list_runs()):
                    break
    proc.kill()
    proc.wait()
    with Store.open(ws) as store:
        study = open_study(cfg, store.sqlalchemy_url, data_fingerprint=None)
        assert [t.state.name for t in study.get_trials()] == ["RUNNING"]
    assert main(["-w", str(ws), "tune", str(config), "--worker", "--resume", "-q"]) == 0
    with Store.open(ws) as store:
        trials = open_study(cfg, store.sqlalchemy_url, data_fingerprint=None).get_trials()
        runs = {r.id: r for r in store.list_runs() if r.kind == "trial"}
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    killed = runs[trials[0].user_attrs["run_id"]]
    assert (killed.status, killed.error) == ("interrupted", "the search was interrupted during this trial")
    assert "reason" not in trials[0].user_attrs
    assert capsys.readouterr().out.splitlines()[0].endswith(": 2 complete, 0 pruned, 1 failed")
    with Store.open(ws) as store:
        summary = search_summary(cfg, store)
    assert summary.trials[0].reason == INTERRUPTED


def search_summary(cfg, store):
    from dlforge.tune.search import collect

    return collect(open_study(cfg, store.sqlalchemy_url, data_fingerprint=None), cfg)


def test_a_search_stopped_while_training_its_best_config_resumes_that_run(tmp_path, monkeypatch):
    import dlforge.pipeline.runner as runner
    from dlforge.pipeline import run

    raw = {**RAW, "name": "s", "train": {**RAW["train"], "epochs": 2},
           "tune": {**RAW["tune"], "n_trials": 2}}
    real = runner._Stages.train_and_publish

    def stopped(self, plan, progress, resume_from):
        raise KeyboardInterrupt
    monkeypatch.setattr(runner._Stages, "train_and_publish", stopped)
    with pytest.raises(KeyboardInterrupt):
        run(raw, workspace=tmp_path, progress=False)
    monkeypatch.setattr(runner._Stages, "train_and_publish", real)
    with Store.open(tmp_path) as store:
        (stopped_run,) = [r for r in store.list_runs() if r.kind != "trial"]
        assert stopped_run.status == "interrupted"
    resumed = run(raw, workspace=tmp_path, progress=False, search_resume=True)
    assert resumed.run_id == stopped_run.id and resumed.model_ref == "s@1"
    with Store.open(tmp_path) as store:
        assert [(r.id, r.status) for r in store.list_runs() if r.kind != "trial"] == [
            (stopped_run.id, "completed")]
        assert [v.version for v in store.list_versions("s")] == [1]
    again = run(raw, workspace=tmp_path, progress=False, search_resume=True)  # nothing to continue
    assert again.run_id != stopped_run.id and again.model_ref == "s@2"
