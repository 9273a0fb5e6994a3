"""What a run leaves for the dashboard: its progress file and its diagnosis in the store."""

from __future__ import annotations

import json

from dlforge.pipeline import run
from dlforge.registry import Store

TINY = {
    "name": "tiny",
    "data": {"source": "builtin", "name": "breast_cancer"},
    "model": {"type": "mlp", "hidden": [8]},
    "train": {"epochs": 3, "batch_size": 64, "early_stopping": None},
    "evaluate": {"baseline": False},
}


def test_a_run_writes_its_progress_file_and_stores_its_diagnosis(tmp_path):
    result = run(TINY, workspace=tmp_path, progress=False)
    with Store.open(tmp_path) as store:
        record = store.get_run(result.run_id)
    progress = json.loads((tmp_path / "artifacts" / "runs" / result.run_id / "progress.json").read_text())
    assert progress["epochs"] == 3
    assert [row["epoch"] for row in progress["history"]] == [0, 1, 2]
    assert progress["history"] == json.loads(json.dumps(record.history))
    assert record.metrics["diagnosis"] == result.diagnosis
    assert record.metrics["diagnosis"]["verdict"] in ("underfitting", "overfitting", "good fit")
