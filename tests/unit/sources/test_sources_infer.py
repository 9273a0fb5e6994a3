"""Task inference and class naming (docs/architecture.md, data/sources)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlforge.config.schema import DataConfig
from dlforge.data.sources.infer import label_task, multi_column_task
from dlforge.errors import DataError

CFG = DataConfig()


def test_two_string_classes_are_binary_with_second_sorted_positive():
    y, task = label_task(np.array(["spam", "ham", "ham"], dtype=object), CFG, where="w")
    assert task.kind == "binary" and task.class_names == ("ham", "spam")
    assert y.dtype == np.int64 and y.tolist() == [1, 0, 0]


def test_positive_class_comes_last_and_is_one():
    cfg = DataConfig(positive_class="defect")
    y, task = label_task(np.array(["ok", "defect", "ok"], dtype=object), cfg, where="w")
    assert task.class_names == ("ok", "defect")
    assert y.tolist() == [0, 1, 0]


def test_unknown_positive_class_names_the_key_and_classes():
    cfg = DataConfig(positive_class="bad")
    with pytest.raises(DataError) as exc:
        label_task(np.array(["ok", "defect"], dtype=object), cfg, where="column 'label' of a.csv")
    assert str(exc.value) == (
        "data.positive_class: 'bad' is not one of the classes in column 'label' of a.csv: defect, ok"
    )


def test_numeric_class_names_sort_by_value():
    y, task = label_task(np.array([10, 2, 1, 2]), CFG, where="w")
    assert task.kind == "multiclass" and task.class_names == ("1", "2", "10")
    assert y.tolist() == [2, 1, 0, 1]


def test_whole_floats_are_classes_and_fractional_floats_regression():
    _, task = label_task(np.array([0.0, 1.0, 2.0]), CFG, where="w")
    assert task == task.__class__("multiclass", ("0", "1", "2"))
    y, task = label_task(np.array([0.5, 1.0, 2.0]), CFG, where="w", target_name="price")
    assert task.kind == "regression" and task.class_names == ("price",)
    assert y.dtype == np.float32 and y.tolist() == [0.5, 1.0, 2.0]


def test_multiclass_task_with_fractional_labels_is_an_error():
    with pytest.raises(DataError) as exc:
        label_task(np.array([0.0, 1.5]), DataConfig(task="multiclass"), where="y of d.npz")
    assert str(exc.value) == (
        "data.task: 'multiclass' needs class labels; found the non-integer value 1.5 in y of "
        "d.npz (use task: regression)"
    )


def test_regression_task_with_strings_is_an_error():
    with pytest.raises(DataError, match=r"^data\.task: 'regression' needs numeric targets; "
                                        r"found 'a' in w$"):
        label_task(np.array(["a", "b"], dtype=object), DataConfig(task="regression"), where="w")


def test_fixed_class_names_keep_their_order_even_for_two_classes():
    y, task = label_task(np.array([1, 0, 1]), CFG, where="w", class_names=["zebra", "ant"])
    assert task.kind == "binary" and task.class_names == ("zebra", "ant")
    assert y.tolist() == [1, 0, 1]


def test_task_checked_later_when_classes_are_selected():
    cfg = DataConfig(task="binary", binary_from={"defect": ["2"]})
    _, task = label_task(np.array([0, 1, 2]), cfg, where="w")
    assert task.kind == "multiclass"


def test_multi_column_labels_are_multilabel():
    frame = pd.DataFrame({"a": [0, 1], "b": [1, 1]})
    y, task = multi_column_task(frame, CFG, where="f.csv")
    assert task.kind == "multilabel" and task.class_names == ("a", "b")
    assert y.dtype == np.int64 and y.tolist() == [[0, 1], [1, 1]]


def test_multilabel_column_must_be_zero_one():
    frame = pd.DataFrame({"a": [0, 1], "b": [2, 1]})
    with pytest.raises(DataError) as exc:
        multi_column_task(frame, CFG, where="f.csv")
    assert str(exc.value) == (
        "data.label_columns: column 'b' of f.csv must hold 0/1 for a multilabel task (got 2); "
        "set data.task: regression for numeric targets"
    )


def test_multi_column_regression_targets():
    frame = pd.DataFrame({"a": [0.5, 1], "b": [2, 1]})
    y, task = multi_column_task(frame, DataConfig(task="regression"), where="f.csv")
    assert task.kind == "regression" and y.shape == (2, 2) and y.dtype == np.float32
