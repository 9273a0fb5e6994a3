"""Table preprocessing: imputation, scaling, one-hot, PCA, train-only fitting, round trip."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from dlforge.config.schema import PreprocessConfig, TablePreprocess
from dlforge.data.preprocess import TablePreprocessor, build_preprocessor, preprocessor_from_dict
from dlforge.errors import ConfigError, DataError


def fit(df: pd.DataFrame, **kw) -> TablePreprocessor:
    return TablePreprocessor(TablePreprocess(**kw)).fit(df)


def test_standard_scaling_matches_sklearn_and_hand_values():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    out = fit(df).transform(df)
    assert out.dtype == np.float32 and out.shape == (4, 1)
    expected = (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25)
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(out, StandardScaler().fit_transform(df), rtol=1e-6)


def test_minmax_scaling_exact():
    df = pd.DataFrame({"a": [0.0, 5.0, 10.0], "b": [3, 3, 3]})
    out = fit(df, scaling="minmax").transform(df)
    np.testing.assert_array_equal(out, np.float32([[0, 0], [0.5, 0], [1, 0]]))


def test_statistics_come_from_train_only():
    train = pd.DataFrame({"a": [1.0, 3.0]})
    val = pd.DataFrame({"a": [100.0, 300.0]})
    pre = fit(train)
    out = pre.transform(val)
    assert pre.numeric[0]["center"] == 2.0 and pre.numeric[0]["scale"] == 1.0
    np.testing.assert_array_equal(out[:, 0], np.float32([98, 298]))


@pytest.mark.parametrize(("impute", "fill"), [("median", 3.0), ("mean", 14 / 3)])
def test_numeric_imputation_with_train_statistic(impute, fill):
    train = pd.DataFrame({"a": [1.0, np.nan, 3.0, 10.0]})
    pre = fit(train, impute=impute, scaling="none")
    out = pre.transform(pd.DataFrame({"a": [np.nan, 2.0]}))
    np.testing.assert_array_equal(out[:, 0], np.float32([fill, 2.0]))


def test_nan_without_imputation_names_the_column():
    train = pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, 1.0], "c": ["x", None]})
    with pytest.raises(DataError) as err:
        fit(train, impute="none", categorical_impute="none")
    assert str(err.value) == (
        "column 'b': 1 missing value(s) in the training split; set preprocess.table.impute to "
        "fill them (got 'none')\n"
        "column 'c': 1 missing value(s) in the training split; set "
        "preprocess.table.categorical_impute to fill them (got 'none')")
    pre = fit(pd.DataFrame({"a": [1.0, 2.0]}), impute="none")
    with pytest.raises(DataError, match=r"^column 'a': 1 missing value\(s\) and preprocess"):
        pre.transform(pd.DataFrame({"a": [np.nan]}))


def test_one_hot_with_most_frequent_fill_and_unseen_category():
    train = pd.DataFrame({"color": ["red", "blue", "red", None, "green"]})
    pre = fit(train)
    assert pre.feature_names == ["color=blue", "color=green", "color=red"]
    out = pre.transform(pd.DataFrame({"color": ["blue", "purple", None]}))
    np.testing.assert_array_equal(out, np.float32([[1, 0, 0], [0, 0, 0], [0, 0, 1]]))


def test_numeric_first_then_one_hot_blocks_and_rows_as_dicts():
    train = pd.DataFrame({"kind": pd.Categorical(["b", "a", "b"]), "x": [0.0, 1.0, 2.0]})
    pre = fit(train, scaling="minmax")
    assert pre.feature_names == ["x", "kind=a", "kind=b"]
    rows = [{"x": 1, "kind": "a", "label": 9}, {"x": "2", "kind": "c"}]
    np.testing.assert_array_equal(pre.transform(rows), np.float32([[0.5, 1, 0], [1, 0, 0]]))
    assert pre.output_shape == (3,)


def test_missing_column_and_non_number_are_data_errors():
    pre = fit(pd.DataFrame({"age": [1.0, 2.0], "city": ["a", "b"]}))
    with pytest.raises(DataError) as err:
        pre.transform([{"city": "a"}])
    assert str(err.value) == "input: missing column 'age' (the model was trained on columns ['age', 'city'])"
    with pytest.raises(DataError) as err:
        pre.transform([{"name": "a"}])
    assert str(err.value) == ("input: missing columns 'age', 'city' (the model was trained on "
                              "columns ['age', 'city'])")
    with pytest.raises(DataError) as err:
        pre.transform([{"age": "old", "city": "a"}])
    assert str(err.value) == "column 'age': expected numbers, got 'old' (1 non-numeric value(s))"


def test_booleans_are_refused_where_numbers_were_learned_naming_column_and_row():
    pre = fit(pd.DataFrame({"age": [1.0, 2.0], "city": ["a", "b"]}))
    assert [s["boolean"] for s in pre.numeric] == [False]
    for rows, shown, count in (([{"age": 1, "city": "a"}, {"age": True, "city": "a"}], "true", 1),
                               (pd.DataFrame({"age": [False, True], "city": ["a", "b"]}), "false", 2)):
        with pytest.raises(DataError) as err:
            pre.transform(rows)
        row = 1 if count == 1 else 0
        assert str(err.value) == (f"column 'age': expected numbers, got {shown} (row {row}; {count} "
                                  f"boolean value(s)); only a column that was boolean in training "
                                  f"takes true/false: send a number")


def test_a_bundle_from_before_the_boolean_flag_takes_booleans_as_1_and_0_as_then():
    pre = fit(pd.DataFrame({"age": [1.0, 3.0], "city": ["a", "b"]}), scaling="none")
    state = json.loads(json.dumps(pre.to_dict()))
    del state["state"]["numeric"][0]["boolean"]  # unknown: accepted as before the flag
    old = preprocessor_from_dict(state)
    rows = [{"age": True, "city": "a"}, {"age": False, "city": "b"}, {"age": 2, "city": "a"}]
    np.testing.assert_array_equal(old.transform(rows), np.float32([[1, 1, 0], [0, 0, 1], [2, 1, 0]]))
    np.testing.assert_array_equal(old.transform(pd.DataFrame({"age": [True], "city": ["b"]})),
                                  np.float32([[1, 0, 1]]))
    with pytest.raises(DataError, match=r"^column 'age': expected numbers, got true \(row 0; "):
        pre.transform([{"age": True, "city": "a"}])  # explicitly not boolean: refused


def test_a_column_boolean_in_training_takes_true_and_false_as_1_and_0():
    pre = fit(pd.DataFrame({"member": [True, False, False, True], "x": [1.0, 2.0, 3.0, 4.0]}),
              scaling="none")
    assert [(s["name"], s["boolean"]) for s in pre.numeric] == [("member", True), ("x", False)]
    again = preprocessor_from_dict(json.loads(json.dumps(pre.to_dict())))
    rows = [{"member": True, "x": 5}, {"member": False, "x": 6}, {"member": 1, "x": 7}]
    np.testing.assert_array_equal(again.transform(rows), np.float32([[1, 5], [0, 6], [1, 7]]))


@pytest.mark.parametrize(("value", "shown"), [(1e39, "1e+39"), (float("inf"), "inf"),
                                              ("-inf", "-inf"), (3e38, "3e+38")])
def test_numbers_not_finite_in_float32_once_scaled_are_data_errors(value, shown):
    pre = fit(pd.DataFrame({"age": [0.0, 0.5]}))  # standard scaling: x / 0.25 - 1
    assert pre.transform([{"age": 1e30}]).tolist() == [[np.float32(4e30)]]
    with pytest.raises(DataError) as err:
        pre.transform([{"age": 1.0}, {"age": value}])
    assert str(err.value) == (f"column 'age': value {shown} (row 1) is not a finite number within "
                              f"float32's range (about 3.4e38) after the training's scaling (1 such "
                              f"value(s)); send finite values of the size the model was trained on")


def test_pca_matches_sklearn():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(64, 5)) @ rng.normal(size=(5, 5)), columns=list("abcde"))
    pre = fit(df, scaling="none", pca_components=2)
    out = pre.transform(df)
    expected = PCA(n_components=2, svd_solver="full").fit_transform(df.to_numpy())
    assert out.shape == (64, 2) and pre.output_shape == (2,)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_pca_larger_than_features_is_a_config_error():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]})
    with pytest.raises(ConfigError) as err:
        fit(df, pca_components=3)
    assert str(err.value) == ("preprocess.table.pca_components: must be at most min(features, "
                              "training rows) = min(2, 3) = 2 (got 3)")


def test_json_round_trip_transforms_identically():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=64), "b": rng.integers(0, 5, 64).astype(float),
                       "c": rng.choice(["x", "y", "z"], 64)})
    df.loc[3, "a"] = np.nan
    cfg = PreprocessConfig(table={"impute": "median", "pca_components": 3})
    pre = build_preprocessor(cfg, "table").fit(df.iloc[:48])
    again = preprocessor_from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(again.transform(df.iloc[48:]), pre.transform(df.iloc[48:]))
    assert again.to_dict() == pre.to_dict()


def test_a_column_whose_mean_overflows_warns_nothing():
    # the mean imputation's fill was computed outside np.errstate: a RuntimeWarning leaked
    df = pd.DataFrame({"big": [1e308, 1.5e308, 1e308]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="^column 'big': its values are too large for standard"):
            fit(df)
        assert TablePreprocessor(TablePreprocess(scaling="minmax")).fit(df).transform(df).tolist() \
            == [[0.0], [1.0], [0.0]]


def test_raw_values_beyond_float32_are_scaled_in_float64():
    df = pd.DataFrame({"a": [1e40, 3e40, 5e44, 1e45]})
    out = fit(df).transform(df)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0], StandardScaler().fit_transform(df)[:, 0], rtol=1e-6)


@pytest.mark.parametrize(("scaling", "spread"), [
    ("standard", "mean or standard deviation"), ("minmax", "minimum or range")])
@pytest.mark.parametrize("chunked", [False, True])
def test_a_column_whose_scaling_overflows_is_refused_naming_it(scaling, spread, chunked):
    # training failed later with serving's "send finite values" line, after overflow warnings
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0], "big": [-1.5e308, 1e300, 1.5e308]})
    pre = TablePreprocessor(TablePreprocess(scaling=scaling))
    with pytest.raises(DataError) as err, warnings.catch_warnings():
        warnings.simplefilter("error")
        pre.fit_chunks([df[:2], df[2:]]) if chunked else pre.fit(df)
    assert str(err.value) == (f"column 'big': its values are too large for {scaling} scaling "
                              f"(their {spread} overflows float64); rescale the column (e.g. "
                              "divide by a power of 10) or drop those rows")
