"""What a streamed run holds in memory: validation, test and the first training samples."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from tests.unit.streaming.shard_data import image_splits

from dlforge.cli import main
from dlforge.config import load_config
from dlforge.data import streamed
from dlforge.data.prepare import load_and_split, prepare_data
from dlforge.data.shards import write_shards
from dlforge.errors import ConfigError


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setattr(streamed, "SAMPLE_ROWS", 5)
    write_shards(image_splits(), tmp_path / "s", shard_size=4)
    return load_config({"data": {"source": "shards", "path": str(tmp_path / "s"), "streaming": True}})


def test_splits_of_a_streamed_config_hold_training_samples_evenly_spaced(cfg):
    _, splits, report = load_and_split(cfg)
    assert [len(part) for _, part in splits.items()] == [5, 7, 5]
    # 5 of 23, evenly spaced (a prefix of a class-ordered source would hold one class)
    assert splits.train.x[:, 0, 0, 0].tolist() == [0, 6, 11, 16, 22]
    assert splits.train.ids.tolist() == ['0', '6', '11', '16', '22']
    assert splits.info["streamed"] == {"train": 23, "in_memory": 5}
    assert report.warnings[-1] == (
        "data.streaming: the training split (23 samples) is read from disk; the checks of "
        "training samples, the baseline and the drift reference cover 5 of them, evenly spaced")


def test_a_streamed_run_trains_on_every_sample_but_keeps_five(cfg):
    data = prepare_data(cfg)
    assert (len(data.inputs("train")), data.facts.train_samples) == (5, 23)
    loader = data.loaders_for(cfg).train
    assert loader.num_samples == 23 and sum(len(yb) for _, yb in loader) == 23
    with pytest.raises(ConfigError, match=r"^data\.streaming: a k-fold review regroups"):
        data.holding_out(cfg, np.array([0]))


def test_shards_are_not_written_from_a_streamed_config(cfg, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", include={"data"})))
    assert main(["data", "shard", str(path), "--output", str(tmp_path / "again")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: data.streaming: this config streams its training split; write shards from a "
        "config with data.streaming: false")
    assert not (tmp_path / "again").exists()


def test_evaluate_all_of_a_streamed_config_says_what_all_holds(cfg, tmp_path):
    from dlforge.pipeline import run
    from dlforge.pipeline.evaluate_model import evaluate_registered

    trained = run(cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})}),
                  workspace=tmp_path / "ws", progress=False)
    got = evaluate_registered(trained.model_ref, cfg, split="all", workspace=tmp_path / "ws")
    assert got["n_samples"] == 5 + 7 + 5
    assert got["warnings"] == [
        "--split all: data.streaming keeps 5 of the training split's 23 samples in memory; these "
        "17 samples are validation, test and those (set data.streaming: false to score every "
        "sample)"]
    assert evaluate_registered(trained.model_ref, cfg, workspace=tmp_path / "ws")["warnings"] == []
