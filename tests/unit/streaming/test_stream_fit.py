"""Preprocessing fitted on a streaming pass equals the in-memory fit (float tolerance)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.unit.streaming.shard_data import image_splits, table_splits

from dlforge.config import load_config
from dlforge.config.schema import ImagePreprocess, PreprocessConfig, TablePreprocess
from dlforge.data.prepare import prepare_data
from dlforge.data.preprocess import build_preprocessor
from dlforge.data.preprocess.image import ImagePreprocessor
from dlforge.data.preprocess.table import TablePreprocessor
from dlforge.data.shards import write_shards
from dlforge.errors import ConfigError, DataError


def pieces(x, size):
    return [x[i:i + size] for i in range(0, len(x), size)]


def test_image_statistics_from_pieces_equal_the_whole_arrays():
    x = np.random.default_rng(1).integers(0, 256, (50, 3, 5, 5), dtype=np.uint8)
    whole = ImagePreprocessor(ImagePreprocess()).fit(x)
    streamed = ImagePreprocessor(ImagePreprocess()).fit_chunks(pieces(x, 7))
    np.testing.assert_allclose(streamed.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.std, whole.std, rtol=1e-12)
    assert streamed.divisor == whole.divisor == 255.0
    np.testing.assert_allclose(whole.mean, x.mean(axis=(0, 2, 3)) / 255, rtol=1e-12)


@pytest.mark.parametrize(("scaling", "impute"), [("standard", "none"), ("minmax", "mean"),
                                                  ("standard", "mean"), ("none", "none")])
def test_table_statistics_from_pieces_equal_scikit_learns(scaling, impute):
    rng = np.random.default_rng(2)
    x = pd.DataFrame({"a": rng.normal(3, 2, 40), "b": rng.uniform(-1, 9, 40), "c": np.ones(40)})
    if impute == "mean":
        x.loc[[3, 17], "a"] = np.nan
    cfg = TablePreprocess(scaling=scaling, impute=impute)
    whole = TablePreprocessor(cfg).fit(x)
    streamed = TablePreprocessor(cfg).fit_chunks(pieces(x, 9))
    assert [s["name"] for s in streamed.numeric] == ["a", "b", "c"]
    for got, want in zip(streamed.numeric, whole.numeric, strict=True):
        for key in ("center", "scale", "fill"):
            assert got[key] == (None if want[key] is None else pytest.approx(want[key], rel=1e-12)), key
    np.testing.assert_allclose(streamed.transform(x), whole.transform(x), rtol=1e-6, atol=1e-6)


def test_what_needs_the_whole_table_is_refused():
    with pytest.raises(ConfigError, match=r"^preprocess\.table: median imputation and pca"):
        TablePreprocessor(TablePreprocess(impute="median")).fit_chunks([])
    text = build_preprocessor(PreprocessConfig(), "text")
    with pytest.raises(ConfigError, match=r"^data\.streaming: text preprocessing cannot be fitted"):
        text.fit_chunks([])


@pytest.mark.parametrize("make", [image_splits, table_splits])
def test_a_streamed_run_fits_what_an_in_memory_run_fits(tmp_path, make):
    write_shards(make(), tmp_path / "s", shard_size=4)
    data = {"source": "shards", "path": str(tmp_path / "s")}
    streamed = prepare_data(load_config({"data": data | {"streaming": True}}))
    loaded = prepare_data(load_config({"data": data | {"streaming": False}}))
    assert streamed.stream is not None and loaded.stream is None
    want, got = loaded.preprocessor.to_dict()["state"], streamed.preprocessor.to_dict()["state"]
    flat = (lambda s: [v for d in s["numeric"] for v in (d["center"], d["scale"])]) \
        if "numeric" in want else (lambda s: s["mean"] + s["std"])
    np.testing.assert_allclose(flat(got), flat(want), rtol=1e-12)
    assert streamed.facts == loaded.facts
    assert streamed.splits.info["streamed"] == {"train": 23, "in_memory": 23}
    np.testing.assert_array_equal(streamed.inputs("test").numpy(), loaded.inputs("test").numpy())


def test_a_boolean_column_is_recorded_as_in_memory_and_takes_true_and_false():
    x = pd.DataFrame({"member": [True, False, False, True, True], "a": [1.0, 2.0, 3.0, 4.0, 6.0]})
    cfg = TablePreprocess(scaling="minmax", impute="mean")
    whole = TablePreprocessor(cfg).fit(x)
    streamed = TablePreprocessor(cfg).fit_chunks(pieces(x, 2))
    assert streamed.numeric == whole.numeric
    assert [(s["name"], s["boolean"]) for s in streamed.numeric] == [("member", True), ("a", False)]
    rows = [{"member": True, "a": 6}, {"member": False, "a": 1}]
    np.testing.assert_array_equal(streamed.transform(rows), np.float32([[1, 1], [0, 0]]))
    with pytest.raises(DataError, match=r"^column 'a': expected numbers, got true \(row 0; "):
        streamed.transform([{"member": True, "a": True}])


@pytest.mark.parametrize("impute", ["most_frequent", "none"])
def test_a_categorical_column_from_pieces_equals_the_whole_fit(impute):
    flags = [True, None, False, False, None, True] if impute == "most_frequent" else [True, False] * 3
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 6.0, 7.0], "flag": pd.Series(flags, dtype=object)})
    cfg = TablePreprocess(categorical_impute=impute)
    whole = TablePreprocessor(cfg).fit(x)
    streamed = TablePreprocessor(cfg).fit_chunks(pieces(x, 2))
    assert streamed.categorical == whole.categorical == [
        {"name": "flag", "fill": "False" if impute == "most_frequent" else None,  # ties: smallest
         "categories": ["False", "True"]}]
    assert streamed.feature_names == whole.feature_names == ["a", "flag=False", "flag=True"]
    np.testing.assert_allclose(streamed.transform(x), whole.transform(x), rtol=1e-6)


@pytest.mark.parametrize(("values", "impute", "message"), [
    ([True, None, False, None], "none", "column 'flag': 2 missing value(s) in the training split; "
                                        "set preprocess.table.categorical_impute to fill them (got 'none')"),
    ([None, None, None, None], "most_frequent", "column 'flag': every training value is missing; "
                                                "drop the column"),
])
def test_a_categorical_column_is_refused_from_pieces_as_by_the_whole_fit(values, impute, message):
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "flag": pd.Series(values, dtype=object)})
    cfg = TablePreprocess(categorical_impute=impute)
    for fit in (TablePreprocessor(cfg).fit, lambda t: TablePreprocessor(cfg).fit_chunks(pieces(t, 2))):
        with pytest.raises(DataError) as info:
            fit(x)
        assert str(info.value) == message
