"""Compare preprocessed inputs with a model's training reference: per-feature and overall verdicts.

`check_drift` measures the features of `drift_features` on the new inputs and compares each
with the reference (`drift_stats.compare`): a Bonferroni-corrected test below
`DriftConfig.large_sample` rows, distances from there on, an effect size beside every
p-value. The data drifts when at least `min_drifted` features drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlforge.config.drift_schema import DriftConfig
from dlforge.errors import DataError
from dlforge.lifecycle.drift_features import Feature, input_features, model_features
from dlforge.lifecycle.drift_stats import compare, histogram

if TYPE_CHECKING:
    from dlforge.registry.bundle import Bundle

# `dlforge drift` exit codes for scripts: 0 no drift, DRIFT_EXIT drift (1 and 2 are errors).
DRIFT_EXIT = 3


@dataclass(frozen=True)
class DriftResult:
    """The verdicts of one comparison.

    Attributes:
        model: the model reference (``fashion@production`` or ``fashion@3``).
        source: where the compared inputs came from.
        rows: how many inputs were compared.
        features: one row per feature (`drift_stats.compare`), in reference order.
        drifted: the names of the features that drift.
        detected: the overall verdict: at least `cfg.min_drifted` features drift.
        decided_by: ``tests`` (fewer than `large_sample` rows) or ``distances``.
        histograms: per feature (bin labels, reference shares, new shares), for plots.
    """

    model: str
    source: str
    rows: int
    features: dict[str, dict[str, Any]]
    drifted: list[str]
    detected: bool
    decided_by: str
    settings: dict[str, Any]
    histograms: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def exit_code(self) -> int:
        return DRIFT_EXIT if self.detected else 0

    @property
    def verdict(self) -> str:
        return "drift" if self.detected else "no drift"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: everything but the histograms."""
        return {"model": self.model, "source": self.source, "rows": self.rows,
                "verdict": self.verdict, "detected": self.detected, "decided_by": self.decided_by,
                "drifted": self.drifted, "features": self.features, "settings": self.settings}


def check_drift(reference: dict[str, Any], x: np.ndarray, bundle: Bundle, *, model: str,
                source: str, cfg: DriftConfig | None = None) -> DriftResult:
    """Compare preprocessed inputs `x` with `reference` (the bundle's reference.json).

    Args:
        reference: the training reference (`lifecycle.reference.build_reference`).
        x: preprocessed inputs, as the bundle's model takes them.
        bundle: the model's bundle (model, preprocessor, task, threshold).
        model: the model reference, for messages and the result.
        source: what `x` is (a file, a config, "served sample").
        cfg: thresholds; default `DriftConfig()`.

    Raises:
        DataError: fewer than 2 inputs, or inputs of another shape than the reference's.

    Example:
        >>> result = check_drift(ref, pre.transform(new_x), bundle, model="m@1",
        ...                      source="new.csv")                          # doctest: +SKIP
        >>> result.verdict, result.drifted                                  # doctest: +SKIP
        ('drift', ['mean radius'])
    """
    cfg = cfg or DriftConfig()
    expected = tuple(reference["sample_shape"])
    if tuple(x.shape[1:]) != expected:
        raise DataError(f"drift: the inputs of {source} have shape {tuple(x.shape[1:])} after "
                        f"preprocessing, the reference of {model} {expected}; compare data of "
                        "the kind the model was trained on")
    if len(x) < 2:
        raise DataError(f"drift: {source} has {len(x)} input(s); at least 2 are needed to compare "
                        "distributions")
    features = measure(x, bundle, reference)
    tests = len(reference["features"])
    rows = {name: compare(ref, features[name], tests, cfg)
            for name, ref in reference["features"].items() if name in features}
    drifted = [name for name, row in rows.items() if row["drifted"]]
    return DriftResult(
        model=model, source=source, rows=len(x), features=rows, drifted=drifted,
        detected=len(drifted) >= cfg.min_drifted,
        decided_by="tests" if len(x) < cfg.large_sample else "distances",
        settings={**cfg.model_dump(include={"alpha", "large_sample", "wasserstein",
                                            "jensen_shannon", "psi", "min_drifted"}),
                  "bonferroni_level": cfg.alpha / max(tests, 1)},
        histograms={name: histogram(reference["features"][name], features[name]) for name in rows},
    )


def measure(x: np.ndarray, bundle: Bundle, reference: dict[str, Any]) -> dict[str, Feature]:
    """Every drift feature of `x`, with the embedding projected as in `reference`."""
    features, _ = model_features(x, bundle.model, bundle.task, bundle.threshold,
                                 projection=reference.get("embedding"))
    return input_features(x, bundle.preprocessor) | features


# Short names of the effect sizes and distances in tables.
SHORT = {"ks_d": "D", "cohen_w": "w", "wasserstein": "W", "jensen_shannon": "JS"}


def summary_rows(result: DriftResult) -> list[tuple[Any, ...]]:
    """(feature, decided by, p-value, effect size, distance, PSI, verdict) rows for tables,
    e.g. ``("a", "ks", 1e-9, "0.421 D", "0.512 W", "0.610 high", "DRIFT")``."""
    return [(name, row["method"], row["p_value"], f"{row['effect']:.3f} {SHORT[row['effect_name']]}",
             f"{row['distance']:.3f} {SHORT[row['distance_name']]}",
             f"{row['psi']:.3f}{' high' if row['psi_high'] else ''}",
             "DRIFT" if row["drifted"] else "ok")
            for name, row in result.features.items()]
