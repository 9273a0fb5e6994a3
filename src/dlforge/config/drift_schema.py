"""The ``drift`` config section: how `dlforge drift` and the server's skew figures decide."""

from __future__ import annotations

from pydantic import Field

from dlforge.config.base import Section


class DriftConfig(Section):
    """Thresholds of the drift verdicts and the server's sample of served inputs.

    Below `large_sample` rows a feature drifts when its test's p-value (Kolmogorov-Smirnov for
    numbers, chi-squared for categories) is under `alpha` divided by the number of features
    (Bonferroni); from `large_sample` rows on, when its distance (Wasserstein in reference
    standard deviations for numbers, Jensen-Shannon for categories) is over the threshold, so
    that a large sample does not make every tiny difference "drift". The data drifts when at
    least `min_drifted` features drift.
    """

    alpha: float = Field(0.05, gt=0, lt=1, description="Family-wise significance level (Bonferroni-corrected per feature).")
    large_sample: int = Field(1000, ge=2, description="Rows from which distances decide instead of tests (Evidently's switch).")
    wasserstein: float = Field(0.1, gt=0, description="Numeric feature drifts above this Wasserstein distance in reference std units (large samples).")
    jensen_shannon: float = Field(0.1, gt=0, le=1, description="Categorical feature drifts above this Jensen-Shannon distance (large samples).")
    psi: float = Field(0.2, gt=0, description="PSI shown as a warning above this (reported, does not decide).")
    min_drifted: int = Field(1, ge=1, description="Features that must drift for the data to drift.")
    embedding_dims: int = Field(4, ge=1, le=32, description="PCA components of the penultimate-layer embedding kept in the reference.")
    reservoir: int = Field(1000, ge=10, description="Served inputs the server keeps per model version (reservoir sample).")
    refresh_seconds: float = Field(30.0, gt=0, description="How often the server recomputes drift of the served sample (and saves it).")
