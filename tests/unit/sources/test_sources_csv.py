"""CSV tables and texts, including the real SMS spam file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlforge.config import load_config
from dlforge.config.schema import DataConfig
from dlforge.data.sources import load_dataset
from dlforge.errors import DataError

SMS = str(Path(__file__).resolve().parents[3] / "examples" / "data" / "sms-spam.csv")


def write(tmp_path, text: str, name: str = "d.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_sms_spam_text_binary_with_shipped_split():
    ds = load_dataset(DataConfig(source="csv", path=SMS, label_columns=["label_name"],
                                 text_column="text", split_column="split"))
    assert ds.modality == "text" and ds.x.dtype == object and len(ds) == 5574
    assert ds.task.kind == "binary" and ds.task.class_names == ("ham", "spam")
    assert int((ds.split == "train").sum()) == 4460 and int((ds.split == "test").sum()) == 1114
    assert int(ds.y.sum()) == 747
    assert ds.x[1] == "Ok lar... Joking wif u oni..."
    assert list(ds.provenance.files) == [SMS]


def test_table_features_default_to_all_but_labels_and_split(tmp_path):
    path = write(tmp_path, "a,color,label,part\n1.5,red,x,train\n2,blue,y,test\n3,red,x,val\n")
    ds = load_dataset(DataConfig(source="csv", path=path, split_column="part"))
    assert isinstance(ds.x, pd.DataFrame) and list(ds.x.columns) == ["a", "color"]
    assert ds.x["color"].tolist() == ["red", "blue", "red"]
    assert ds.split.tolist() == ["train", "test", "val"]
    assert ds.task.class_names == ("x", "y") and ds.y.tolist() == [0, 1, 0]


def test_validation_split_value_is_val(tmp_path):
    path = write(tmp_path, "a,label,s\n1,0,validation\n2,1,train\n")
    ds = load_dataset(DataConfig(source="csv", path=path, split_column="s"))
    assert ds.split.tolist() == ["val", "train"]


def test_unknown_split_value_names_column_value_and_allowed(tmp_path):
    path = write(tmp_path, "a,label,s\n1,0,dev\n2,1,train\n")
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="csv", path=path, split_column="s"))
    assert str(exc.value) == (
        "data.split_column: column 's' of d.csv has value 'dev'; allowed values are: "
        "train, val, validation, test"
    )


def test_missing_label_column_lists_columns(tmp_path):
    path = write(tmp_path, "a,b,c\n1,2,3\n")
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="csv", path=path, label_columns=["foo"]))
    assert str(exc.value) == "data.label_columns: column 'foo' not in d.csv; columns are: a, b, c"


def test_missing_file_names_data_path(tmp_path):
    missing = str(tmp_path / "none.csv")
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="csv", path=missing))
    assert str(exc.value) == f"data.path: {missing!r} does not exist; give an existing CSV file"


def test_empty_labels_name_the_lines(tmp_path):
    path = write(tmp_path, "a,label\n1,x\n2,\n3,y\n")
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="csv", path=path))
    assert str(exc.value) == (
        "data.label_columns: column 'label' of d.csv has 1 empty values (lines 3); "
        "fill or drop those rows"
    )


def test_multilabel_columns(tmp_path):
    path = write(tmp_path, "f,cat,dog\n0.1,1,0\n0.2,1,1\n0.3,0,0\n")
    ds = load_dataset(DataConfig(source="csv", path=path, label_columns=["cat", "dog"]))
    assert ds.task.kind == "multilabel" and ds.task.class_names == ("cat", "dog")
    assert ds.y.tolist() == [[1, 0], [1, 1], [0, 0]] and list(ds.x.columns) == ["f"]


def test_regression_target_is_inferred_from_fractions(tmp_path):
    path = write(tmp_path, "f,price\n1,2.5\n2,3.0\n3,4.25\n")
    ds = load_dataset(DataConfig(source="csv", path=path, label_columns=["price"]))
    assert ds.task.kind == "regression" and ds.task.class_names == ("price",)
    assert ds.y.dtype == np.float32 and ds.y.tolist() == [2.5, 3.0, 4.25]


def test_unknown_feature_column(tmp_path):
    path = write(tmp_path, "a,label\n1,x\n")
    with pytest.raises(DataError, match=r"^data\.feature_columns: column 'z' not in d\.csv; "
                                        r"columns are: a, label$"):
        load_dataset(DataConfig(source="csv", path=path, feature_columns=["a", "z"]))


def test_listed_categorical_columns_are_one_hot_encoded_even_when_numeric(tmp_path):
    from dlforge.config.schema import DataConfig, PreprocessConfig
    from dlforge.data.preprocess import build_preprocessor
    from dlforge.data.sources import load_dataset

    path = tmp_path / "zips.csv"
    path.write_text("zip,size,label\n94103,1.0,a\n10001,2.0,b\n94103,3.0,a\n10001,4.0,b\n")
    ds = load_dataset(DataConfig(source="csv", path=str(path), categorical_columns=["zip"]))
    pre = build_preprocessor(PreprocessConfig(), "table").fit(ds.x)
    assert pre.feature_names == ["size", "zip=10001", "zip=94103"]
    assert pre.transform([{"zip": 94103, "size": 2.5}])[0, 1:].tolist() == [0.0, 1.0]


@pytest.mark.parametrize(("path", "message"), [
    # "internal error: RuntimeError: Could not determine home directory."
    ("~no-such-user-qa13/d.csv", "data.path: '~no-such-user-qa13/d.csv' starts with ~user, and no "
                                 "such user's home directory is known; give the path without it"),
    # "internal error: OSError: [Errno 36] File name too long"
    ("/" + "a" * 5000 + ".csv", "data.path: '/" + "a" * 5000 + ".csv' cannot be looked up (File "
                               "name too long); give an existing CSV file"),
    # was called "a directory"
    ("/dev/null", "data.path: '/dev/null' is not a regular file (a device or a pipe); give a CSV file"),
])
def test_paths_that_cannot_be_a_csv_file_are_one_line(path, message):
    from dlforge.errors import DlforgeError

    with pytest.raises(DlforgeError) as err:
        load_dataset(load_config({"data": {"source": "csv", "path": path}}).data)
    assert str(err.value) == message
