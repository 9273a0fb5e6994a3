"""/metrics: Prometheus text with request counts, latency histogram, errors by code, batch sizes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from serve_models import image_pixels

from dlforge.config.schema import ServeConfig
from dlforge.serve import create_app

PREDICT = "/v1/models/{name}/predict"
X = image_pixels(1).tolist()


def samples(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_requests_errors_and_latency_are_counted(store):
    with TestClient(create_app(store, ServeConfig(max_body_mb=0.001))) as client:
        client.post("/v1/models/digits/predict", json={"inputs": X})
        client.post("/v1/models/digits/predict", json={"inputs": []})
        client.post("/v1/models/nope/predict", json={"inputs": X})
        client.post("/v1/models/digits/predict", json={"inputs": X * 8})  # 413 before routing
        client.get("/no/such/path")
        got = samples(client)
    post = lambda status: ("dlforge_http_requests_total",  # noqa: E731
                           (("method", "POST"), ("route", PREDICT), ("status", status)))
    assert (got[post("200")], got[post("422")], got[post("404")]) == (1, 1, 1), got
    assert got[("dlforge_http_requests_total",
                (("method", "POST"), ("route", "unmatched"), ("status", "413")))] == 1
    assert {k[1][0][1]: v for k, v in got.items() if k[0] == "dlforge_http_errors_total"} == {
        "404": 2.0, "413": 1.0, "422": 1.0}
    latency = ("dlforge_http_request_duration_seconds_count", (("method", "POST"), ("route", PREDICT)))
    assert got[latency] == 3
    inf = ("dlforge_http_request_duration_seconds_bucket",
           (("le", "+Inf"), ("method", "POST"), ("route", PREDICT)))
    assert got[inf] == 3


def test_concurrent_requests_are_one_batch(store):
    app = create_app(store, ServeConfig(max_batch=3, max_wait_ms=3000))
    with TestClient(app) as client:
        client.get("/v1/models/digits")  # nothing loaded yet: the first predict loads the model
        with ThreadPoolExecutor(3) as pool:
            codes = list(pool.map(lambda _: client.post("/v1/models/digits/predict",
                                                        json={"inputs": X}).status_code, range(3)))
        got = samples(client)
    assert codes == [200, 200, 200]
    assert got[("dlforge_batch_size_count", ())] == 1
    assert got[("dlforge_batch_size_sum", ())] == 3
