"""The capacity ladder: rung sizes, when the climb stops, and `run` with strategy capacity_ladder."""

from __future__ import annotations

import pytest

from dlforge.config import load_config
from dlforge.errors import ConfigError
from dlforge.pipeline import run
from dlforge.registry import Store
from dlforge.tune.ladder import scaled, stop_reason


def test_rungs_scale_every_width_of_the_model():
    mlp = load_config({"model": {"type": "mlp", "hidden": [64, 32]}})
    assert scaled(mlp, 0.25).model.hidden == [16, 8]
    assert scaled(mlp, 0.125).model.hidden == [8, 4]
    cnn = load_config({"model": {"type": "basic_cnn", "filters": [32, 64], "dense": 512}})
    assert (scaled(cnn, 0.5).model.filters, scaled(cnn, 0.5).model.dense) == ([16, 32], 256)
    mobile = load_config({"model": {"type": "mobilenet", "width": 1.0}})
    assert scaled(mobile, 2.0).model.width == 2.0
    assert scaled(mlp, 0.001).model.hidden == [1, 1]  # never below one unit


@pytest.mark.parametrize(("rungs", "metric", "expected"), [
    ([{"value": 0.9, "gap": 0.0}], "val_accuracy", None),
    ([{"value": 0.8, "gap": 0.05}, {"value": 0.9, "gap": 0.06}], "val_accuracy", None),
    ([{"value": 0.8, "gap": 0.05}, {"value": 0.8, "gap": 0.05}], "val_accuracy",
     "rung 1 did not improve val_accuracy (0.8 vs best 0.8): more capacity does not help"),
    ([{"value": 0.5, "gap": 0.05}, {"value": 0.4, "gap": 0.2}], "val_loss",
     "rung 1 overfits: the generalization gap widened from 0.05 to 0.2"),
    ([{"value": 0.5, "gap": 0.05}, {"value": 0.4, "gap": 0.06}], "val_loss", None),
])
def test_the_climb_stops_when_validation_stops_improving_or_the_gap_widens(rungs, metric, expected):
    assert stop_reason(rungs, metric) == expected


def test_the_ladder_takes_no_space_and_needs_widths(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config({"tune": {"strategy": "capacity_ladder", "space": {"train.lr": {"choice": [0.1, 0.01]}}}})
    assert str(err.value) == ("tune.space: the capacity ladder grows the model's widths itself and "
                              "searches nothing else (got train.lr); remove tune.space or use "
                              "tune.strategy: search")
    with pytest.raises(ConfigError, match=r"^tune\.strategy: capacity_ladder grows a model's widths; "
                       r"model\.type 'linear' has none\. Use one of mlp, basic_cnn"):
        run({"data": {"limit": 60}, "model": {"type": "linear"},
             "tune": {"strategy": "capacity_ladder"}}, workspace=tmp_path, progress=False)


def test_run_climbs_the_ladder_and_trains_the_best_rung(tmp_path):
    raw = {"data": {"limit": 150}, "model": {"type": "mlp", "hidden": [64]},
           "train": {"epochs": 2, "batch_size": 32, "num_threads": 1}, "evaluate": {"baseline": False},
           "tune": {"strategy": "capacity_ladder", "metric": "val_accuracy", "n_trials": 3}}
    result = run(raw, workspace=tmp_path, progress=False)
    with Store.open(tmp_path) as store:
        summary = store.get_run(result.run_id).metrics["tune"]
        rung_runs = {r.id: r for r in store.list_runs() if r.kind == "trial"}
    rungs = summary["rungs"]
    assert [r["widths"]["hidden"] for r in rungs] == [[8], [16], [32]][: len(rungs)]
    assert {r["run_id"] for r in rungs} == set(rung_runs)
    best = max(rungs, key=lambda r: (r["value"], -r["rung"]))
    assert summary["best_rung"] == best["rung"]
    with Store.open(tmp_path) as store:
        assert store.get_run(result.run_id).config["model"]["hidden"] == best["widths"]["hidden"]
    assert max(r["val_accuracy"] for r in result.history) == best["value"]
    assert "Capacity ladder: val_accuracy and generalization gap per size" in result.report_path.read_text()


def test_the_code_version_is_asked_once_per_ladder_not_per_rung(tmp_path, monkeypatch):
    import dlforge.tune.ladder as ladder
    from dlforge.data.prepare import prepare_data

    calls = []
    monkeypatch.setattr(ladder, "current_code_version", lambda: calls.append(1) or "dlforge 9.9")
    monkeypatch.setattr(ladder, "stop_reason", lambda rungs, metric: None)  # climb all 3 rungs
    cfg = load_config({"data": {"limit": 120}, "model": {"type": "mlp", "hidden": [16]},
                       "train": {"epochs": 1, "batch_size": 32, "num_threads": 1},
                       "tune": {"strategy": "capacity_ladder", "metric": "val_loss", "n_trials": 3}})
    with Store.open(tmp_path) as store:
        result = ladder.climb(cfg, prepare_data(cfg), store, progress=False)
        versions = [store.get_run(r["run_id"]).code_version for r in result.rungs]
    assert calls == [1] and versions == ["dlforge 9.9"] * 3
