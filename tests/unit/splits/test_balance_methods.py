"""balance: each method's exact counts and weights, determinism, and train-only use."""

from __future__ import annotations

import numpy as np
import pytest
from splits_synth import counts, images, multilabel, regression

from dlforge.config.schema import BalanceConfig, DataConfig
from dlforge.data.balance import balance
from dlforge.data.split import split_dataset
from dlforge.errors import DataError

ABC = ("a", "b", "c")


def test_none_changes_nothing():
    ds = images([30, 6, 12], ABC)
    out = balance(ds, BalanceConfig(), seed=0)
    assert out.dataset is ds and out.class_weights is None and out.sample_weights is None
    assert out.before == out.after == {"a": 30, "b": 6, "c": 12}


@pytest.mark.parametrize(("method", "ratio", "after"), [
    ("oversample", 1.0, [30, 30, 30]),
    ("oversample", 0.5, [30, 15, 15]),    # each class to >= ceil(0.5 x 30)
    ("oversample", 0.3, [30, 9, 12]),     # 0.3 x 30 = 9 exactly, not 10
    ("undersample", 1.0, [6, 6, 6]),
    ("undersample", 0.5, [12, 6, 12]),    # largest to <= floor(6 / 0.5)
])
def test_resampling_counts(method, ratio, after):
    out = balance(images([30, 6, 12], ABC), BalanceConfig(method=method, ratio=ratio), seed=0)
    assert counts(out.dataset) == after
    assert out.after == dict(zip(ABC, after, strict=True))
    assert out.before == {"a": 30, "b": 6, "c": 12}


def test_oversample_keeps_every_original_and_repeats_only_minority_rows():
    ds = images([30, 6, 12], ABC)
    out = balance(ds, BalanceConfig(method="oversample"), seed=0)
    ids = out.dataset.x[:, 0, 0, 0]
    assert np.array_equal(ids[:48], ds.x[:, 0, 0, 0])
    extra_b = ids[48:72]
    assert set(extra_b.tolist()) <= set(ds.x[30:36, 0, 0, 0].tolist())


def test_undersample_keeps_distinct_rows():
    out = balance(images([30, 6, 12], ABC), BalanceConfig(method="undersample"), seed=0)
    ids = out.dataset.x[:, 0, 0, 0].tolist()
    assert len(set(ids)) == len(ids) == 18


def test_resampling_is_deterministic_under_seed():
    ds = images([30, 6, 12], ABC)
    cfg = BalanceConfig(method="oversample")
    runs = [balance(ds, cfg, seed=s).dataset.x[:, 0, 0, 0].tolist() for s in (7, 7, 8)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_class_weight_binary_gives_a_pos_weight_compatible_pair():
    out = balance(images([48, 16], ("ok", "ng")), BalanceConfig(method="class_weight"), seed=0)
    np.testing.assert_allclose(out.class_weights, [64 / 96, 2.0], rtol=1e-6)
    assert out.class_weights[1] / out.class_weights[0] == pytest.approx(48 / 16)
    assert out.after == out.before == {"ok": 48, "ng": 16}


def test_class_weight_multiclass():
    out = balance(images([30, 6, 12], ABC), BalanceConfig(method="class_weight"), seed=0)
    np.testing.assert_allclose(out.class_weights, [48 / 90, 48 / 18, 48 / 36], rtol=1e-6)
    assert out.class_weights.dtype == np.float32 and out.sample_weights is None


def test_weighted_sampler_weights_each_class_equally():
    ds = images([30, 6, 12], ABC)
    out = balance(ds, BalanceConfig(method="weighted_sampler"), seed=0)
    assert out.dataset is ds and out.class_weights is None
    assert out.sample_weights[[0, 30, 36]].tolist() == [1 / 30, 1 / 6, 1 / 12]
    per_class = np.bincount(ds.y, weights=out.sample_weights)
    np.testing.assert_allclose(per_class, [1.0, 1.0, 1.0])


@pytest.mark.parametrize(("make", "kind"), [(multilabel, "multilabel"), (regression, "regression")])
def test_methods_need_a_single_label_task(make, kind):
    with pytest.raises(DataError) as err:
        balance(make(), BalanceConfig(method="oversample"), seed=0)
    assert str(err.value) == (
        f"balance.method: 'oversample' supports multiclass and binary tasks only "
        f"(got a {kind} task); set balance.method to none"
    )


def test_none_reports_label_positives_for_multilabel():
    assert balance(multilabel(), BalanceConfig(), seed=0).before == {"a": 64, "b": 16, "c": 4}


def test_empty_class_cannot_be_balanced():
    with pytest.raises(DataError) as err:
        balance(images([10, 0, 5], ABC), BalanceConfig(method="undersample"), seed=0)
    assert str(err.value) == (
        "balance.method: 'undersample' needs training rows of every class; classes ['b'] have "
        "none; add samples or drop them with data.classes"
    )


def test_test_split_keeps_the_natural_ratio_while_train_is_balanced():
    ds = images([90, 10], ("ok", "defect"))
    splits = split_dataset(ds, DataConfig(val_fraction=0.2, test_fraction=0.2), seed=0)
    out = balance(splits.train, BalanceConfig(method="oversample"), seed=0)
    assert counts(out.dataset) == [54, 54]
    # val and test are untouched and keep the source's 9:1 ratio exactly
    assert counts(splits.val) == [18, 2] and counts(splits.test) == [18, 2]
    assert splits.info["test_distribution"] == "natural"
