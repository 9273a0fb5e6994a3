"""The predict fast path (serve/fastpath.py): it takes exactly the plain requests, answers them
as the full FastAPI stack would (statuses, bodies, metrics), and leaves every other request to
FastAPI."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from serve_models import image_pixels

from dlforge.serve import fastpath
from dlforge.serve.errors import INTERNAL
from dlforge.serve.fastpath import Plain, plain_predict

PREDICT = "/v1/models/digits/predict"
JSON = b"application/json"


def scope(path: str = PREDICT, query: bytes = b"", method: str = "POST", length: bytes = b"10",
          content_type: bytes = JSON, root_path: str = "", extra: tuple = ()) -> dict:
    headers = [(b"content-type", content_type)] + ([(b"content-length", length)] if length else [])
    headers += list(extra)
    return {"type": "http", "method": method, "path": path, "root_path": root_path,
            "query_string": query, "headers": headers}


def state(protect_reads: bool = False, max_body_bytes: int = 100) -> SimpleNamespace:
    return SimpleNamespace(protect_reads=protect_reads, max_body_bytes=max_body_bytes)


@pytest.mark.parametrize(("request_scope", "expected"), [
    (scope(), Plain("digits", None, "application/json")),
    (scope(query=b"top_k=3"), Plain("digits", 3, "application/json")),
    (scope(query=b"top_k=10000", length=b"100"), Plain("digits", 10000, "application/json")),
    (scope(path="/v1/models/digits@production/predict", query=b"top_k=1",
           content_type=b"application/x-npy"), Plain("digits@production", 1, "application/x-npy")),
])
def test_plain_predict_requests_take_the_fast_path(request_scope, expected):
    assert plain_predict(request_scope, state()) == expected


@pytest.mark.parametrize("request_scope", [
    scope(query=b"top_k=0"), scope(query=b"top_k=10001"), scope(query=b"top_k=-1"),
    scope(query=b"top_k=abc"), scope(query=b"top_k=3&top_k=4"), scope(query=b"x=1"),
    scope(query=b"top_k=" + b"9" * 6), scope(method="GET"),
    scope(path=f"/v1/models/{'a' * 201}/predict"), scope(path="/v1/models/digits"),
    scope(path="/v1/models/a/b/predict"), scope(root_path="/api"),
    scope(length=b""), scope(length=b"101"), scope(length=b"1e3"),
    scope(content_type=b"multipart/form-data; boundary=x"),
    scope(extra=[(b"transfer-encoding", b"chunked")]),
])
def test_every_other_request_is_left_to_fastapi(request_scope):
    assert plain_predict(request_scope, state()) is None


def test_a_protected_server_leaves_every_predict_to_fastapi():
    assert plain_predict(scope(), state(protect_reads=True)) is None


@pytest.fixture
def fast_calls(monkeypatch):
    """The requests the fast path answered, by path."""
    calls: list[str] = []
    answer = fastpath._answer

    async def spy(state, plain, request_scope, receive, send):
        calls.append(request_scope["path"])
        await answer(state, plain, request_scope, receive, send)

    monkeypatch.setattr(fastpath, "_answer", spy)
    return calls


@pytest.mark.parametrize(("path", "body"), [
    (PREDICT, {"inputs": image_pixels(2, seed=3).tolist()}),
    (PREDICT, {"inputs": []}),  # 422: empty
    (PREDICT, {"inputs": ["a text"]}),  # 422: not an image
    (PREDICT, {"inputs": [[[300.0] * 8] * 8]}),  # 422: out of range
    (PREDICT, {"wrong": 1}),  # 422: pydantic's message
    ("/v1/models/nosuch/predict", {"inputs": [[[0.0] * 8] * 8]}),  # 404
    ("/v1/models/digits@9/predict", {"inputs": [[[0.0] * 8] * 8]}),  # 404
    ("/v1/models/BAD name/predict", {"inputs": [[[0.0] * 8] * 8]}),  # the registry's message
])
def test_fast_and_fastapi_paths_answer_alike(client, fast_calls, path, body):
    fast = client.post(f"{path}?top_k=2", json=body)
    # an extra query parameter sends the same request through FastAPI's route
    slow = client.post(f"{path}?top_k=2&unused=1", json=body)
    assert fast_calls == [path]
    assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    if fast.status_code == 200:
        assert [len(p["scores"]) for p in fast.json()["predictions"]] == [2, 2]


def test_malformed_json_gets_the_same_message_on_both_paths(client, fast_calls):
    fast = client.post(PREDICT, content=b"{not json", headers={"content-type": "application/json"})
    slow = client.post(f"{PREDICT}?unused=1", content=b"{not json",
                       headers={"content-type": "application/json"})
    assert fast_calls == [PREDICT]
    assert fast.status_code == slow.status_code == 422
    assert fast.json() == slow.json()
    assert fast.json()["detail"].startswith("body: not valid JSON (")


def test_a_bad_top_k_query_gets_fastapis_message(client, fast_calls):
    response = client.post(f"{PREDICT}?top_k=0", json={"inputs": image_pixels(1).tolist()})
    assert (response.status_code, response.json()) == (422, {"detail": "query.top_k: Input should be greater than or equal to 1"})
    assert fast_calls == []


def test_fast_requests_are_counted_like_the_others(client, fast_calls):
    client.post(PREDICT, json={"inputs": image_pixels(1).tolist()})
    client.post(PREDICT, json={"inputs": []})
    client.post(f"{PREDICT}?unused=1", json={"inputs": []})
    text = client.get("/metrics").text
    route = 'method="POST",route="/v1/models/{name}/predict"'
    assert f'dlforge_http_requests_total{{{route},status="200"}} 1.0' in text
    assert f'dlforge_http_requests_total{{{route},status="422"}} 2.0' in text
    assert 'dlforge_http_errors_total{status="422"} 2.0' in text
    assert f'dlforge_http_request_duration_seconds_count{{{route}}} 3.0' in text
    assert fast_calls == [PREDICT, PREDICT]


def test_an_unexpected_error_is_a_logged_500(client, fast_calls, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(fastpath, "predict_json", broken)
    with caplog.at_level(logging.ERROR, logger="dlforge.serve"):
        response = client.post(PREDICT, json={"inputs": image_pixels(1).tolist()})
    assert (response.status_code, response.json()) == (500, {"detail": INTERNAL})
    assert fast_calls == [PREDICT]
    assert [r.getMessage() for r in caplog.records] == [f"POST {PREDICT} failed"]
    assert caplog.records[0].exc_info[1].args == ("boom",)


def run_asgi(client, messages: list[dict], query: bytes = b"",
             length: bytes | None = None) -> list[dict]:
    """Call the client's app once, on its event loop, with `messages` as the request (its
    Content-Length `length`, else the bytes sent); return what it sent."""
    sent: list[dict] = []
    pending = list(messages)

    async def receive() -> dict:
        return pending.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    if length is None:
        length = b"%d" % sum(len(m.get("body", b"")) for m in messages)
    client.portal.call(client.app, scope(query=query, length=length), receive, send)
    return sent


def test_a_body_in_chunks_is_read_whole(make_client, fast_calls):
    body = b'{"inputs": ["a text"]}'
    sent = run_asgi(make_client(), [{"type": "http.request", "body": body[:5], "more_body": True},
                                    {"type": "http.request", "body": body[5:], "more_body": False}])
    assert sent[0]["status"] == 422  # the whole body parsed: a text sent to an image model
    assert sent[1]["body"] == (b'{"detail":"inputs[0]: this model takes pixel arrays of shape (C, H, W) '
                               b'or (H, W) (or image files as multipart); got a string"}')
    assert fast_calls == [PREDICT]


def test_more_bytes_than_the_limit_are_refused_whatever_the_declared_length(make_client, fast_calls):
    client = make_client(max_body_mb=0.001)  # 1,048 bytes
    chunk = {"type": "http.request", "body": b" " * 600, "more_body": True}
    sent = run_asgi(client, [chunk, chunk, {"type": "http.request", "body": b"{}"}], length=b"10")
    assert sent[0]["status"] == 413
    assert sent[1]["body"] == (b'{"detail":"body: larger than the limit of 1048 bytes (serve.max_body_mb); '
                               b'send fewer or smaller inputs per request"}')
    assert fast_calls == [PREDICT]


@pytest.mark.parametrize(("query", "fast"), [(b"", [PREDICT]), (b"unused=1", [])])
def test_a_client_gone_before_its_body_is_counted_not_answered(make_client, fast_calls, caplog,
                                                                query, fast):
    client = make_client()
    with caplog.at_level(logging.ERROR):
        sent = run_asgi(client, [{"type": "http.request", "body": b"{", "more_body": True},
                                 {"type": "http.disconnect"}], query=query)
    assert fast_calls == fast
    assert [m for m in sent if m["type"] == "http.response.body" and m.get("body")] == []
    assert caplog.records == []
    text = client.get("/metrics").text
    assert ('dlforge_http_requests_total{method="POST",route="/v1/models/{name}/predict",'
            'status="499"} 1.0') in text


def test_with_opentelemetry_on_every_request_takes_fastapis_path(client, fast_calls, monkeypatch):
    monkeypatch.setattr(client.app._native_telemetry, "enabled", lambda: True)
    response = client.post(PREDICT, json={"inputs": image_pixels(1).tolist()})
    assert response.status_code == 200
    assert fast_calls == []
