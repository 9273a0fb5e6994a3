"""`data.streaming` in the config: what it needs, what it refuses, when `auto` streams."""

from __future__ import annotations

import pytest
from tests.unit.streaming.shard_data import image_splits

from dlforge.config import load_config
from dlforge.config.schema import DataConfig
from dlforge.data import streamed
from dlforge.data.shards import write_shards
from dlforge.errors import ConfigError


def problems(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(config)
    return str(err.value).splitlines()


def test_streaming_needs_shards():
    assert problems({"data": {"source": "builtin", "streaming": True}}) == [
        "data.streaming: streams shards, image folders and CSVs; set data.source: shards and "
        "data.path to a directory `dlforge data shard` wrote, or image_folder or csv "
        "(got source 'builtin')"]
    assert problems({"data": {"source": "shards"}}) == [
        "data.path: required for source 'shards' (got null)"]


def test_keys_that_need_the_split_in_memory_are_refused_one_line_each():
    got = problems({"data": {"source": "shards", "path": "s", "streaming": "auto", "limit": 50,
                             "exclude": ["3"]},
                    "balance": {"method": "oversample"}, "transfer": {"source": "digits@1"}})
    assert [line.split(":")[0] for line in got] == [
        "data.limit", "data.exclude", "balance.method", "transfer.source"]
    assert got[2] == ("balance.method: resampling or weighting needs the training split in memory "
                      "(got 'oversample'); use none with data.streaming")


def test_a_streamed_image_folder_selects_and_curates_but_does_not_resample():
    folder = {"source": "image_folder", "path": "photos", "streaming": True}
    load_config({"data": {**folder, "limit": 50, "classes": ["a", "b"], "exclude": ["a/1.png"]}})
    assert problems({"data": folder, "balance": {"method": "oversample"}}) == [
        "balance.method: resampling or weighting needs the training split in memory "
        "(got 'oversample'); use none with data.streaming"]
    assert not streamed.streams(DataConfig(**{**folder, "streaming": "auto"}))


def test_a_streamed_csv_refuses_text_and_categorical_columns():
    csv = {"source": "csv", "path": "t.csv", "label_columns": ["y"], "streaming": True}
    assert problems({"data": {**csv, "text_column": "review", "categorical_columns": ["zip"]}}) == [
        "data.text_column: a streamed CSV holds numeric features only (got 'review'); set "
        "data.streaming: false",
        "data.categorical_columns: a streamed CSV holds numeric features only (got ['zip']); "
        "set data.streaming: false"]


def test_auto_streams_only_shards_above_the_threshold(tmp_path, monkeypatch):
    write_shards(image_splits(), tmp_path / "s")
    cfg = DataConfig(source="shards", path=str(tmp_path / "s"), streaming="auto")
    assert streamed.STREAM_ABOVE_BYTES == 2**30
    assert not streamed.streams(cfg)
    monkeypatch.setattr(streamed, "STREAM_ABOVE_BYTES", 35 * 24 - 1)  # the shards' decoded size - 1
    assert streamed.streams(cfg)
    assert not streamed.streams(DataConfig(source="shards", path=str(tmp_path / "s")))


def test_retraining_on_train_and_validation_is_refused():
    tune = {"retrain_on": "train+validation", "space": {"train.lr": {"choice": [0.05, 0.1]}}}
    assert problems({"data": {"source": "shards", "path": "s", "streaming": True},
                     "model": {"type": "mlp"}, "tune": tune}) == [
        "tune.retrain_on: train+validation regroups the splits in memory; use train with "
        "data.streaming"]


def test_an_update_of_a_streamed_config_is_refused():
    got = problems({"data": {"source": "shards", "path": "s", "streaming": True},
                    "update": {"source": "digits@production"},
                    "evaluate": {"gate": {"conditions": ["accuracy >= champion - 0.01"]}}})
    assert got == ["update.source: an update mixes its replay buffer into the training split in "
                   "memory; set data.streaming: false"]
