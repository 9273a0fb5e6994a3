"""validate: fatal messages (all at once), warnings, duplicates, leakage and the report."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pytest
from splits_synth import images, table

from dlforge.config.schema import DataConfig, PreprocessConfig
from dlforge.data.dataset import Dataset, Provenance, TaskSpec
from dlforge.data.split import split_dataset
from dlforge.data.validate import row_hashes, validate
from dlforge.errors import DataError

MEDIAN = PreprocessConfig(table={"impute": "median"})


def _fatal(ds, **kwargs) -> list[str]:
    with pytest.raises(DataError) as err:
        validate(ds, **kwargs)
    return str(err.value).splitlines()


def test_no_samples():
    ds = images([0, 0])
    assert _fatal(ds) == ["data: no samples were loaded from synthetic"]


def test_class_without_training_samples():
    ds = images([10, 0, 5], ("a", "b", "c"))
    assert _fatal(ds) == [
        "data: class 'b' has no training samples; add samples (or raise data.limit, if set) or drop it with data.classes"
    ]


def test_nan_in_numeric_column_without_imputation():
    ds = table()
    ds.x.loc[[1, 5, 9], "age"] = np.nan
    assert _fatal(ds, preprocess=PreprocessConfig()) == [
        "data: column 'age' has 3 missing values (rows 1, 5, 9); set preprocess.table.impute to median or mean"
    ]
    assert validate(ds, preprocess=MEDIAN).missing == {"age": 3}


def test_nan_in_categorical_column_without_imputation():
    ds = table()
    ds.x.loc[[2], "color"] = None
    pre = PreprocessConfig(table={"categorical_impute": "none"})
    assert _fatal(ds, preprocess=pre) == [
        "data: column 'color' has 1 missing values (rows 2); "
        "set preprocess.table.categorical_impute to most_frequent"
    ]


def test_missing_values_are_warnings_when_preprocessing_is_unknown():
    ds = table()
    ds.x.loc[[1, 5, 9], "age"] = np.nan
    assert validate(ds).warnings == ["data: column 'age' has 3 missing values (rows 1, 5, 9)"]


def test_nan_labels():
    ds = table()
    y = ds.y.astype(np.float64)
    y[[0, 3]] = np.nan
    assert _fatal(replace(ds, y=y)) == [
        "data: 2 labels are missing (NaN); drop those rows or fill in their labels"
    ]


def test_labels_outside_the_class_list():
    ds = table()
    y = ds.y.copy()
    y[[0, 1, 2]] = [5, 7, 5]
    assert _fatal(replace(ds, y=y)) == [
        "data: 3 labels are outside the class list (values 5, 7); "
        "allowed are 0..1 for classes ['no', 'yes']"
    ]


def test_every_fatal_problem_is_reported_at_once():
    ds = table()
    ds.x.loc[[4], "age"] = np.nan
    y = np.where(ds.y == 1, 3, 0)  # no 'yes' left, and 3 is not a class
    assert _fatal(replace(ds, y=y), preprocess=PreprocessConfig()) == [
        "data: 32 labels are outside the class list (values 3); "
        "allowed are 0..1 for classes ['no', 'yes']",
        "data: class 'yes' has no training samples; add samples (or raise data.limit, if set) or drop it with data.classes",
        "data: column 'age' has 1 missing values (rows 4); set preprocess.table.impute to median or mean",
    ]


def test_leakage_across_splits_is_detected():
    ds = images([40, 24])
    splits = split_dataset(ds, DataConfig(), seed=0)
    splits.test.x[0] = splits.train.x[3]
    splits.test.x[1] = splits.val.x[0]
    report = validate(ds, splits)
    assert report.leakage == {"train/val": 0, "train/test": 1, "val/test": 1}
    assert report.duplicates == {"train": 0, "val": 0, "test": 0}
    assert report.warnings == [
        "data: 1 test samples also appear in train (leakage); remove the duplicates from the source",
        "data: 1 test samples also appear in val (leakage); remove the duplicates from the source",
    ]


def test_leakage_between_the_source_splits_without_splits():
    ds = images([40, 24], split=["test" if i % 4 == 0 else "train" for i in range(64)])
    ds.x[4] = ds.x[1]  # row 4 is a test row, row 1 a train row
    assert validate(ds).leakage == {"train/test": 1}


def test_duplicates_within_a_split():
    ds = images([40, 24])
    ds.x[[1, 2, 50]] = ds.x[0]
    report = validate(ds)
    assert report.duplicates == {"all": 3} and report.leakage == {}
    assert report.warnings == [
        "data: the dataset has 3 exact duplicate samples; remove them from the source"
    ]


def test_counts_imbalance_and_warning():
    report = validate(images([50, 10], ("ok", "ng")))
    assert report.samples == {"all": 60} and report.counts == {"all": {"ok": 50, "ng": 10}}
    assert report.imbalance_ratio == 5.0
    assert report.warnings == [
        "data: classes are imbalanced in the dataset (largest/smallest = 5.0: 'ok' 50, 'ng' 10); "
        "consider balance.method and judge by per-class recall, not accuracy"
    ]
    assert validate(images([48, 16])).warnings == []  # ratio 3.0 is not above the threshold


def test_empty_class_outside_train_is_a_warning():
    ds = images([40, 24], split=["test" if i < 16 else "train" for i in range(64)])
    report = validate(ds)
    assert report.counts == {"train": {"c0": 24, "c1": 24}, "test": {"c0": 16, "c1": 0}}
    assert report.warnings == ["data: class 'c1' has no samples in the test split"]


def test_constant_columns_and_mixed_types():
    ds = table()
    ds.x["site"] = "A"
    ds.x["code"] = [1 if i % 2 else "x" for i in range(64)]
    report = validate(ds)
    assert report.constant_columns == ["site"]
    assert report.warnings == [
        "data: column 'site' has a single value and carries no information; "
        "leave it out of data.feature_columns",
        "data: column 'code' mixes numbers (32 values) and text (32 values, e.g. 'x') and is "
        "read as categorical, one feature per distinct value; list it in "
        "data.categorical_columns if that is meant, else fix the text values",
    ]
    ds.x["code"] = ["y" if i % 2 else b"x" for i in range(64)]
    assert validate(ds).warnings[1] == "data: column 'code' mixes value types ['bytes', 'str']"


def test_skipped_files_are_reported():
    ds = replace(images([8, 8]), skipped=[{"path": "a/1.png", "reason": "truncated"},
                                          {"path": "b/2.png", "reason": "not an image"}])
    report = validate(ds)
    assert report.skipped == ds.skipped
    assert report.warnings == [
        "data: 2 files could not be read and were skipped (first: a/1.png: truncated)"
    ]


def test_rows_and_json():
    ds = replace(images([3, 1], ("ok", "ng")), skipped=[{"path": "x.png", "reason": "bad"}])
    report = validate(ds)
    assert report.rows() == [
        ("samples", "all", "4"),
        ("classes", "all/ok", "3"), ("classes", "all/ng", "1"),
        ("imbalance", "largest/smallest class (train)", "3.00"),
        ("duplicates", "all", "0"),
        ("shape", "sample_shape", "1x4x4"), ("dtype", "dtype", "float32"),
        ("skipped", "x.png", "bad"),
        ("warning", "1", "data: 1 files could not be read and were skipped (first: x.png: bad)"),
    ]
    d = json.loads(json.dumps(report.to_dict()))
    assert d["counts"] == {"all": {"ok": 3, "ng": 1}} and d["sample_shape"] == [1, 4, 4]


def test_table_dtypes_in_the_report():
    ds = table()
    text_dtype = str(ds.x["color"].dtype)  # "object" before pandas 3, "str" since
    assert validate(ds).dtype == {"age": "float64", "color": text_dtype, "id": "int64"}


def test_text_problems_are_warnings():
    x = np.array(["good film", "", "bad", None], dtype=object)
    ds = Dataset(x, np.array([1, 0, 0, 1]), TaskSpec("binary", ("neg", "pos")), "text",
                 Provenance("imdb"))
    assert validate(ds).warnings == ["data: 1 texts are not strings", "data: 1 texts are empty"]


def test_hashing_70k_small_images_is_fast():
    x = np.random.default_rng(0).integers(0, 256, (70_000, 1, 28, 28), dtype=np.uint8)
    x[69_999] = x[0]
    start = time.perf_counter()
    hashes = row_hashes(x)
    assert time.perf_counter() - start < 2.0
    assert hashes[69_999] == hashes[0] and len(set(hashes.tolist())) == 69_999
