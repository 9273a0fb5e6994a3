"""validate: infinite values, a single class and constant multilabel labels, refused or
flagged before any training."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from splits_synth import images, multilabel, regression, table

from dlforge.cli import main
from dlforge.config import load_config
from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Provenance, TaskSpec
from dlforge.data.prepare import load_and_split
from dlforge.data.sources import load_dataset
from dlforge.data.validate import validate
from dlforge.data.values import beyond_float32, non_finite_problems
from dlforge.errors import DataError

ONE_CLASS = ("data: all labels are one class ('x'); a classifier needs at least 2 classes: add "
             "samples of another class, or check data.path and data.classes")


def _fatal(ds, **kwargs) -> list[str]:
    with pytest.raises(DataError) as err:
        validate(ds, **kwargs)
    return str(err.value).splitlines()


def test_inf_in_a_table_column_names_the_column_rows_and_count():
    ds = table()
    ds.x.loc[[3, 7], "age"] = np.inf
    assert _fatal(ds) == [
        "data: column 'age' has 2 infinite values (rows 3, 7); replace them or drop those rows"]
    ds.x.loc[[0, 1, 2, 9, 12, 40], "age"] = -np.inf
    assert _fatal(ds) == ["data: column 'age' has 8 infinite values (rows 0, 1, 2, 3, 7 and 3 "
                          "more); replace them or drop those rows"]


def test_nan_or_inf_in_float_samples():
    ds = images([10, 10])
    ds.x[4, 0, 1, 2] = np.nan
    ds.x[11, 0, 0, 0] = np.inf
    assert _fatal(ds) == ["data: 2 samples contain NaN or infinite values (rows 4, 11); replace "
                          "them or drop those samples"]


def test_infinite_regression_targets():
    ds = regression()
    y = ds.y.copy()
    y[5] = np.inf
    assert _fatal(replace(ds, y=y)) == [
        "data: 1 regression targets are infinite (rows 5); replace them or drop those rows"]


def test_an_infinite_csv_target_is_one_line_without_numpy_warnings(tmp_path):
    rows = "".join(f"{i},{'inf' if i == 7 else i * 0.5}\n" for i in range(40))
    (tmp_path / "r.csv").write_text("a,label\n" + rows)
    cfg = load_config({"data": {"source": "csv", "path": str(tmp_path / "r.csv")}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's 'invalid value encountered' reached the user
        with pytest.raises(DataError) as err:
            load_and_split(cfg)
    assert str(err.value) == ("data: 1 regression targets are infinite (rows 7); replace them or "
                              "drop those rows")


def test_a_single_class_is_refused():
    ds = replace(images([12]), task=replace(images([12]).task, class_names=("x",)))
    assert _fatal(ds) == [ONE_CLASS]


def test_a_single_class_csv_is_refused_before_training(tmp_path):
    (tmp_path / "one.csv").write_text("a,label\n" + "".join(f"{i},x\n" for i in range(30)))
    cfg = load_config({"data": {"source": "csv", "path": str(tmp_path / "one.csv")}})
    with pytest.raises(DataError) as err:
        load_and_split(cfg)
    assert str(err.value) == ONE_CLASS


def test_a_single_class_image_folder_is_refused(tmp_path):
    for i in range(4):
        (tmp_path / "x").mkdir(exist_ok=True)
        Image.new("L", (4, 4), i * 10).save(tmp_path / "x" / f"{i}.png")
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))
    assert _fatal(ds) == [ONE_CLASS]


def test_a_constant_regression_target_is_fatal_alone_and_a_warning_beside_others():
    ds = replace(regression(), provenance=Provenance("csv"))
    y = np.full_like(ds.y, -0.25)
    y[3] = np.nan  # missing targets are not a second value
    assert _fatal(replace(ds, y=y))[-1] == (
        "data: regression target 'target' is -0.25 in every sample, so there is nothing to "
        "learn; check that data.label_columns names the target, or add samples with other values")
    two = replace(ds, y=np.stack([ds.y, np.full_like(ds.y, 7.0)], axis=1),
                  task=TaskSpec("regression", ("price", "tax")))
    assert validate(two).warnings == [
        "data: regression target 'tax' is 7 in every sample, so there is nothing to learn; check "
        "that data.label_columns names the target, or add samples with other values"]


@pytest.mark.parametrize(("source", "question"), [
    ("npz", "check the y array of data.path, or "),
    ("builtin:diabetes", ""),  # asked about data.label_columns, which these sources ignore
])
def test_a_constant_regression_target_asks_what_the_source_took_for_targets(source, question):
    ds = replace(regression(), provenance=Provenance(source))
    assert _fatal(replace(ds, y=np.full_like(ds.y, 3.0)))[-1] == (
        f"data: regression target 'target' is 3 in every sample, so there is nothing to learn; "
        f"{question}add samples with other values")


def test_a_multilabel_label_set_everywhere_is_a_warning():
    report = validate(multilabel())  # label 'a' is 1 in all 64 rows
    assert report.warnings[1:] == ["data: label 'a' is 1 in every sample of the dataset, so there "
                                   "is nothing to learn for it; drop it from data.label_columns"]
    assert report.warnings[0].startswith("data: classes are imbalanced")


def test_a_multilabel_label_set_nowhere_is_fatal():
    ds = multilabel()
    ds.y[:, 2] = 0
    assert _fatal(ds) == [
        "data: class 'c' has no training samples; add samples (or raise data.limit, if set) or drop it with data.classes"]


@pytest.mark.parametrize(("cell", "label", "message"), [
    (lambda i: "inf" if i == 4 else str(i), lambda i: "xy"[i % 2],
     "data: column 'a' has 1 infinite values (rows 4); replace them or drop those rows"),
    (lambda i: "abc" if i == 4 else str(i), lambda i: "xy"[i % 2],
     "data: column 'a' of d.csv holds numbers except for 1 value: 'abc' (line 6); fix or remove "
     "it, or list the column in data.categorical_columns if it is categorical"),
    (str, lambda i: "x", ONE_CLASS),
    (str, lambda i: "2.5", "data: regression target 'label' is 2.5 in every sample, so there is "
     "nothing to learn; check that data.label_columns names the target, or add samples with "
     "other values"),  # was trained silently
])
def test_cli_data_problems_exit_1_with_one_line(tmp_path, capsys, cell, label, message):
    (tmp_path / "d.csv").write_text("a,label\n" + "".join(f"{cell(i)},{label(i)}\n" for i in range(40)))
    (tmp_path / "run.yaml").write_text("data:\n  source: csv\n  path: d.csv\n")
    assert main(["data", "inspect", str(tmp_path / "run.yaml")]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"


def test_a_limit_too_small_for_every_class_to_train_names_data_limit():
    cfg = load_config({"data": {"source": "builtin", "name": "digits", "limit": 10}})
    with pytest.raises(DataError) as err:
        load_and_split(cfg)
    lines = str(err.value).splitlines()
    assert len(lines) > 1 and all(line.endswith("has no training samples; add samples (or raise "
                                                "data.limit, if set) or drop it with data.classes")
                                  for line in lines)


def test_many_classes_without_training_samples_share_one_line(tmp_path, capsys):
    # a label column of ids: every label its own class, many never reach the training split
    (tmp_path / "d.csv").write_text("a,label\n" + "".join(f"{i},id{i:03d}\n" for i in range(300)))
    (tmp_path / "run.yaml").write_text("data:\n  source: csv\n  path: d.csv\n")
    assert main(["data", "inspect", str(tmp_path / "run.yaml")]) == 1
    assert capsys.readouterr().err == (
        "error: data: 90 of 300 classes have no training samples ('id000', 'id001', 'id005' and "
        "87 more); is data.label_columns a column of labels? A class needs samples in the "
        "training split: add samples (or raise data.limit, if set) or drop them with data.classes\n")


@pytest.mark.parametrize(("source", "question"), [
    ("csv", "is data.label_columns a column of labels? "),
    ("image_folder", "is each sub-folder of data.path (or of its train/ folder) a class? "),
    ("builtin:digits", ""),   # every source asked about data.label_columns, which most ignore
])
def test_many_classes_without_training_samples_ask_what_the_source_took_for_classes(source, question):
    from dlforge.data.validate import _empty_classes

    counts = {"train": {f"c{i}": int(i < 2) for i in range(9)}}
    assert _empty_classes(counts, "train", [], source) == [
        f"data: 7 of 9 classes have no training samples ('c2', 'c3', 'c4' and 4 more); {question}"
        "A class needs samples in the training split: add samples (or raise data.limit, if set) "
        "or drop them with data.classes"]


def test_many_classes_missing_from_a_split_share_one_warning():
    from dlforge.data.validate import _empty_classes

    counts = {"train": {f"c{i}": 1 for i in range(8)},
              "test": {f"c{i}": int(i < 2) for i in range(8)}, "val": {"c0": 0, "c1": 1}}
    warnings: list[str] = []
    assert _empty_classes(counts, "train", warnings) == []
    assert warnings == ["data: 6 classes have no samples in the test split ('c2', 'c3', 'c4' and 3 more)",
                        "data: class 'c0' has no samples in the val split"]


BEYOND = ("beyond float32's range (about 3.4e38), in which the model computes; rescale {it} (e.g. "
          "divide by a power of 10) or drop those rows")


def test_finite_values_beyond_float32_are_refused_before_training(tmp_path, capsys):
    # features (unscaled: they reach the model as they are): inspect passed and training
    # failed with serving's "send finite values" line; targets: called "infinite" (float32
    # made them so)
    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{i}e300,{i}\n" for i in range(40)))
    (tmp_path / "run.yaml").write_text("data:\n  source: csv\n  path: d.csv\n  label_columns: [y]\n"
                                       "  task: regression\npreprocess:\n  table:\n    scaling: none\n")
    assert main(["data", "inspect", str(tmp_path / "run.yaml")]) == 1
    assert capsys.readouterr().err == ("error: data: column 'a' has 39 values (rows 1, 2, 3, 4, 5 "
                                       "and 34 more) " + BEYOND.format(it="the column") + "\n")
    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{i},{i}e39\n" for i in range(40)))
    assert main(["data", "inspect", str(tmp_path / "run.yaml")]) == 1
    assert capsys.readouterr().err == (
        "error: data.label_columns: column 'y' of d.csv has 39 targets (rows 1, 2, 3, 4, 5 and 34 "
        "more) " + BEYOND.format(it="the target") + "\n")


def test_float_samples_beyond_float32_are_refused():
    x = np.zeros((6, 2, 2))
    x[4, 1, 0] = -1e39
    assert non_finite_problems(x) == ["data: 1 samples (rows 4) hold values " + BEYOND.format(it="the samples")]


def test_scaled_table_values_beyond_float32_pass_validation():
    # 3e38..1e45 are standardised in float64 and train fine; they were refused
    x = pd.DataFrame({"a": [1e40, 5e44, 3e39, 1e45], "b": [1.0, 2.0, 3.0, 4.0]})
    assert non_finite_problems(x, scaling="standard") == []
    assert non_finite_problems(x) == [
        "data: column 'a' has 4 values (rows 0, 1, 2, 3) " + BEYOND.format(it="the column")]


@pytest.mark.parametrize(("scaling", "spread", "values"), [
    ("standard", "mean or standard deviation", "1e308"),   # the mean overflows
    ("minmax", "minimum or range", "-1.5e308,1.5e308"),
])
def test_inspect_refuses_a_column_whose_scaling_overflows_as_run_does(tmp_path, capsys, scaling,
                                                                    spread, values):
    # inspect passed it, and `dlforge run` refused it in the preprocessor
    cells = (values.split(",") * 20)[:20]
    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{c},{i}\n" for i, c in enumerate(cells)))
    (tmp_path / "run.yaml").write_text(
        "data:\n  source: csv\n  path: d.csv\n  label_columns: [y]\n  task: regression\n"
        f"preprocess:\n  table:\n    scaling: {scaling}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["data", "inspect", str(tmp_path / "run.yaml")]) == 1
    assert capsys.readouterr().err == (
        f"error: data: column 'a': its values are too large for {scaling} scaling (their {spread} "
        "overflows float64); rescale the column (e.g. divide by a power of 10) or drop those rows\n")
    x = pd.DataFrame({"a": [1e300, -1e300, 3.0]})  # standard scaling overflows, minmax does not
    assert non_finite_problems(x, scaling="minmax") == []


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
def test_narrow_arrays_are_not_read_for_float32_range(dtype, monkeypatch):
    # a float32 array was copied whole to float64 (105 MB extra for 23 MB) to find nothing
    x = np.ones((3, 2), dtype=dtype)
    monkeypatch.setattr(np, "abs", lambda *a, **k: pytest.fail("read"))
    assert beyond_float32(x).tolist() == []


def test_wide_arrays_are_read_in_chunks_with_the_same_rows():
    x = np.zeros((7, 3))
    x[[1, 5, 6], [0, 2, 1]] = [-1e39, 4e38, np.inf]
    assert beyond_float32(x).tolist() == [1, 5]
    assert beyond_float32(x, chunk=3).tolist() == [1, 5]
    assert beyond_float32(x, chunk=1).tolist() == [1, 5]
