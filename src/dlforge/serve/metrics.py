"""Prometheus metrics of one app: request counts, latency histogram, errors by status code,
and the drift of each model version's served inputs (`serve/drift.py`).

Each app gets its own `CollectorRegistry` (no process-global state), so two apps in one
process (tests) count separately.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServeMetrics:
    """The counters and histograms the service exports at ``/metrics``.

    Labels use the route template (``/v1/models/{name}/predict``), never the raw path, so a
    client cannot blow up the number of series by requesting random URLs.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("dlforge_http_requests", "HTTP requests handled.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("dlforge_http_request_duration_seconds",
                                 "Time to answer a request.", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter("dlforge_http_errors", "Responses with status >= 400, by status code.",
                              ["status"], registry=self.registry)
        self.batch_size = Histogram("dlforge_batch_size", "Inputs per forward pass (micro-batches).",
                                    buckets=BATCH_BUCKETS, registry=self.registry)

        self._series: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        labels = ["model", "version"]
        self.drift_detected = Gauge("dlforge_drift_detected", "1 when the served sample drifts "
                                    "from the training reference, else 0.", labels, registry=self.registry)
        self.drift_features = Gauge("dlforge_drift_features_drifted", "Features of the served "
                                    "sample that drift.", labels, registry=self.registry)
        self.drift_rows = Gauge("dlforge_drift_sample_rows", "Served inputs in the drift sample.",
                                labels, registry=self.registry)
        self.drift_effect = Gauge("dlforge_drift_effect", "Effect size per feature (KS D for "
                                  "numbers, Cohen's w for categories).", [*labels, "feature"],
                                  registry=self.registry)
        self.drift_distance = Gauge("dlforge_drift_distance", "Distance per feature (Wasserstein "
                                    "in reference stds, Jensen-Shannon).", [*labels, "feature"],
                                    registry=self.registry)

    def observe_drift(self, name: str, version: int, result: Any) -> None:
        """Publish a `lifecycle.drift.DriftResult` of the served sample of one model version."""
        labels = (name, str(version))
        self.drift_detected.labels(*labels).set(int(result.detected))
        self.drift_features.labels(*labels).set(len(result.drifted))
        self.drift_rows.labels(*labels).set(result.rows)
        for feature, row in result.features.items():
            self.drift_effect.labels(*labels, feature).set(row["effect"])
            self.drift_distance.labels(*labels, feature).set(row["distance"])

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:  # labels() per request cost ~10 us of the event loop's time
            series = self._series[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
                self.errors.labels(str(status)) if status >= 400 else None)
        count, latency, errors = series
        count.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
