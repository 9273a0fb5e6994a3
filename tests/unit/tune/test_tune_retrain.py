"""`tune.retrain_on: train+validation`: the best config retrained on both splits for the best
trial's epoch count, its validation threshold kept, the test split scored once, all recorded."""

from __future__ import annotations

import html
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import dlforge.pipeline.evaluate_model as evaluate_model
import dlforge.pipeline.runner as runner
from dlforge.config import load_config
from dlforge.data.prepare import prepare_data
from dlforge.data.preprocess import build_preprocessor
from dlforge.errors import ConfigError
from dlforge.pipeline import run
from dlforge.registry import Store
from dlforge.registry.engine import public_config
from dlforge.train.margins import MarginTracker
from dlforge.train.progress_file import ProgressFile
from dlforge.train.schedules import lr_sequence
from dlforge.tune.retrain import StopAfterEpochs, plan_retraining, retrain_config

RAW = {"data": {"source": "builtin", "name": "breast_cancer", "limit": 200},
       "model": {"type": "mlp", "hidden": [8]},
       "train": {"epochs": 10, "batch_size": 32, "num_threads": 1, "lr": 0.05,
                 "early_stopping": {"patience": 1}},
       "evaluate": {"baseline": False},
       "tune": {"n_trials": 2, "pruner": "none", "metric": "val_loss", "retrain_on": "train+validation",
                "space": {"train.lr": {"choice": [0.05, 0.1]}}}}


def _cfg(**tune):
    return load_config({**RAW, "tune": {**RAW["tune"], **tune}})


def test_the_best_trial_is_retrained_on_train_and_validation_and_test_is_scored_once(tmp_path, monkeypatch):
    cfg = _cfg()
    splits = prepare_data(cfg).splits
    n_train, n_val, n_test = len(splits.train), len(splits.val), len(splits.test)
    fits, scored = [], []
    real_train, real_predict = runner.train_candidate, evaluate_model.predict_scores

    def spy_train(plan, **kw):
        loaders, train_cfg = plan.data.loaders_for(plan.config), plan.config.train
        stops = [(type(cb), cb.epochs) for cb in plan.callbacks
                 if not isinstance(cb, ProgressFile)]
        fits.append((loaders.train.num_samples, loaders.val, train_cfg.epochs, train_cfg.early_stopping, stops))
        return real_train(plan, **kw)

    def spy_predict(model, x, task, **kw):
        scored.append(len(x))
        return real_predict(model, x, task, **kw)

    monkeypatch.setattr(runner, "train_candidate", spy_train)
    monkeypatch.setattr(evaluate_model, "predict_scores", spy_predict)
    result = run(RAW, workspace=tmp_path, progress=False)
    with Store.open(tmp_path) as store:
        final = store.get_run(result.run_id)
        best = store.get_run(final.metrics["trained_on"]["from_run"])
        version = store.resolve(result.model_ref)
    epochs = best.metrics["best_epoch"] + 1
    assert best.kind == "trial" and best.metrics["trial"] == final.metrics["tune"]["best_trial"]
    assert len(best.history) > epochs  # early stopping ran past its best epoch in the trial
    # the trial's schedule; the run's margin tracker (review.in_run) follows the retraining too
    assert fits == [(n_train + n_val, None, 10, None, [(StopAfterEpochs, epochs), (MarginTracker, 0)])]
    assert scored == [n_test]  # the test split, once; validation is never scored again
    assert len(result.history) == epochs and "val_loss" not in result.history[-1]
    assert final.config["tune"]["retrain_on"] == "train+validation"
    assert final.config["train"]["epochs"] == 10 and final.config["train"]["early_stopping"] is None
    assert final.config["train"]["checkpoint"]["monitor"] == "loss"
    source = f"trial {best.metrics['trial']}"
    threshold = best.metrics["threshold"]
    assert final.metrics["threshold"] == threshold  # chosen by the trial on validation, kept
    assert final.metrics["val_headline"] == best.metrics["val_headline"]
    expected = {
        "splits": "train+validation", "samples": n_train + n_val, "train_samples": n_train,
        "validation_samples": n_val, "epochs": epochs, "schedule_epochs": 10, "from": source,
        "from_run": best.id,
        "notes": [
            f"Retrained on train + validation ({n_train} + {n_val} = {n_train + n_val} samples) "
            f"with preprocessing fitted on them; the test split was used once, at the end.",
            f"Trained {epochs} epochs of {source}'s 10-epoch schedule, the count after which "
            f"{source} was best by val_loss; early stopping is off (no validation split is left "
            f"to stop on).",
            f"Decision threshold {threshold['value']:.4g} (max_f1) chosen on the validation split "
            f"by {source}'s model, kept unchanged.",
            "Checkpoints ranked by loss instead of val_loss.",
            f"Validation metrics and the diagnosis are {source}'s, measured before retraining.",
        ]}
    assert final.metrics["trained_on"] == expected
    assert version.metrics["trained_on"] == expected
    assert json.loads((result.bundle_path / "meta.json").read_text())["trained_on"] == expected
    report = result.report_path.read_text()
    assert f"Learning curves of {source} (trained on the train split" in report
    assert html.escape(expected["notes"][1]) in report


