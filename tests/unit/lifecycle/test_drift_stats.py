"""Per-feature drift statistics: tests below drift.large_sample rows, distances above,
Bonferroni, effect sizes, ties and unseen categories."""

from __future__ import annotations

import numpy as np
import pytest

from dlforge.config.drift_schema import DriftConfig
from dlforge.lifecycle.drift_features import Feature
from dlforge.lifecycle.drift_stats import compare, histogram, psi, summarise


def normal(n, mean=0.0, seed=0):
    return Feature("numeric", np.random.default_rng(seed).normal(mean, 1.0, n))


REF = summarise(normal(5000, seed=99))


def test_numeric_summary_holds_the_quantile_sketch_and_decile_histogram():
    s = summarise(Feature("numeric", np.arange(1001, dtype=float)))
    assert (s["kind"], s["n"], s["mean"]) == ("numeric", 1001, 500.0)
    assert s["quantiles"][:3] == [0.0, 10.0, 20.0] and len(s["quantiles"]) == 101
    assert s["edges"] == pytest.approx([100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0])
    assert np.allclose(s["hist"], [0.1] * 10, atol=0.002) and sum(s["hist"]) == pytest.approx(1.0)


def test_a_small_sample_is_decided_by_ks_with_its_effect_size_beside():
    same = compare(REF, normal(200, seed=1), 1, DriftConfig())
    moved = compare(REF, normal(200, mean=0.5, seed=1), 1, DriftConfig())
    assert (same["method"], same["effect_name"], same["drifted"]) == ("ks", "ks_d", False)
    assert same["p_value"] > 0.05 and same["effect"] < 0.1
    assert moved["drifted"] is True and moved["p_value"] < 1e-6 and moved["effect"] > 0.2
    assert (same["psi_high"], moved["psi_high"]) == (False, True)  # PSI over drift.psi (0.2)


def test_bonferroni_divides_alpha_by_the_number_of_features():
    row = compare(REF, normal(300, mean=0.15, seed=3), 1, DriftConfig())
    assert 0.005 < row["p_value"] < 0.05  # significant alone, not among ten features
    assert row["drifted"] is True
    assert compare(REF, normal(300, mean=0.15, seed=3), 10, DriftConfig())["drifted"] is False


def test_a_large_sample_is_decided_by_distance_so_a_tiny_shift_does_not_drift():
    row = compare(REF, normal(20_000, mean=0.05, seed=2), 1, DriftConfig())
    assert row["method"] == "wasserstein"
    assert row["p_value"] < 0.05  # a test alone would call this drift
    assert row["distance"] < 0.1 and row["drifted"] is False
    big = compare(REF, normal(20_000, mean=0.3, seed=2), 1, DriftConfig())
    assert big["distance"] > 0.25 and big["drifted"] is True


def test_the_switch_between_tests_and_distances_is_configurable():
    assert compare(REF, normal(200, seed=1), 1, DriftConfig(large_sample=100))["method"] == "wasserstein"


def test_ties_of_a_discrete_feature_are_no_false_alarm():
    rng = np.random.default_rng(0)
    ref = summarise(Feature("numeric", rng.integers(0, 4, 5000).astype(float)))
    rows = [compare(ref, Feature("numeric", rng.integers(0, 4, 300).astype(float)), 1, DriftConfig())
            for _ in range(50)]
    assert sum(r["drifted"] for r in rows) <= 3  # about 5% expected; a linear CDF gives ~100%


def test_categories_use_chi_squared_and_an_unseen_category_drifts():
    rng = np.random.default_rng(0)
    ref = summarise(Feature("categorical", rng.choice(["a", "b", "c"], 3000).astype(object)))
    same = compare(ref, Feature("categorical", rng.choice(["a", "b", "c"], 300).astype(object)), 1, DriftConfig())
    new = compare(ref, Feature("categorical", rng.choice(["a", "b", "d"], 300).astype(object)), 1, DriftConfig())
    assert (same["method"], same["effect_name"], same["drifted"]) == ("chi2", "cohen_w", False)
    assert new["drifted"] is True and new["distance"] > 0.4
    labels, ref_shares, new_shares = histogram(ref, Feature("categorical", np.array(["d", "a"], dtype=object)))
    assert labels == ["a", "b", "c", "d"]
    assert new_shares.tolist() == [0.5, 0.0, 0.0, 0.5] and ref_shares[3] == 0.0


@pytest.mark.parametrize(("expected", "actual", "value"), [
    ([0.25, 0.75], [0.25, 0.75], 0.0),
    ([0.5, 0.5], [0.9, 0.1], 0.4 * np.log(1.8) - 0.4 * np.log(0.2)),
])
def test_psi(expected, actual, value):
    assert psi(np.array(expected), np.array(actual)) == pytest.approx(value)
