"""Training-serving skew: the server samples what it serves and publishes its drift at /metrics,
refreshed in the background; `dlforge drift NAME --served` reads the same sample."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dlforge.config.drift_schema import DriftConfig
from dlforge.config.schema import ServeConfig
from dlforge.lifecycle.drift_run import drift_of_served
from dlforge.serve import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "lifecycle"))
from drift_models import images, make_store  # noqa: E402

LABELS = ("digits", "1")


@pytest.fixture
def drift_store(tmp_path):
    store = make_store(tmp_path)
    yield store
    store.close()


def drift_figures(client) -> dict[str, float]:
    text = client.get("/metrics").text
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("dlforge_drift") and (s.labels["model"], s.labels["version"]) == LABELS:
                found[s.name + s.labels.get("feature", "")] = s.value
    return found


def serve(client, batches: int, brighter: int) -> None:
    for seed in range(batches):
        x = images(20, seed=100 + seed, brighter=brighter).tolist()
        assert client.post("/v1/models/digits/predict", json={"inputs": x}).status_code == 200


def test_shifted_inputs_move_the_drift_figure(drift_store, tmp_path):
    app = create_app(drift_store, ServeConfig(), drift=DriftConfig(reservoir=60, refresh_seconds=600))
    with TestClient(app) as client:
        serve(client, 3, brighter=0)
        assert drift_figures(client) == {}  # nothing computed before the first refresh
        app.state.drift.refresh()
        before = drift_figures(client)
        serve(client, 30, brighter=50)  # 600 bright inputs: most of the 60 kept are bright
        app.state.drift.refresh()
        after = drift_figures(client)
    assert before["dlforge_drift_sample_rows"] == 60 and before["dlforge_drift_detected"] == 0
    assert before["dlforge_drift_effectpixel_mean"] < 0.2
    assert after["dlforge_drift_detected"] == 1 and after["dlforge_drift_features_drifted"] >= 1
    assert after["dlforge_drift_effectpixel_mean"] > 0.6
    served = drift_of_served("digits", workspace=tmp_path / "ws").result  # the saved sample
    assert served.rows == 60 and served.features["pixel_mean"]["drifted"] is True
    assert served.source.startswith("served sample (60 of 660 inputs served")


def test_the_figures_refresh_in_the_background(drift_store):
    app = create_app(drift_store, ServeConfig(), drift=DriftConfig(refresh_seconds=0.05))
    with TestClient(app) as client:
        serve(client, 2, brighter=60)
        deadline = time.monotonic() + 20
        # until a refresh after the second request: one may run between the two (20 rows)
        while (drift_figures(client).get("dlforge_drift_sample_rows") != 40
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert drift_figures(client)["dlforge_drift_sample_rows"] == 40


def test_a_model_without_reference_is_served_unwatched(drift_store):
    app = create_app(drift_store, ServeConfig(), drift=DriftConfig(refresh_seconds=600))
    with TestClient(app) as client:
        rows = [{"a": 0.1, "b": 5.0, "color": "red"}] * 3
        assert client.post("/v1/models/churn@2/predict", json={"inputs": rows}).status_code == 200
        assert app.state.drift.refresh() == {}


def test_a_damaged_reference_serves_the_model_unwatched_and_logs_why(drift_store, tmp_path, caplog):
    file = tmp_path / "ws/artifacts/models/digits/v1/reference.json"
    file.write_text('{"features": "edited by hand"}')
    app = create_app(drift_store, ServeConfig(), drift=DriftConfig(reservoir=60, refresh_seconds=600))
    with caplog.at_level("WARNING", logger="dlforge.serve"), TestClient(app) as client:
        serve(client, 2, brighter=0)  # both answered: the first load too
        app.state.drift.refresh()
        assert drift_figures(client) == {}
    assert [r.getMessage() for r in caplog.records if r.name == "dlforge.serve"] == [
        f"drift: bundle: {file} is incomplete or corrupt ('features' is missing or not a dict); "
        f"train and register the model again to check drift; serving digits@1 without drift "
        f"monitoring"]
