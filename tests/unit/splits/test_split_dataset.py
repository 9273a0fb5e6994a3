"""split_dataset: stratified carving, the source's own splits, fallbacks and determinism."""

from __future__ import annotations

import numpy as np
import pytest
from splits_synth import counts, images, multilabel, regression

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import TaskSpec
from dlforge.data.split import split_dataset, stratify_key
from dlforge.errors import DataError


def test_carves_stratified_train_val_test():
    splits = split_dataset(images([40, 24]), DataConfig(), seed=0)
    # test: 15% of 64 = 9.6 -> 10 rows, 6.25/3.75 -> 6/4; val: 10 of the remaining 54 -> 6/4
    assert [counts(part) for _, part in splits.items()] == [[28, 16], [6, 4], [6, 4]]
    assert splits.info == {
        "seed": 0, "val_fraction": 0.15, "test_fraction": 0.15, "test_distribution": "natural",
        "test_source": "carved", "val_source": "carved", "warnings": [],
        "counts": {"train": 44, "val": 10, "test": 10},
        "stratified": {"test": True, "val": True},
    }


def test_splits_are_disjoint_and_cover_every_row():
    splits = split_dataset(images([40, 24]), DataConfig(), seed=3)
    ids = np.concatenate([part.x[:, 0, 0, 0] for _, part in splits.items()])
    assert sorted(ids.tolist()) == [16.0 * i for i in range(64)]
    assert all(part.split is None for _, part in splits.items())


def test_same_seed_same_split_other_seed_other_split():
    ds = images([40, 24])
    first = split_dataset(ds, DataConfig(), seed=1).test.x
    assert np.array_equal(first, split_dataset(ds, DataConfig(), seed=1).test.x)
    assert not np.array_equal(first, split_dataset(ds, DataConfig(), seed=2).test.x)


def test_source_test_set_is_kept_and_test_fraction_ignored():
    marks = ["test" if i % 4 == 0 else "train" for i in range(64)]
    ds = images([40, 24], split=marks)
    splits = split_dataset(ds, DataConfig(test_fraction=0.3), seed=0)
    assert np.array_equal(splits.test.x, ds.x[::4])
    # val is 15% of the WHOLE (10 rows) carved from the 48 source-train rows (30/18 -> 6/4)
    assert counts(splits.val) == [6, 4] and counts(splits.train) == [24, 14]
    assert splits.info["test_source"] == "source"
    assert splits.info["test_fraction"] is None
    assert splits.info["test_fraction_ignored"] == "the source has a test set (16 rows)"
    assert splits.info["stratified"] == {"test": None, "val": True}


def test_source_val_and_test_are_both_kept():
    marks = np.array(["train", "val", "test", "train"] * 16, dtype=object)
    splits = split_dataset(images([40, 24], split=marks), DataConfig(), seed=0)
    assert splits.info["counts"] == {"train": 32, "val": 16, "test": 16}
    assert splits.info["val_source"] == "source" and splits.info["test_source"] == "source"


def test_unknown_split_mark_is_a_data_error():
    marks = ["train"] * 62 + ["holdout", "dev"]
    with pytest.raises(DataError) as err:
        split_dataset(images([40, 24], split=marks), DataConfig(), seed=0)
    assert str(err.value) == (
        "data.split_column: unknown split values ['dev', 'holdout']; allowed: train, val, test"
    )


def test_single_sample_class_falls_back_to_unstratified_with_a_warning():
    splits = split_dataset(images([63, 1], names=("ok", "defect")), DataConfig(), seed=0)
    assert splits.info["warnings"][0] == "test split not stratified: class 'defect' has only 1 sample"
    assert splits.info["stratified"]["test"] is False
    assert splits.info["counts"] == {"train": 44, "val": 10, "test": 10}


def test_stratify_off_is_respected():
    splits = split_dataset(images([40, 24]), DataConfig(stratify=False), seed=0)
    assert splits.info["stratified"] == {"test": False, "val": False}
    assert splits.info["warnings"] == []


def test_too_large_fractions_leave_no_training_rows():
    with pytest.raises(DataError) as err:
        split_dataset(images([5, 5]), DataConfig(val_fraction=0.45, test_fraction=0.45), seed=0)
    assert str(err.value) == (
        "data.val_fraction: the val split would take 5 of the 5 remaining rows, "
        "leaving none for training; lower it or add data"
    )


def test_multilabel_stratifies_on_the_rarest_label_of_each_row():
    ds = multilabel()
    assert stratify_key(ds.y, ds.task)[:5].tolist() == [2, 0, 0, 0, 1]
    splits = split_dataset(ds, DataConfig(), seed=0)
    # strata: rare c (4 rows), b without c (12), a only (48); 10 test rows -> 1, 2, 7
    assert splits.test.y.sum(axis=0).tolist() == [10, 3, 1]
    assert splits.info["stratified"] == {"test": True, "val": True}


def test_multilabel_rows_without_labels_form_their_own_stratum():
    y = np.array([[0, 0], [1, 0], [1, 1], [0, 0]])
    assert stratify_key(y, TaskSpec("multilabel", ("a", "b"))).tolist() == [2, 0, 1, 2]


def test_regression_stratifies_on_quantile_bins():
    ds = regression()
    key = stratify_key(ds.y, ds.task)
    assert np.bincount(key).tolist() == [11, 11, 10, 11, 10, 11]  # 64 // 10 = 6 bins
    splits = split_dataset(ds, DataConfig(), seed=0)
    test_rows = splits.test.x["f"].to_numpy().astype(int)
    assert sorted(set(key[test_rows].tolist())) == [0, 1, 2, 3, 4, 5]
    assert splits.info["stratified"]["test"] is True
