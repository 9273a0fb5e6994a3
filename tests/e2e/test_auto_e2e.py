"""End to end: configs that name only their data train a model chosen for that data
(`model: auto`, `train.epochs: auto`), print why, and store the resolved config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.e2e.test_cli_e2e import ROOT, cli

pytestmark = pytest.mark.e2e

# data.limit keeps each run to about a minute on a shared 2-core machine (a stratified subset)
SMS = {"source": "csv", "path": str(ROOT / "examples" / "data" / "sms-spam.csv"),
       "text_column": "text", "label_columns": ["label_name"], "split_column": "split",
       "positive_class": "spam", "limit": 2000}


@pytest.mark.parametrize(("name", "data", "model", "augment", "metric", "floor"), [
    ("digits", {"source": "builtin", "name": "digits", "limit": 700}, "basic_cnn",
     {"preset": "shifts", "crop": {"padding": 1, "p": 0.5, "pad_mode": "zeros"}}, "accuracy", 0.9),
    ("cancer", {"source": "builtin", "name": "breast_cancer"}, "mlp", {"preset": "none"},
     "accuracy", 0.93),
    ("sms", SMS, "text_cnn", {"preset": "none"}, "recall[spam]", 0.75),
])
def test_a_data_only_config_trains_a_model_chosen_for_its_data(tmp_path, name, data, model,
                                                               augment, metric, floor):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "data": data}))
    proc = cli(tmp_path / "ws", "run", str(path))
    lines = [line for line in proc.stderr.splitlines() if line.startswith("auto: ")]
    augment_key = "auto: augment" if name == "digits" else "auto: augment.preset"
    assert [line.split(" = ")[0] for line in lines] == \
        ["auto: model", "auto: train.epochs", "auto: train.time_budget_s", augment_key]
    assert f"'type': '{model}'" in lines[0]
    from dlforge.registry import Store

    store = Store.open(tmp_path / "ws")
    version = store.resolve(name)
    stored = store.get_run(version.run_id).config
    assert stored["model"]["type"] == model
    assert {k: v for k, v in stored["augment"].items() if v is not None} == augment
    assert isinstance(stored["train"]["epochs"], int) and stored["train"]["time_budget_s"] >= 120
    assert dict(version.metrics["headline"])[metric] >= floor
    assert Path(version.bundle_path).is_dir()
