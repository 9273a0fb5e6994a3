"""Reference summaries of one feature and the comparison of new values with them.

A numeric feature is summarised by a quantile sketch (101 quantiles), its mean and standard
deviation, and a histogram on the reference's deciles (equal-frequency bins, as PSI usually
uses); a categorical one by its counts. New values are compared with:

- a test: Kolmogorov-Smirnov (numbers; the statistic D against the sketch's CDF, the p-value
  of the two-sample test with the reference's row count) or chi-squared (categories, a 2 x K
  table of reference and new counts), each with an effect size that does not grow with the
  sample (D; Cohen's w of the proportions);
- distances: Wasserstein (numbers, in reference standard deviations), Jensen-Shannon
  (base 2, 0..1: numbers on the histogram bins, categories on their proportions) and PSI.

Below `DriftConfig.large_sample` rows the test decides (p-value under the Bonferroni level);
from there on the distance does (Wasserstein or Jensen-Shannon over its threshold).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from dlforge.config.drift_schema import DriftConfig
from dlforge.lifecycle.drift_features import Feature

QUANTILES = np.linspace(0.0, 1.0, 101)
DECILES = np.linspace(0.1, 0.9, 9)
EPS = 1e-4  # floor of a bin's share in PSI, so an empty bin gives a large but finite value


def summarise(feature: Feature) -> dict[str, Any]:
    """The JSON summary of one reference feature.

    Example:
        >>> s = summarise(Feature("categorical", np.array(["a", "b", "a"], dtype=object)))
        >>> s["counts"], s["n"]
        ({'a': 2, 'b': 1}, 3)
    """
    values = feature.values
    if feature.kind == "categorical":
        names, counts = np.unique(values.astype(str), return_counts=True)
        return {"kind": "categorical", "n": int(len(values)),
                "counts": {str(k): int(c) for k, c in zip(names, counts, strict=True)}}
    edges = np.unique(np.quantile(values, DECILES))
    return {"kind": "numeric", "n": int(len(values)), "mean": float(values.mean()),
            "std": float(values.std()), "quantiles": np.quantile(values, QUANTILES).tolist(),
            "edges": edges.tolist(), "hist": _shares(values, edges).tolist()}


def compare(ref: dict[str, Any], feature: Feature, tests: int, cfg: DriftConfig) -> dict[str, Any]:
    """One feature's drift row: the test (p-value, effect size), the distances, the verdict.

    Args:
        ref: the feature's reference summary (`summarise`).
        feature: the new values.
        tests: how many features are compared (the Bonferroni divisor).
        cfg: the thresholds.

    Returns:
        ``{"kind", "n", "method", "p_value", "effect", "effect_name", "distance",
        "distance_name", "js", "psi", "psi_high", "drifted"}``; ``method`` names what decided;
        ``psi_high``: PSI over `cfg.psi` (shown, does not decide).
    """
    n = len(feature.values)
    row = _numeric(ref, feature.values) if ref["kind"] == "numeric" else _categorical(ref, feature.values)
    small = n < cfg.large_sample
    if small:
        drifted = row["p_value"] < cfg.alpha / max(tests, 1)
    else:
        limit = cfg.wasserstein if ref["kind"] == "numeric" else cfg.jensen_shannon
        drifted = row["distance"] > limit
    method = (("ks" if ref["kind"] == "numeric" else "chi2") if small else row["distance_name"])
    return {"kind": ref["kind"], "n": n, "method": method, **row,
            "psi_high": row["psi"] > cfg.psi, "drifted": bool(drifted)}


def histogram(ref: dict[str, Any], feature: Feature) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(bin labels, reference shares, new shares) on the reference's bins or categories."""
    if ref["kind"] == "numeric":
        edges = np.asarray(ref["edges"])
        bounds = [-np.inf, *edges, np.inf]
        labels = [f"{_short(lo)}..{_short(hi)}" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        return labels, np.asarray(ref["hist"]), _shares(feature.values, edges)
    categories = sorted(set(ref["counts"]) | set(np.unique(feature.values.astype(str))))
    ref_counts = np.asarray([ref["counts"].get(c, 0) for c in categories], dtype=np.float64)
    new = feature.values.astype(str)
    new_counts = np.asarray([(new == c).sum() for c in categories], dtype=np.float64)
    return categories, ref_counts / max(ref_counts.sum(), 1), new_counts / max(new_counts.sum(), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors (each floored at `EPS`).

    Example:
        >>> round(psi(np.array([0.5, 0.5]), np.array([0.9, 0.1])), 3)
        0.879
    """
    p, q = np.maximum(expected, EPS), np.maximum(actual, EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def _numeric(ref: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    quantiles = np.asarray(ref["quantiles"])
    d = _ks_statistic(quantiles, values)
    en = round(len(values) * ref["n"] / (len(values) + ref["n"]))
    p_value = float(stats.kstwo.sf(d, max(en, 1)))
    scale = ref["std"] if ref["std"] > 0 else 1.0
    distance = float(stats.wasserstein_distance(values, quantiles)) / scale
    _, expected, actual = histogram(ref, Feature("numeric", values))
    return {"p_value": p_value, "effect": d, "effect_name": "ks_d", "distance": distance,
            "distance_name": "wasserstein", "js": float(jensenshannon(expected, actual, base=2)),
            "psi": psi(expected, actual)}


def _categorical(ref: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    categories, expected, actual = histogram(ref, Feature("categorical", values))
    table = np.vstack([expected * ref["n"], actual * len(values)])
    table = table[:, table.sum(axis=0) > 0]
    p_value = 1.0 if table.shape[1] < 2 else float(stats.chi2_contingency(table)[1])
    p = np.maximum(expected, EPS)
    effect = float(np.sqrt(np.sum((actual - p) ** 2 / p)))
    js = float(jensenshannon(expected, actual, base=2))
    return {"p_value": p_value, "effect": effect, "effect_name": "cohen_w", "distance": js,
            "distance_name": "jensen_shannon", "js": js, "psi": psi(expected, actual)}


def _ks_statistic(quantiles: np.ndarray, values: np.ndarray) -> float:
    """Largest gap between the new values' empirical CDF and the sketch's (piecewise linear
    between quantiles, with a jump where quantiles tie: a value the reference holds often),
    compared at each new value and just before it, so that ties count as in a two-sample test."""
    x = np.sort(values)
    n = len(x)
    gaps = []
    for side in ("right", "left"):
        ecdf = np.searchsorted(x, x, side=side) / n
        gaps.append(np.abs(ecdf - _sketch_cdf(quantiles, x, side)))
    return float(max(g.max(initial=0.0) for g in gaps))


def _sketch_cdf(quantiles: np.ndarray, x: np.ndarray, side: str) -> np.ndarray:
    """The sketch's CDF at `x` (side "right") or just below it ("left")."""
    cdf = np.interp(x, quantiles, QUANTILES, left=0.0, right=1.0)
    if side == "right":
        i = np.searchsorted(quantiles, x, side="right") - 1
        tied = (i >= 0) & (quantiles[np.clip(i, 0, None)] == x)
    else:
        i = np.searchsorted(quantiles, x, side="left")
        tied = (i < len(quantiles)) & (quantiles[np.clip(i, None, len(quantiles) - 1)] == x)
    i = np.clip(i, 0, len(quantiles) - 1)
    return np.where(tied, QUANTILES[i], cdf)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def _short(value: float) -> str:
    return "-inf" if value == -np.inf else "inf" if value == np.inf else f"{value:.3g}"