def test_union_data_refits_preprocessing_on_train_and_validation_only(tmp_path):
    cfg = _cfg()
    data = prepare_data(cfg)
    union = data.joined_for_retraining(cfg)
    s = data.splits
    both = pd.concat([s.train.x, s.val.x], ignore_index=True)
    refit = build_preprocessor(cfg.preprocess, "table").fit(both)
    np.testing.assert_allclose(union.tensors["test"][0].numpy(), refit.transform(s.test.x), rtol=1e-6)
    assert not np.allclose(union.tensors["test"][0].numpy(), data.tensors["test"][0].numpy())
    loaders = union.loaders_for(cfg)
    assert loaders.train.num_samples == len(s.train) + len(s.val)
    assert loaders.val is None and union.splits.test is s.test
    assert union.splits.info["retrain_on"] == "train+validation"
    assert list(union.splits.train.y) == list(s.train.y) + list(s.val.y)


def test_retrain_config_drops_what_needs_a_validation_split():
    cfg = load_config({**RAW, "train": {**RAW["train"], "checkpoint": {"monitor": "val_accuracy"}}})
    out = retrain_config(cfg)
    assert (out.train.epochs, out.train.early_stopping, out.train.checkpoint.monitor) == (10, None, "accuracy")
    assert out.train.lr == cfg.train.lr and out.tune == cfg.tune


def test_retrain_config_validates_every_epoch_as_there_is_nothing_to_validate():
    cfg = load_config({**RAW, "train": {**RAW["train"], "val_every": 4}})
    out = retrain_config(cfg)
    assert (out.train.val_every, out.train.checkpoint.monitor) == (1, "loss")


class _Searched:
    best_source, best_run_id = "trial 4", None


def test_a_best_trial_without_early_stopping_gives_all_its_epochs(tmp_path):
    cfg = load_config({**RAW, "train": {**RAW["train"], "early_stopping": False}})
    data = prepare_data(cfg)
    with Store.open(tmp_path) as store:
        trial = store.create_run("t", public_config(cfg), None, None, 0, kind="trial")
        store.finish_run(trial.id, "completed", history=[{"loss": 1.0}] * 5,
                         metrics={"best_epoch": None, "epochs_trained": 5, "threshold": None,
                                  "val_headline": [["accuracy", 0.5]]})
        searched = _Searched()
        searched.best_run_id = trial.id
        plan = plan_retraining(cfg, searched, store, data)
    assert (plan.epochs, plan.best_epoch, plan.restored_epoch, plan.threshold) == (5, None, None, None)
    assert plan.notes[1] == ("Trained 5 epochs of trial 4's 10-epoch schedule, as trial 4 did (it "
                             "had no early stopping).")
    assert plan.config.train.epochs == 10 and plan.val_headline == [["accuracy", 0.5]]
    assert [(type(cb), cb.epochs) for cb in plan.callbacks()] == [(StopAfterEpochs, 5)]


