"""The search around the one fit loop: trials as runs, failures and pruning recorded, resume,
selection by the validation metric, and `run` with a tune section."""

from __future__ import annotations

import optuna
import pytest

from dlforge.config import load_config
from dlforge.config.auto import resolve_auto
from dlforge.data.prepare import prepare_data
from dlforge.errors import ConfigError, DlforgeError
from dlforge.pipeline import run
from dlforge.registry import Store
from dlforge.tune import search
from dlforge.tune.results import INTERRUPTED
from dlforge.tune.search import _record
from dlforge.tune.study import open_study

BASE = {"data": {"limit": 120}, "model": {"type": "mlp", "hidden": [8]},
        "train": {"epochs": 2, "batch_size": 32, "num_threads": 1}, "evaluate": {"baseline": False}}
LR = {"train.lr": {"log_uniform": [1e-3, 1e-1]}}


def _cfg(tune: dict, **over) -> object:
    return load_config({**BASE, **over, "tune": {"pruner": "none", "metric": "val_accuracy", **tune}})


def _trial_runs(store: Store) -> list:
    return sorted((r for r in store.list_runs() if r.kind == "trial"), key=lambda r: r.name)


def test_every_trial_is_a_run_and_the_best_is_by_validation(tmp_path):
    cfg = _cfg({"n_trials": 3, "space": LR})
    with Store.open(tmp_path) as store:
        result = search(cfg, prepare_data(cfg), store, progress=False)
        runs = _trial_runs(store)
    assert result.counts == {"complete": 3, "pruned": 0, "failed": 0, "running": 0}
    assert [r.name for r in runs] == ["model-trial-0", "model-trial-1", "model-trial-2"]
    assert [t.run_id for t in result.trials] == [r.id for r in runs]
    for trial, record in zip(result.trials, runs, strict=True):
        assert record.status == "completed" and len(record.history) == 2
        assert record.config["train"]["lr"] == trial.params["train.lr"]
        assert record.metrics["val_accuracy"] == trial.value == max(
            row["val_accuracy"] for row in record.history)
    assert result.best.value == max(t.value for t in result.trials)
    assert result.best_config.train.lr == result.best.params["train.lr"]
    assert len({t.params["train.lr"] for t in result.trials}) == 3


def test_a_failed_trial_is_recorded_with_its_reason_and_the_study_goes_on(tmp_path):
    cfg = _cfg({"n_trials": 5, "sampler": "grid",
                "space": {"model.filters": {"choice": [[4], [4, 4, 4, 4]]}}},
               model={"type": "basic_cnn", "dense": 8})
    with Store.open(tmp_path) as store:
        result = search(cfg, prepare_data(cfg), store, progress=False)
        runs = {r.id: r for r in _trial_runs(store)}
    assert len(result.trials) == 2  # grid search stops at the grid's size
    by_filters = {tuple(t.params["model.filters"]): t for t in result.trials}
    failed, good = by_filters[(4, 4, 4, 4)], by_filters[(4,)]
    assert failed.state == "failed" and failed.reason.startswith("ConfigError: model.")
    assert runs[failed.run_id].status == "failed" and runs[failed.run_id].error == failed.reason
    assert good.state == "complete" and result.best is good


def test_no_complete_trial_means_no_best_config(tmp_path):
    cfg = _cfg({"n_trials": 2, "sampler": "grid",
                "space": {"model.filters": {"choice": [[4, 4, 4, 4], [8, 8, 8, 8]]}}},
               model={"type": "basic_cnn", "dense": 8})
    with Store.open(tmp_path) as store:
        result = search(cfg, prepare_data(cfg), store, progress=False)
    with pytest.raises(DlforgeError, match=r"^tune: no trial completed \(0 pruned, 2 failed\), so "
                       r"there is no best config to train; first reason: ConfigError: model\."):
        result.require_best()


def test_a_metric_the_task_does_not_log_fails_before_any_trial(tmp_path):
    cfg = _cfg({"n_trials": 2, "metric": "val_mae", "space": LR})
    with Store.open(tmp_path) as store, pytest.raises(ConfigError) as err:
        search(cfg, prepare_data(cfg), store, progress=False)
    assert str(err.value) == ("tune.metric: the search optimizes a validation metric of this "
                              "multiclass task: val_loss or val_accuracy (got 'val_mae')")
    with Store.open(tmp_path) as store:
        assert store.list_runs() == []


def test_resume_closes_trials_a_killed_process_left_running(tmp_path):
    cfg = _cfg({"n_trials": 2, "space": LR})
    data = prepare_data(cfg)
    with Store.open(tmp_path) as store:
        # as if killed while training trial 0; search names the study by the resolved config
        open_study(resolve_auto(cfg, data.facts), store.sqlalchemy_url, data_fingerprint=None).ask()
        result = search(cfg, data, store, progress=False, resume=True)
    assert [(t.number, t.state) for t in result.trials] == [(0, "failed"), (1, "complete"),
                                                           (2, "complete")]
    assert result.trials[0].reason == INTERRUPTED


