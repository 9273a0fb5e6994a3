"""select: classes, binary_from, positive_fraction and limit, exact counts and messages."""

from __future__ import annotations

import numpy as np
import pytest
from splits_synth import counts, images, multilabel, regression

from dlforge.config.schema import DataConfig
from dlforge.data.select import select
from dlforge.errors import DataError

ABC = ("a", "b", "c")


def test_no_selection_returns_the_dataset_unchanged():
    ds = images([10, 20, 30], ABC)
    assert select(ds, DataConfig(), seed=0) is ds


def test_classes_keep_order_and_relabel():
    ds = images([10, 20, 30, 5], ("a", "b", "c", "d"))
    out = select(ds, DataConfig(classes=["c", "a", "d"]), seed=0)
    assert out.task.kind == "multiclass" and out.task.class_names == ("c", "a", "d")
    assert counts(out) == [30, 10, 5]
    assert out.y[:10].tolist() == [1] * 10  # source order kept, "a" is now 1
    assert out.provenance.details["selection"] == {"classes": ["c", "a", "d"], "samples": 45}


def test_two_classes_become_binary_with_the_second_positive():
    out = select(images([10, 20, 30], ABC), DataConfig(classes=["c", "a"]), seed=0)
    assert out.task.kind == "binary" and out.task.class_names == ("c", "a")
    assert counts(out) == [30, 10]


def test_two_classes_stay_multiclass_when_the_task_says_so():
    out = select(images([10, 20, 30], ABC), DataConfig(classes=["c", "a"], task="multiclass"), 0)
    assert out.task.kind == "multiclass"


def test_multilabel_classes_pick_label_columns():
    out = select(multilabel(), DataConfig(classes=["c", "a"]), seed=0)
    assert out.task.class_names == ("c", "a") and out.y.sum(axis=0).tolist() == [4, 64]


@pytest.mark.parametrize(("cfg", "message"), [
    (DataConfig(classes=["a", "z"]),
     "data.classes: unknown classes ['z'] (got ['a', 'z']); available classes: ['a', 'b', 'c']"),
    (DataConfig(classes=["a", "a"]), "data.classes: each class may be named once (got ['a', 'a'])"),
    (DataConfig(classes=["b"]), "data.classes: keep at least 2 classes (got ['b'])"),
    (DataConfig(binary_from={"defect": ["q"]}),
     "data.binary_from: unknown classes ['q'] (got {'defect': ['q']}); available classes: "
     "['a', 'b', 'c']"),
    (DataConfig(binary_from={"x": ["a"], "y": ["b"]}),
     "data.binary_from: give exactly one positive name (got ['x', 'y'])"),
    (DataConfig(binary_from={"ok": ["a"]}),
     "data.binary_from: the positive name equals data.negative_name (got 'ok'); "
     "choose different names"),
    (DataConfig(positive_fraction=0.1),
     "data.positive_fraction: needs a binary task (got a multiclass task with classes "
     "['a', 'b', 'c']); build one with data.binary_from"),
])
def test_bad_selection_is_a_data_error(cfg, message):
    with pytest.raises(DataError) as err:
        select(images([10, 20, 30], ABC), cfg, seed=0)
    assert str(err.value) == message


def test_classes_on_regression_is_a_data_error():
    with pytest.raises(DataError, match=r"^data\.classes: a regression task has no classes"):
        select(regression(), DataConfig(classes=["a", "b"]), seed=0)


def test_binary_from_groups_classes_into_the_positive_one():
    out = select(images([10, 20, 30], ABC), DataConfig(binary_from={"defect": ["b", "c"]}), 0)
    assert out.task.kind == "binary" and out.task.class_names == ("ok", "defect")
    assert counts(out) == [10, 50]


def test_classes_then_binary_from():
    cfg = DataConfig(classes=["a", "b"], binary_from={"rare": ["a"]}, negative_name="common")
    out = select(images([10, 20, 30], ABC), cfg, seed=0)
    assert out.task.class_names == ("common", "rare") and counts(out) == [20, 10]


