"""One path from config to candidate: every training of a run, a search trial, a ladder rung and
retraining goes through `candidate.train_candidate`, which makes the only call to the fit loop."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

import dlforge.candidate.train as candidate_train
import dlforge.candidate.validation as validation
from dlforge.candidate import TrainingPlan, train_candidate
from dlforge.config import load_config
from dlforge.data.prepare import prepare_data
from dlforge.errors import ConfigError
from dlforge.pipeline import run
from dlforge.runtime import select_device

SRC = Path(__file__).resolve().parents[3] / "src" / "dlforge"
TINY = {"data": {"source": "builtin", "name": "breast_cancer", "limit": 150},
        "model": {"type": "mlp", "hidden": [8]}, "evaluate": {"baseline": False},
        "train": {"epochs": 2, "batch_size": 32, "num_threads": 1}}


def test_only_the_candidate_path_calls_the_fit_loop():
    callers = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "fit":
                callers.append(str(path.relative_to(SRC)))
    assert callers == ["candidate/train.py"]


@pytest.mark.parametrize(("tune", "fits"), [
    (None, 1),
    ({"n_trials": 2, "pruner": "none", "space": {"train.lr": {"choice": [0.01, 0.02]}}}, 3),
    ({"strategy": "capacity_ladder", "n_trials": 2}, 3),
    ({"n_trials": 2, "pruner": "none", "retrain_on": "train+validation",
      "space": {"train.lr": {"choice": [0.01, 0.02]}}}, 3),
])
def test_runs_trials_rungs_and_retraining_each_train_one_candidate(tmp_path, monkeypatch, tune, fits):
    plans, scored, real_fit, real_score = [], [], candidate_train.fit, validation.score_on_validation
    monkeypatch.setattr(candidate_train, "fit", lambda *a, **k: plans.append(a[2]) or real_fit(*a, **k))
    monkeypatch.setattr(candidate_train, "score_on_validation",
                        lambda *a, **k: scored.append(1) or real_score(*a, **k))
    run({**TINY, "tune": tune}, workspace=tmp_path, progress=False)
    assert len(plans) == fits
    # validation is scored for the run's own candidate only: a trial needs its scores only to
    # retrain on train+validation, and a retrained candidate takes the best trial's
    expected = {None: 1, "train": 1, "train+validation": 2}[tune and tune.get("retrain_on", "train")]
    assert len(scored) == expected


def test_a_candidate_scores_validation_once_and_reports_its_best_row():
    cfg = load_config(TINY)
    data = prepare_data(cfg)
    candidate = train_candidate(TrainingPlan(cfg, data), device=select_device("cpu"))
    assert candidate.validation is candidate.validation  # computed once
    assert candidate.trained_on == {"splits": "train", "samples": len(data.splits.train)}
    best = candidate.best_row("val_accuracy")
    assert best["val_accuracy"] == max(r["val_accuracy"] for r in candidate.history)
    assert candidate.best_row("val_loss")["val_loss"] == min(r["val_loss"] for r in candidate.history)
    scores = candidate.validation
    assert scores.headline[0][0] == f"recall[{data.task.class_names[1]}]"
    assert scores.threshold.objective == "max_f1" and scores.threshold_value == scores.threshold.value


def test_a_candidate_validated_every_other_epoch_ranks_and_diagnoses_its_validated_rows():
    cfg = load_config({**TINY, "train": {**TINY["train"], "epochs": 5, "val_every": 2}})
    candidate = train_candidate(TrainingPlan(cfg, prepare_data(cfg)), device=select_device("cpu"))
    validated = [row for row in candidate.history if "val_loss" in row]
    assert [row["epoch"] for row in validated] == [1, 3, 4]
    best = candidate.best_row("val_accuracy")
    assert best["epoch"] in (1, 3, 4)
    assert best["val_accuracy"] == max(r["val_accuracy"] for r in validated)
    assert candidate.best_epoch in (1, 3, 4)  # early stopping's best
    assert candidate.validation.diagnosis.verdict != "unknown"


@pytest.mark.parametrize(("change", "message"), [
    ({"tune": {"metric": "val_f1", "space": {"train.lr": {"choice": [0.1, 0.01]}}}},
     "tune.metric: the search optimizes a validation metric: val_loss, val_accuracy, val_mae "
     "(got 'val_f1')"),
    ({"model": {"type": "linear"}, "tune": {"strategy": "capacity_ladder"}},
     "tune.strategy: capacity_ladder grows a model's widths; model.type 'linear' has none."),
    ({"model": {"type": "autoencoder"}},
     "model.type: autoencoder reconstructs its input, for anomaly detection only "
     "(data.normal_classes); choose a classifier or regressor such as mlp or basic_cnn"),
    ({"train": {"optimizer": "sgd", "nesterov": True, "momentum": 0}},
     "train.nesterov: needs train.momentum > 0 (got 0.0)"),
    ({"train": {"ema": {"decay": 0.9}}},
     "train.ema: needs train.early_stopping.restore_best: false (got true); the trained model is "
     "the weight average, which restoring the best epoch's weights would replace (or set "
     "train.early_stopping: false)"),
])
def test_config_check_reports_every_cross_field_rule(tmp_path, capsys, change, message):
    import yaml

    from dlforge.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**TINY, **change}))
    assert main(["config", "check", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load_config({**TINY, **change})


@pytest.mark.parametrize(("setting", "threads"), [(1, 1), (None, 3)])
def test_a_candidate_trains_on_train_num_threads_when_set(monkeypatch, setting, threads):
    """...and only that candidate: the process's count is back afterwards, even when the
    fit loop raised, so a later candidate with it unset does not inherit a trial's count."""
    seen = []
    monkeypatch.setattr(candidate_train, "fit", lambda *a, **k: seen.append(torch.get_num_threads())
                        or (_ for _ in ()).throw(RuntimeError("stop after fit starts")))
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        cfg = load_config({**TINY, "train": {**TINY["train"], "num_threads": setting}})
        with pytest.raises(RuntimeError, match="stop after fit starts"):
            train_candidate(TrainingPlan(cfg, prepare_data(cfg)), device=select_device("cpu"))
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen == [threads]
    assert after == 3