def test_the_budget_is_shared_with_earlier_trials_of_the_study(tmp_path, capsys):
    cfg = _cfg({"n_trials": 2, "space": LR})
    with Store.open(tmp_path) as store:
        data = prepare_data(cfg)
        search(cfg, data, store, progress=False)
        again = search(cfg, data, store, progress=True)
    assert len(again.trials) == 2 and capsys.readouterr().err == ""


def test_progress_lines(tmp_path, capsys):
    cfg = _cfg({"n_trials": 2, "space": LR})
    with Store.open(tmp_path) as store:
        result = search(cfg, prepare_data(cfg), store, progress=True)
    lines = capsys.readouterr().err.splitlines()
    best = result.best
    assert lines[-1] == (f"trial 1 complete | 2/2 done: 2 complete, 0 pruned, 0 failed | best "
                         f"val_accuracy {best.value:.4g} (trial {best.number})")


def test_run_with_tune_retrains_the_best_trial_and_records_the_search(tmp_path):
    raw = {**BASE, "tune": {"n_trials": 2, "pruner": "none", "metric": "val_accuracy",
                            "space": {**LR, "train.batch_size": {"choice": [16, 32]}}}}
    result = run(raw, workspace=tmp_path, progress=False)
    with Store.open(tmp_path) as store:
        final = store.get_run(result.run_id)
        trials = _trial_runs(store)
    summary = final.metrics["tune"]
    assert summary["counts"] == {"complete": 2, "pruned": 0, "failed": 0, "running": 0}
    assert final.kind == "train" and len(trials) == 2
    assert final.config["train"]["lr"] == summary["best_params"]["train.lr"]
    assert final.config["train"]["batch_size"] == summary["best_params"]["train.batch_size"]
    # the retrained model is the best trial's: same data, seed and config give the same curve
    assert max(r["val_accuracy"] for r in result.history) == summary["best_value"]
    assert result.model_ref == "model@1"
    report = result.report_path.read_text()
    for title in ("Search trials (model-", "Optimization history: val_accuracy per trial",
                  "Slice plot: val_accuracy against each parameter"):
        assert title in report


def test_the_code_version_is_asked_once_per_search_not_per_trial(tmp_path, monkeypatch):
    import importlib

    search_module = importlib.import_module("dlforge.tune.search")
    calls = []
    monkeypatch.setattr(search_module, "current_code_version", lambda: calls.append(1) or "dlforge 9.9")
    cfg = _cfg({"n_trials": 3, "space": LR})
    with Store.open(tmp_path) as store:
        search(cfg, prepare_data(cfg), store, progress=False)
        versions = [r.code_version for r in _trial_runs(store)]
    assert calls == [1] and versions == ["dlforge 9.9"] * 3


def test_a_failed_trial_keeps_the_last_value_its_metric_logged():
    """train.val_every: the last history row may be an epoch without validation."""
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    history = [{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.8, "val_accuracy": 0.6},
               {"epoch": 2, "loss": 0.7}]
    _record(None, None, trial, "failed", "RuntimeError: diverged", history, "val_accuracy")
    assert trial.user_attrs == {"reason": "RuntimeError: diverged", "last_value": 0.6}


def _csv_project(root, rows: list[str]) -> object:
    """A project folder with a CSV table and a config naming it by a relative path."""
    root.mkdir()
    (root / "table.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    (root / "drop.txt").write_text("3\n")
    (root / "run.yaml").write_text(
        "name: table\ndata: {source: csv, path: table.csv, exclude_file: drop.txt}\n"
        "model: {type: mlp, hidden: [4]}\n"
        "train: {epochs: 1, batch_size: 16, num_threads: 1}\nevaluate: {baseline: false}\n"
        "tune: {pruner: none, metric: val_accuracy, space: {train.lr: {choice: [0.1, 0.01]}}}\n")
    return root / "run.yaml"


def test_copies_of_the_project_in_two_folders_share_one_study(tmp_path):
    rows = [f"{i % 7},{i % 5},{'yes' if i % 3 else 'no'}" for i in range(90)]
    here, there = _csv_project(tmp_path / "here", rows), _csv_project(tmp_path / "there", rows)
    other = _csv_project(tmp_path / "other", rows[:-1])
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with Store.open(tmp_path / "ws") as store:
        for config, n_trials in ((here, 1), (there, 2), (other, 1)):
            cfg = load_config(config, [f"tune.n_trials={n_trials}", f"tune.storage={url}"])
            result = search(cfg, prepare_data(cfg), store, progress=False)
    names = optuna.get_all_study_names(url)
    assert len(names) == 2  # here and there: one study; other data: another
    shared = next(n for n in names if len(optuna.load_study(study_name=n, storage=url).trials) == 2)
    assert result.study_name in names and result.study_name != shared
