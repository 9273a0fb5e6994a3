"""Alias moves switch versions without failing a request; state changes need the bearer token."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from serve_models import image_pixels, make_store

from dlforge.config.schema import ServeConfig
from dlforge.registry import Predictor, load_bundle
from dlforge.serve import create_app
from dlforge.serve.models import ModelCache

TOKEN = {"Authorization": "Bearer s3cret"}
X = image_pixels(2, seed=11)


@pytest.fixture
def own_store(tmp_path):
    store = make_store(tmp_path)  # these tests move aliases: not the shared module store
    yield store
    store.close()


def expected(store, version: int) -> list[dict]:
    return Predictor(load_bundle(store.get_version("digits", version).bundle_path)).predict(X, top_k=5)


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


def same(rows: list[dict] | None, reference: list[dict] | None) -> bool:
    """Equal up to float rounding: a batched forward pass may round differently in the 8th digit."""
    if rows is None or reference is None:
        return False
    return [r["label"] for r in rows] == [r["label"] for r in reference] and all(
        r["scores"] == pytest.approx(e["scores"], abs=1e-6) for r, e in zip(rows, reference, strict=True))


def test_in_flight_request_finishes_on_the_old_version(own_store):
    async def scenario():
        cache = ModelCache(own_store, defaults={"digits": "production"}, max_batch=8,
                           max_wait_ms=200.0)  # the first request waits in v1's queue
        old = await cache.get("digits")
        waiting = asyncio.ensure_future(old.batcher.submit(X, "array", 2))
        await asyncio.sleep(0)
        own_store.set_alias("digits", "production", 2)
        new = await cache.get("digits")
        rows = await waiting
        await cache.close()
        return old.version.version, new.version.version, rows

    old, new, rows = asyncio.run(scenario())
    assert (old, new) == (1, 2)
    assert rows == expected(own_store, 1)


def test_alias_moves_under_load_fail_no_request(own_store, monkeypatch):
    monkeypatch.setenv("DLFORGE_SERVE_TOKEN", "s3cret")
    app = create_app(own_store, ServeConfig(max_wait_ms=2.0))
    by_version = {1: expected(own_store, 1), 2: expected(own_store, 2)}
    stop = threading.Event()
    done = []  # one entry per answered request, to interleave the moves with the load
    with TestClient(app) as client:
        def hammer() -> list[tuple[int, int | None, bool]]:
            seen = []
            for _ in range(200):  # bounded even if the mover never finishes
                if stop.is_set():
                    break
                r = client.post("/v1/models/digits@production/predict", json={"inputs": X.tolist()})
                body = r.json()
                seen.append((r.status_code, body.get("version"),
                             same(body.get("predictions"), by_version.get(body.get("version")))))
                done.append(1)
            return seen

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(hammer) for _ in range(4)]
            for version in (2, 1, 2, 1, 2):
                target = len(done) + 4
                wait_for(lambda target=target: len(done) >= target)
                response = client.put("/v1/models/digits/aliases/production",
                                      json={"version": version}, headers=TOKEN)
                assert response.json() == {"model": "digits", "alias": "production", "version": version}
            stop.set()
            results = [row for f in futures for row in f.result()]
        after = client.post("/v1/models/digits@production/predict", json={"inputs": X.tolist()})
    assert {status for status, _, _ in results} == {200}
    assert {version for _, version, _ in results} == {1, 2}
    assert all(ok for _, _, ok in results)  # each answer is its version's output
    assert after.json()["version"] == 2


def test_state_changes_need_the_token(own_store, monkeypatch):
    monkeypatch.delenv("DLFORGE_SERVE_TOKEN", raising=False)
    put = ("/v1/models/digits/aliases/production", {"version": 2})
    with TestClient(create_app(own_store, ServeConfig())) as client:
        assert client.put(put[0], json=put[1], headers=TOKEN).json() == {
            "detail": "this server has no token, so it refuses state changes; set serve.token or "
                      "$DLFORGE_SERVE_TOKEN and restart it"}
    with TestClient(create_app(own_store, ServeConfig(token="s3cret"))) as client:
        missing = client.put(put[0], json=put[1])
        assert (missing.status_code, missing.json(), missing.headers["www-authenticate"]) == (
            401, {"detail": "Authorization: missing; send the header 'Authorization: Bearer <token>'"},
            "Bearer")
        wrong = client.post("/v1/models/digits/reload", headers={"Authorization": "Bearer nope"})
        assert (wrong.status_code, wrong.json()) == (401, {"detail": "Authorization: wrong bearer token"})
        assert own_store.resolve("digits@production").version == 1  # nothing changed
        assert client.get("/v1/models").status_code == 200  # reads are open by default
        bad = client.put("/v1/models/digits/aliases/latest", json={"version": 1}, headers=TOKEN)
        assert (bad.status_code, bad.json()["detail"]) == (
            422, "alias: 'latest' is reserved (it always means the newest version); choose another name")
        gone = client.put(put[0], json={"version": 7}, headers=TOKEN)
        assert gone.status_code == 404
        assert client.put(put[0], json=put[1], headers=TOKEN).status_code == 200
    assert [e.event for e in own_store.history("digits")][-1] == "alias_moved"


def test_reload_drops_loaded_versions(own_store):
    with TestClient(create_app(own_store, ServeConfig(token="s3cret"))) as client:
        client.post("/v1/models/digits@1/predict", json={"inputs": X.tolist()})
        client.post("/v1/models/digits/predict", json={"inputs": X.tolist()})
        assert client.get("/readyz").json()["loaded"] == ["digits@1", "digits@2"]
        assert client.post("/v1/models/digits/reload", headers=TOKEN).json() == {
            "model": "digits", "reloaded": [1, 2]}
        assert client.get("/readyz").json()["loaded"] == []
        assert client.post("/v1/models/nope/reload", headers=TOKEN).status_code == 404


def test_protect_reads_needs_the_token_for_predict_and_reads(own_store):
    app = create_app(own_store, ServeConfig(token="s3cret", protect_reads=True))
    with TestClient(app) as client:
        for method, url in (("GET", "/v1/models"), ("GET", "/v1/models/digits"),
                            ("POST", "/v1/models/digits/predict"), ("GET", "/metrics")):
            assert client.request(method, url).status_code == 401, url
        assert client.get("/healthz").status_code == 200
        ok = client.post("/v1/models/digits/predict", json={"inputs": X.tolist()}, headers=TOKEN)
        assert ok.json()["predictions"] == expected(own_store, 2)
