"""The predict fast path (serve/fastpath.py): it takes exactly the plain requests, and every
other request gets FastAPI's own answer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from serve_models import image_pixels
from starlette.routing import Match

from dlforge.serve.fastpath import PredictRoute

PREDICT = "/v1/models/digits/predict"


def scope(path: str = PREDICT, query: bytes = b"", method: str = "POST",
          protect_reads: bool = False) -> dict:
    app = SimpleNamespace(state=SimpleNamespace(protect_reads=protect_reads))
    return {"type": "http", "method": method, "path": path, "root_path": "",
            "query_string": query, "app": app, "headers": []}


@pytest.mark.parametrize("request_scope", [
    scope(), scope(query=b"top_k=3"), scope(query=b"top_k=10000"),
    scope(path="/v1/models/digits@production/predict", query=b"top_k=1"),
])
def test_plain_predict_requests_take_the_fast_path(request_scope):
    route = PredictRoute()
    match, child = route.matches(request_scope)
    assert match is Match.FULL
    assert child["route"] is route and route.path == "/v1/models/{name}/predict"
    assert child["path_params"]["name"] == request_scope["path"].split("/")[3]


@pytest.mark.parametrize("request_scope", [
    scope(query=b"top_k=0"), scope(query=b"top_k=10001"), scope(query=b"top_k=-1"),
    scope(query=b"top_k=abc"), scope(query=b"top_k=3&top_k=4"), scope(query=b"x=1"),
    scope(query=b"top_k=" + b"9" * 6), scope(protect_reads=True), scope(method="GET"),
    scope(path=f"/v1/models/{'a' * 201}/predict"), scope(path="/v1/models/digits"),
])
def test_every_other_request_is_left_to_fastapi(request_scope):
    assert PredictRoute().matches(request_scope) == (Match.NONE, {})


def test_fast_and_fastapi_paths_answer_alike(client):
    x = image_pixels(2, seed=3)
    fast = client.post(f"{PREDICT}?top_k=2", json={"inputs": x.tolist()})
    # an extra query parameter sends the same request through FastAPI's route
    slow = client.post(f"{PREDICT}?top_k=2&unused=1", json={"inputs": x.tolist()})
    assert fast.status_code == slow.status_code == 200
    assert fast.json() == slow.json()
    assert [len(p["scores"]) for p in fast.json()["predictions"]] == [2, 2]


def test_a_bad_top_k_query_gets_fastapis_message(client):
    response = client.post(f"{PREDICT}?top_k=0", json={"inputs": image_pixels(1).tolist()})
    assert (response.status_code, response.json()) == (422, {"detail": "query.top_k: Input should be greater than or equal to 1"})