def test_the_retrained_model_follows_the_trial_schedule_for_its_best_epoch_count(tmp_path, monkeypatch):
    raw = {**RAW, "train": {**RAW["train"], "epochs": 12,
                            "schedule": {"type": "cosine", "min_lr": 0.001, "warmup_steps": 3}},
           "tune": {**RAW["tune"], "n_trials": 1}}
    trained, real_train = [], runner.train_candidate
    monkeypatch.setattr(runner, "train_candidate",
                        lambda *a, **kw: trained.append(real_train(*a, **kw)) or trained[-1])
    result = run(raw, workspace=tmp_path, progress=False)
    with Store.open(tmp_path) as store:
        best = store.get_run(store.get_run(result.run_id).metrics["trained_on"]["from_run"])
    epochs = best.metrics["best_epoch"] + 1
    splits = prepare_data(load_config(raw)).splits
    steps = -(-(len(splits.train) + len(splits.val)) // 32)
    trial_train = load_config(best.config).train
    assert trial_train.epochs == 12 and epochs < 12  # the trial stopped early: retraining is cut short
    assert trained[0].lr_history == lr_sequence(trial_train, steps, 12)[: epochs * steps]
    assert len(trained[0].history) == len(result.history) == epochs
    assert trained[0].stop_reason == f"stopped after {epochs} of the schedule's 12 epochs, the best trial's epoch count"
    # a cosine of `epochs` epochs (the old retraining) anneals on another trajectory
    short = trial_train.model_copy(update={"epochs": epochs})
    assert trained[0].lr_history != lr_sequence(short, steps, epochs)


def test_stop_after_epochs_stops_only_before_the_schedule_ends():
    state = SimpleNamespace(cfg=SimpleNamespace(epochs=4), stop_reason=None)
    stop = StopAfterEpochs(2)
    stop.on_epoch_end(0, {}, state)
    assert state.stop_reason is None
    stop.on_epoch_end(1, {}, state)
    assert state.stop_reason == "stopped after 2 of the schedule's 4 epochs, the best trial's epoch count"
    assert stop.state_key == "StopAfterEpochs{'epochs': 2}"
    whole = SimpleNamespace(cfg=SimpleNamespace(epochs=2), stop_reason=None)
    StopAfterEpochs(2).on_epoch_end(1, {}, whole)
    assert whole.stop_reason is None  # the schedule ended anyway: nothing was cut short


def test_a_plateau_schedule_on_validation_is_refused_before_any_trial():
    plateau = {**RAW, "train": {**RAW["train"], "schedule": {"type": "plateau"}}}
    with pytest.raises(ConfigError) as err:
        load_config(plateau)
    assert str(err.value) == (
        "train.schedule.monitor: the plateau schedule watches 'val_loss', which a model retrained "
        "on train+validation cannot measure; watch 'loss' or use tune.retrain_on: train")
    load_config({**plateau, "tune": {**plateau["tune"], "retrain_on": "train"}})


def test_a_run_retrained_on_train_and_validation_cannot_be_resumed(tmp_path):
    with Store.open(tmp_path) as store:
        record = store.create_run("model", public_config(_cfg()), None, None, 0)
        store.finish_run(record.id, "interrupted")  # else this live process still owns it
    with pytest.raises(ConfigError, match=rf"^resume: run {record.id} retrained a search's best "
                                          r"config on train\+validation, which a resume cannot "
                                          r"rebuild; start it again with `dlforge run CONFIG`"):
        run(workspace=tmp_path, resume=record.id, progress=False)


def test_the_best_rung_of_the_capacity_ladder_is_retrained_on_train_and_validation(tmp_path):
    raw = {**RAW, "model": {"type": "mlp", "hidden": [16]},
           "tune": {"strategy": "capacity_ladder", "n_trials": 2, "metric": "val_loss",
                    "retrain_on": "train+validation"}}
    splits = prepare_data(load_config(raw)).splits
    result = run(raw, workspace=tmp_path, progress=False)
    with Store.open(tmp_path) as store:
        final = store.get_run(result.run_id)
        rung = store.get_run(final.metrics["trained_on"]["from_run"])
    trained_on = final.metrics["trained_on"]
    assert trained_on["from"] == f"rung {rung.metrics['rung']}"
    assert trained_on["samples"] == len(splits.train) + len(splits.val)
    assert trained_on["epochs"] == rung.metrics["best_epoch"] + 1 == len(result.history)
    assert final.config["model"]["hidden"] == rung.config["model"]["hidden"]