def _defect_source():
    """80 'other' + 20 'sandal' rows; the source ships 60+15 as train and 20+5 as test."""
    marks = ["train" if i < 60 else "test" for i in range(80)]
    marks += ["train" if i < 15 else "test" for i in range(20)]
    return images([80, 20], ("other", "sandal"), split=marks)


def test_positive_fraction_is_met_in_every_source_split():
    cfg = DataConfig(binary_from={"defect": ["sandal"]}, positive_fraction=0.1)
    out = select(_defect_source(), cfg, seed=0)
    train, test = out.split == "train", out.split == "test"
    # train: 60 negatives -> 0.1 * 60 / 0.9 = 6.67 -> 7 positives; test: 20 -> 2.22 -> 2
    assert counts(out.subset(np.flatnonzero(train))) == [60, 7]
    assert counts(out.subset(np.flatnonzero(test))) == [20, 2]


def test_positive_fraction_thins_negatives_when_positives_are_already_rare():
    out = select(images([90, 5], ("ok", "ng")), DataConfig(positive_fraction=0.1), seed=0)
    assert counts(out) == [45, 5]


def test_positive_fraction_is_deterministic_under_seed():
    cfg = DataConfig(binary_from={"defect": ["sandal"]}, positive_fraction=0.1)
    rows = [select(_defect_source(), cfg, seed=s).x[:, 0, 0, 0].tolist() for s in (4, 4, 5)]
    assert rows[0] == rows[1] and rows[0] != rows[2]


def test_limit_is_stratified_and_keeps_every_class():
    out = select(images([40, 20, 4], ABC), DataConfig(limit=16), seed=0)
    # one row per class first, then the other 13 by share of the rest (39, 19, 3)
    assert counts(out) == [9, 5, 2]


def test_limit_is_shared_among_source_splits_by_size():
    marks = ["test" if i % 4 == 0 else "train" for i in range(64)]
    out = select(images([40, 24], split=marks), DataConfig(limit=20), seed=0)
    assert (out.split == "train").sum() == 15 and (out.split == "test").sum() == 5
    assert out.provenance.details["selection"] == {"limit": 20, "samples": 20}


def test_limit_above_the_size_changes_nothing():
    ds = images([10, 20])
    assert len(select(ds, DataConfig(limit=100), seed=0)) == 30


def test_limit_is_deterministic_under_seed():
    ds = images([40, 20, 4], ABC)
    rows = [select(ds, DataConfig(limit=16), seed=s).x[:, 0, 0, 0].tolist() for s in (1, 1, 2)]
    assert rows[0] == rows[1] and rows[0] != rows[2]


def test_positive_class_is_honoured_when_two_classes_are_kept():
    from dlforge.data.dataset import Dataset, Provenance, TaskSpec

    ds = Dataset(x=np.zeros((6, 1, 2, 2), np.uint8), y=np.array([0, 1, 2, 0, 1, 2]),
                 task=TaskSpec("multiclass", ("a", "b", "c")), modality="image",
                 provenance=Provenance("test"))
    out = select(ds, DataConfig(source="npz", path="x", classes=["c", "a"], positive_class="c"), 0)
    assert out.task == TaskSpec("binary", ("a", "c"))
    assert out.y.tolist() == [0, 1, 0, 1]
    with pytest.raises(DataError, match=r"^data.positive_class: 'b' is not one of data.classes \['c', 'a'\]$"):
        select(ds, DataConfig(source="npz", path="x", classes=["c", "a"], positive_class="b"), 0)
    with pytest.raises(DataError, match=r"^data.positive_class: with data.binary_from the positive class is 'bad'"):
        select(ds, DataConfig(source="npz", path="x", binary_from={"bad": ["a"]}, positive_class="a"), 0)
