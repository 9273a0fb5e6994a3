"""An anomaly run on real data (breast cancer, malignant as the anomaly), end to end: trained on
normal samples only, threshold on normal validation samples, the bundle, the predictor, the
server and `dlforge predict` give the score and the flag; bad input leaves the store untouched."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_breast_cancer
from typer.testing import CliRunner

import dlforge.candidate.train as candidate_train
from dlforge.cli.app import app
from dlforge.config.schema import ServeConfig
from dlforge.errors import ConfigError, DataError
from dlforge.pipeline import run
from dlforge.registry import Store, load
from dlforge.serve import create_app

CFG = {"name": "bc-anomaly", "seed": 0,
       "data": {"source": "builtin", "name": "breast_cancer", "normal_classes": ["benign"]},
       "model": {"type": "autoencoder", "hidden": [8], "latent_dim": 3},
       "train": {"epochs": 3, "batch_size": 32, "num_threads": 1},
       "evaluate": {"threshold": {"objective": "false_alarm_rate", "value": 0.05}}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run of CFG; what the fit loop was given is recorded."""
    ws = tmp_path_factory.mktemp("anomaly") / "ws"
    seen, real_fit = {}, candidate_train.fit
    patch = pytest.MonkeyPatch()

    def spy(model, loaders, cfg, task, **kw):
        seen.update(train_y=loaders.train.y.clone(), val_y=loaders.val.y.clone(), step=kw["step"])
        return real_fit(model, loaders, cfg, task, **kw)

    patch.setattr(candidate_train, "fit", spy)
    try:
        result = run(CFG, workspace=ws, progress=False)
    finally:
        patch.undo()
    return result, seen


def rows(n: int = 6) -> pd.DataFrame:
    """The first malignant and benign tumours of the source, interleaved."""
    data = load_breast_cancer(as_frame=True)
    x, y = data.frame.drop(columns="target"), data.target
    picks = np.ravel(list(zip(np.flatnonzero(y == 0)[: n // 2], np.flatnonzero(y == 1)[: n // 2],
                              strict=True)))
    return x.iloc[picks].reset_index(drop=True)


def test_the_autoencoder_trains_and_validates_on_normal_samples_only(trained):
    result, seen = trained
    assert type(seen["step"]).__name__ == "ReconstructionStep"
    assert seen["train_y"].unique().tolist() == [0] and seen["val_y"].unique().tolist() == [0]
    assert len(result.warnings) == 1  # and no advice to balance classes it never trains on
    assert result.warnings[0].startswith("data: the anomaly task trains on normal samples only; "
                                         "left out 148 anomalies of the training split (kept ")
    assert list(result.history[0])[:5] == ["epoch", "loss", "mae", "val_loss", "val_mae"]


def test_test_metrics_and_the_threshold_of_normal_validation_samples(trained):
    result, _ = trained
    metrics = result.test_metrics
    assert [name for name, _ in result.headline] == [
        "roc_auc", "pr_auc", "recall_at_threshold", "false_alarm_rate"]
    assert metrics["task"] == "anomaly" and metrics["class_names"] == ["normal", "anomaly"]
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["n_samples"]
    assert metrics["per_class"]["anomaly"]["support"] == 32  # malignant tumours stay in test
    assert result.baseline["name"] == "isolation forest (standardized)"
    bundle_threshold = load("bc-anomaly", workspace=result.workspace).threshold
    assert metrics["threshold"] == bundle_threshold
    html = result.report_path.read_text()
    assert "Anomaly scores of the test split" in html
    assert "Worst reconstructions" not in html  # a table has no images to show


def test_the_predictor_the_server_and_the_cli_return_the_score_and_the_flag(trained, tmp_path):
    result, _ = trained
    predictor = load("bc-anomaly", workspace=result.workspace)
    expected = predictor.predict(rows())
    t = predictor.threshold
    assert [sorted(r) for r in expected] == [["anomaly", "label", "score", "threshold"]] * 6
    assert [r["anomaly"] for r in expected] == [r["score"] >= t for r in expected]
    assert [r["label"] for r in expected] == ["anomaly" if r["anomaly"] else "normal"
                                              for r in expected]
    with Store.open(result.workspace) as store, \
            TestClient(create_app(store, ServeConfig())) as client:
        body = client.post("/v1/models/bc-anomaly/predict",
                           json={"inputs": rows().to_dict(orient="records")}).json()
    assert body == {"model": "bc-anomaly", "version": 1, "predictions": expected}
    rows().to_csv(tmp_path / "rows.csv", index=False)
    out = CliRunner().invoke(app, ["-w", str(result.workspace), "predict", "bc-anomaly",
                                   str(tmp_path / "rows.csv"), "-o", str(tmp_path / "out.csv")])
    assert out.exit_code == 0, out.output
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written.columns) == ["input", "label", "score", "threshold", "anomaly"]
    assert written["anomaly"].tolist() == [r["anomaly"] for r in expected]
    assert written["score"].tolist() == pytest.approx([r["score"] for r in expected], rel=1e-6)


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"model": {"type": "mlp"}}, ConfigError,
     "model.type: an anomaly task trains an autoencoder on normal samples (got 'mlp')"),
    ({"evaluate": {"threshold": {"objective": "min_recall", "value": 0.9}}}, ConfigError,
     "evaluate.threshold.objective: an anomaly threshold is calibrated on normal validation"),
    ({"data": {**CFG["data"], "normal_classes": ["healthy"]}}, DataError,
     "data.normal_classes: unknown classes ['healthy']"),
])
def test_bad_input_fails_before_any_run_is_recorded(tmp_path, change, error, message):
    with pytest.raises(error, match=re.escape(message)):
        run({**CFG, **change}, workspace=tmp_path, progress=False)
    assert Store.open(tmp_path).list_runs() == []
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").rglob("*.json"))


def test_an_image_run_shows_the_worst_reconstructions_beside_their_inputs(tmp_path):
    cfg = {"name": "digits-anomaly", "seed": 0,
           "data": {"source": "builtin", "name": "digits", "normal_classes": ["0", "1"],
                    "anomaly_classes": ["7"], "limit": 300},
           "model": {"type": "autoencoder", "kind": "conv", "hidden": [4], "latent_dim": 4},
           "train": {"epochs": 1, "batch_size": 32, "num_threads": 1},
           "evaluate": {"baseline": False, "misclassified_examples": 6,
                        "threshold": {"objective": "percentile", "value": 95}},
           "registry": {"enabled": False}}
    result = run(cfg, workspace=tmp_path, progress=False)
    html = result.report_path.read_text()
    assert "Anomaly scores of the test split" in html
    assert "Worst reconstructions of the test split (input, then reconstruction)" in html
    assert result.test_metrics["per_class"]["anomaly"]["support"] > 0
