"""The search's figures in the run report: which ones, and that they are PNG."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from dlforge.config import load_config
from dlforge.tune.plots import param_importances, search_plots
from dlforge.tune.search import collect

CFG = load_config({"model": {"type": "mlp"}, "tune": {"metric": "val_accuracy", "space": {
    "train.lr": {"log_uniform": [1e-4, 1e-1]}, "model.hidden": {"choice": [[8], [16, 8]]}}}})
DISTS = {"train.lr": FloatDistribution(1e-4, 1e-1, log=True),
         "model.hidden": CategoricalDistribution(["[8]", "[16, 8]"])}


def _study(values: list[tuple[float, str, float | None]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for lr, hidden, value in values:
        state = TrialState.COMPLETE if value is not None else TrialState.FAIL
        study.add_trial(create_trial(params={"train.lr": lr, "model.hidden": hidden},
                                     distributions=DISTS, value=value, state=state,
                                     user_attrs={} if value is not None else {"reason": "boom"}))
    return study


def test_every_figure_of_a_search_is_a_png():
    result = collect(_study([(0.01, "[8]", 0.8), (0.001, "[16, 8]", 0.6), (0.05, "[8]", 0.9),
                             (0.002, "[16, 8]", None)]), CFG)
    plots = search_plots(result)
    assert [title for title, _ in plots] == [
        f"Search trials ({result.study_name})", "Optimization history: val_accuracy per trial",
        "Parameter importances (Optuna's default evaluator)", "Slice plot: val_accuracy against each parameter"]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for _, png in plots)
    assert set(param_importances(result)) == {"train.lr", "model.hidden"}
    assert result.best.number == 2 and result.best.params == {"train.lr": 0.05, "model.hidden": [8]}


def test_importances_need_two_complete_trials():
    result = collect(_study([(0.01, "[8]", 0.8), (0.002, "[16, 8]", None)]), CFG)
    assert param_importances(result) == {}
    assert [t for t, _ in search_plots(result)][2:] == ["Slice plot: val_accuracy against each parameter"]
    assert result.table()[1][1][-1] == "boom"
