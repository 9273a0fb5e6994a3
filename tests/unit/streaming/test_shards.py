"""Sharded array files: the manifest, reading rows across shards, missing and corrupt shards."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.streaming.shard_data import image_splits, table_splits

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance, Splits, TaskSpec
from dlforge.data.shards import ShardSet, write_shards
from dlforge.data.sources import load_dataset
from dlforge.data.split import split_dataset
from dlforge.errors import ConfigError, DataError


def test_the_manifest_records_counts_dtypes_shapes_and_checksums(tmp_path):
    manifest = write_shards(image_splits(), tmp_path / "s", shard_size=5)
    train = manifest["splits"]["train"]
    assert [s["count"] for s in train["shards"]] == [5, 5, 5, 5, 3]
    assert train["count"] == 23 and manifest["splits"]["test"]["count"] == 5
    assert manifest["x"] == {"dtype": "uint8", "shape": [1, 4, 4]}
    assert manifest["y"] == {"dtype": "int64", "shape": []}
    assert manifest["decoded_bytes"] == 35 * (16 + 8)
    assert train["shards"][0]["x"]["file"] == "train-00000.x.npy"
    assert len(train["shards"][0]["x"]["sha256"]) == 64
    assert sorted(p.name for p in (tmp_path / "s").iterdir())[:2] == ["manifest.json", "test-00000.x.npy"]


def test_rows_are_read_across_shards_in_the_order_asked(tmp_path):
    write_shards(image_splits(), tmp_path / "s", shard_size=5)
    x, y = ShardSet.open(tmp_path / "s", verify=True).split("train").take(np.array([22, 0, 7, 7, 13]))
    assert x[:, 0, 0, 0].tolist() == [22, 0, 7, 7, 13]
    assert y.tolist() == [1, 0, 1, 1, 1]


def test_a_table_keeps_its_columns(tmp_path):
    splits = table_splits()
    write_shards(splits, tmp_path / "s", shard_size=10)
    part = ShardSet.open(tmp_path / "s").split("val")
    frame = part.as_inputs(part.take(np.arange(7))[0])
    assert list(frame.columns) == ["i", "f"]
    np.testing.assert_array_equal(frame.to_numpy(), splits.val.x.to_numpy())


def test_the_shards_source_keeps_the_written_split(tmp_path):
    splits = image_splits()
    write_shards(splits, tmp_path / "s", shard_size=4)
    cfg = DataConfig(source="shards", path=str(tmp_path / "s"))
    again = split_dataset(load_dataset(cfg), cfg, seed=3)
    for name, part in splits.items():
        np.testing.assert_array_equal(getattr(again, name).x, part.x)
        np.testing.assert_array_equal(getattr(again, name).y, part.y)


def test_a_missing_shard_is_one_line_naming_it(tmp_path):
    write_shards(image_splits(), tmp_path / "s", shard_size=5)
    (tmp_path / "s" / "train-00002.y.npy").unlink()
    with pytest.raises(DataError) as err:
        ShardSet.open(tmp_path / "s")
    assert str(err.value) == (f"data.path: shard train-00002.y.npy is missing from {tmp_path / 's'}; "
                              f"write the shards again")


def test_a_truncated_or_changed_shard_is_corrupt(tmp_path):
    write_shards(image_splits(), tmp_path / "s", shard_size=5)
    short, changed = tmp_path / "s" / "val-00001.x.npy", tmp_path / "s" / "test-00000.x.npy"
    short.write_bytes(short.read_bytes()[:-3])
    blob = bytearray(changed.read_bytes())
    blob[-1] ^= 0xFF
    changed.write_bytes(bytes(blob))
    with pytest.raises(DataError) as err:
        ShardSet.open(tmp_path / "s", verify=True)
    size = short.stat().st_size
    assert str(err.value).splitlines() == [
        f"data.path: shard val-00001.x.npy has {size} bytes, the manifest says {size + 3}; it is "
        f"corrupt, write the shards again",
        "data.path: shard test-00000.x.npy does not match its sha256 in the manifest; it is "
        "corrupt, write the shards again"]


def test_no_manifest_says_how_to_write_one(tmp_path):
    with pytest.raises(DataError, match=r"has no manifest.json; write one with `dlforge data shard"):
        ShardSet.open(tmp_path)


def test_an_existing_directory_or_texts_are_refused_and_nothing_is_written(tmp_path):
    """An existing folder was a DataError (exit 1) worded unlike the CLI's own check (exit 2)."""
    (tmp_path / "s").mkdir()
    with pytest.raises(ConfigError) as info:
        write_shards(image_splits(), tmp_path / "s")
    assert str(info.value) == (f"--output: {tmp_path / 's'} already exists; remove it or choose "
                               f"another directory")
    assert list((tmp_path / "s").iterdir()) == []
    texts = Dataset(x=np.array(["a b"] * 3, dtype=object), y=np.zeros(3, dtype=np.int64),
                    task=TaskSpec("binary", ("n", "p")), modality="text", provenance=Provenance("t"))
    with pytest.raises(DataError, match=r"^data: texts cannot be sharded"):
        write_shards(Splits(texts, texts, texts), tmp_path / "t")
    assert not (tmp_path / "t").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_no_rows_asked_gives_empty_arrays_of_the_sample_shape(tmp_path):
    write_shards(image_splits(), tmp_path / "s", shard_size=5)
    x, y = ShardSet.open(tmp_path / "s").split("train").take(np.array([], dtype=np.int64))
    assert (x.shape, x.dtype, y.shape) == ((0, 1, 4, 4), np.uint8, (0,))


def test_shards_of_one_data_set_written_from_two_folders_have_one_fingerprint(tmp_path):
    def fingerprint(folder: str, limit: int = 100) -> str:
        source = {"data": {"source": "csv", "path": f"/{folder}/t.csv", "exclude_file": None,
                           "cache_dir": f"/{folder}/cache", "limit": limit}, "fingerprint": "f"}
        write_shards(image_splits(), tmp_path / folder, shard_size=5, source=source)
        return load_dataset(DataConfig(source="shards", path=str(tmp_path / folder))).provenance.fingerprint

    assert fingerprint("a") == fingerprint("b") != fingerprint("c", limit=50)
