"""Data that commands only score (a gate's `--gate-data`, `dlforge drift --data CONFIG`) is
loaded as `dlforge evaluate` loads it: a class without training samples there is no error."""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from dlforge.config import load_config
from dlforge.data.prepare import load_and_split
from dlforge.errors import DataError
from dlforge.lifecycle.data_once import reading_once
from dlforge.lifecycle.drift_data import read_inputs
from dlforge.lifecycle.gate_set import held_out_set


@pytest.fixture
def config(tmp_path):
    """A CSV config whose class 'c' is only in its test split (marked by a split column)."""
    rows = 24
    frame = pd.DataFrame({"a": np.arange(rows, dtype=float), "y": ["a", "b", "c"] * 8})
    frame["part"] = np.where(frame["y"] == "c", "test", "train")
    frame.to_csv(tmp_path / "held.csv", index=False)
    path = tmp_path / "held.yaml"
    path.write_text(yaml.safe_dump({"seed": 0, "data": {
        "source": "csv", "path": str(tmp_path / "held.csv"), "label_columns": ["y"],
        "split_column": "part"}}))
    return path


def test_the_config_cannot_train(config):
    with pytest.raises(DataError) as exc:
        load_and_split(load_config(config))
    assert str(exc.value) == ("data: class 'c' has no training samples; add samples (or raise "
                              "data.limit, if set) or drop it with data.classes")


def test_a_gate_set_from_such_a_config_holds_every_row(config):
    for block in (False, True):  # the promote command's block, and none
        with reading_once() if block else nullcontext():
            gate = held_out_set(load_config(config), str(config))
        assert len(gate) == 24 and gate.class_names == ("a", "b", "c")
        assert np.bincount(gate.y).tolist() == [8, 8, 8] and gate.source == f"data of {config}"


def test_drift_reads_such_a_configs_test_split(config):
    predictor = SimpleNamespace(modality="table", bundle=SimpleNamespace(input_spec={"columns": ["a"]}))
    test = read_inputs(config, predictor, split="test")
    assert test["a"].tolist() == [float(i) for i in range(2, 24, 3)]
    assert len(read_inputs(config, predictor)) == 24

