"""Predict and read endpoints against a real store: whole JSON bodies, exact numbers."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from serve_models import TEXTS, image_pixels, table_rows

from dlforge.registry import Predictor, load_bundle


def reference(store, ref: str) -> Predictor:
    return Predictor(load_bundle(store.resolve(ref).bundle_path))


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img[0]).save(buf, format="PNG")
    return buf.getvalue()


def test_image_arrays_predict_like_the_predictor_with_top_k(client, store):
    x = image_pixels(3, seed=5)
    response = client.post("/v1/models/digits/predict", json={"inputs": x.tolist(), "top_k": 2})
    assert response.status_code == 200
    assert response.json() == {"model": "digits", "version": 2,
                               "predictions": reference(store, "digits@2").predict(x, top_k=2)}


def test_alias_and_version_in_the_path(client, store):
    x = image_pixels(1, seed=6)
    expected = reference(store, "digits@1").predict(x, top_k=3)
    for ref in ("digits@production", "digits@1"):
        body = client.post(f"/v1/models/{ref}/predict", json={"inputs": x[:, 0].tolist()}).json()
        assert body == {"model": "digits", "version": 1, "predictions": expected}


def test_serve_model_option_sets_what_a_bare_name_serves(make_client):
    client = make_client(models=["digits@production"])
    assert client.get("/readyz").json() == {"status": "ready", "loaded": ["digits@1"]}
    x = image_pixels(1).tolist()
    assert client.post("/v1/models/digits/predict", json={"inputs": x}).json()["version"] == 1


def test_image_files_as_multipart(client, store):
    x = image_pixels(2, seed=7)
    files = [("files", (f"{i}.png", png(img), "image/png")) for i, img in enumerate(x)]
    response = client.post("/v1/models/digits/predict?top_k=1", files=files)
    assert response.status_code == 200
    assert response.json()["predictions"] == reference(store, "digits").predict(x, top_k=1)


def test_binary_table_rows_as_objects_and_arrays_report_the_threshold(client, store):
    rows = table_rows(2, seed=3)
    objects = rows.to_dict(orient="records")
    expected = reference(store, "churn").predict(rows)
    assert expected[0]["threshold"] == 0.3
    for inputs in (objects, rows.values.tolist()):
        body = client.post("/v1/models/churn/predict", json={"inputs": inputs}).json()
        assert body == {"model": "churn", "version": 1, "predictions": expected}


def test_multilabel_texts_report_per_label_thresholds(client, store):
    texts = [TEXTS[0], "never seen words"]
    body = client.post("/v1/models/topics/predict", json={"inputs": texts}).json()
    expected = reference(store, "topics").predict(texts)
    assert body["predictions"] == expected
    assert expected[0]["thresholds"] == {"sport": 0.4, "film": 0.6}


def test_list_and_show_models(client, store):
    assert client.get("/v1/models").json() == {"models": [
        {"name": "churn", "latest_version": 1, "versions": 1, "aliases": {}},
        {"name": "digits", "latest_version": 2, "versions": 2, "aliases": {"production": 1}},
        {"name": "topics", "latest_version": 1, "versions": 1, "aliases": {}},
    ]}
    body = client.get("/v1/models/digits").json()
    created = [v.created_at.isoformat() for v in store.list_versions("digits")]
    assert body == {"name": "digits", "aliases": {"production": 1}, "versions": [
        {"version": 1, "aliases": ["production"], "metrics": {"accuracy": 0.51}, "run_id": None,
         "parent_version": None, "created_at": created[0]},
        {"version": 2, "aliases": [], "metrics": {"accuracy": 0.52}, "run_id": None,
         "parent_version": None, "created_at": created[1]},
    ]}


def test_health_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    schema = client.get("/openapi.json").json()
    assert sorted(schema["paths"]) == ["/healthz", "/metrics", "/readyz", "/v1/models",
                                       "/v1/models/{name}", "/v1/models/{name}/aliases/{alias}",
                                       "/v1/models/{name}/predict", "/v1/models/{name}/reload"]
    content = schema["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    assert sorted(content) == ["application/json", "application/x-npy", "multipart/form-data"]
