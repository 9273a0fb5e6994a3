"""Inputs are bounded before they cost memory: image sizes from headers, pixel value ranges."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import ImageFile
from serve_models import image_pixels

from dlforge.errors import DataError
from dlforge.serve.inputs import to_batch
from dlforge.serve.schemas import PredictRequest

PREDICT = "/v1/models/digits/predict"


def detail(response) -> tuple[int, str]:
    return response.status_code, response.json()["detail"]


def upload(*files: tuple[str, bytes]) -> list:
    return [("files", (name, data, "image/png")) for name, data in files]


@pytest.fixture
def no_decoding(monkeypatch):
    """Decoding any pixels fails the request with a 500: the limits must act on headers alone."""
    def refuse(self):
        raise AssertionError(f"decoded a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_a_decompression_bomb_gets_422_without_being_decoded(client, blank_png, no_decoding):
    bomb = blank_png(20000, 20000)
    assert len(bomb) < 60_000
    assert detail(client.post(PREDICT, files=upload(("bomb.png", bomb)))) == (
        422, "files[0] (bomb.png): image is 400000000 pixels; the limit is 89478485 pixels; "
             "resize it first")


def test_images_over_the_pixel_cap_are_refused_from_their_headers(client, blank_png, no_decoding):
    big = blank_png(12000, 12000)
    files = upload(*[(f"{i}.png", big) for i in range(5)])
    assert detail(client.post(PREDICT, files=files)) == (
        422, "files[0] (0.png): image is 12000x12000 pixels (144000000); the limit is 89478485 "
             "pixels; resize it first")


def test_an_image_larger_than_the_model_can_use_is_refused(client, blank_png, no_decoding):
    files = upload(("ok.png", blank_png(8, 8)), ("wide.png", blank_png(513, 4)))
    assert detail(client.post(PREDICT, files=files)) == (
        422, "files[1] (wide.png): image is 513x4 pixels; the limit is 512 pixels a side (64x the "
             "model's 8x8 input); resize it first")


def test_the_image_files_of_a_request_share_a_pixel_budget(make_client, blank_png, no_decoding):
    client = make_client(max_pixels=500_000)
    files = upload(*[(f"{i}.png", blank_png(500, 400)) for i in range(3)])
    assert detail(client.post(PREDICT, files=files)) == (
        413, "files: 3 images of 600000 pixels in all; at most 500000 pixels per request "
             "(dlforge serve --max-pixels); send fewer or smaller images per request")


def test_images_within_the_limits_are_decoded(make_client, blank_png):
    client = make_client(max_pixels=500_000)
    files = upload(*[(f"{i}.png", blank_png(500, 400)) for i in range(2)])
    assert detail(client.post(PREDICT, files=files)) == (
        422, "input: image bytes is 500x400 pixels; the model takes 8x8 images")


@pytest.mark.parametrize(("value", "shown"), [(-1e30, "-1e+30"), (256, "256"), (-0.5, "-0.5"),
                                              (1e39, "1e+39")])
def test_pixel_values_outside_the_training_range_get_422(client, value, shown):
    images = image_pixels(2).tolist()
    images[1][0][3][5] = value
    assert detail(client.post(PREDICT, json={"inputs": images})) == (
        422, f"inputs[1][0][3][5]: pixel value {shown} is outside 0..255, the range of the uint8 "
             "pixels this model was trained on")


def test_pixel_values_at_the_ends_of_the_range_are_predicted(client):
    image = [[0, 255, 127.5, 0.25, 0, 0, 0, 0]] * 8
    response = client.post(PREDICT, json={"inputs": [image]})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1


@pytest.mark.parametrize(("pixels", "value", "message"), [
    ("unit", 1.5, "inputs[0][1][2]: pixel value 1.5 is outside 0..1, the range of the unit pixels "
                  "this model was trained on"),
    ("unit", -0.001, "inputs[0][1][2]: pixel value -0.001 is outside 0..1, the range of the unit "
                     "pixels this model was trained on"),
    ("other", 1e39, "inputs[0][1][2]: pixel value 1e+39 is outside the float32 range"),
    ("bogus", 1e39, "inputs[0][1][2]: pixel value 1e+39 is outside the float32 range"),
])
def test_the_pixel_range_follows_the_bundle(pixels, value, message):
    image = [[0.5] * 3 for _ in range(3)]
    image[1][2] = value
    model = SimpleNamespace(modality="image", pixels=pixels)
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        to_batch(PredictRequest(inputs=[image]), model, None, 1)


def test_a_model_of_unknown_pixel_range_takes_any_float32(client):
    image = [[0.5] * 3 for _ in range(3)]
    image[1][2] = -1e30
    model = SimpleNamespace(modality="image", pixels="other")
    batch = to_batch(PredictRequest(inputs=[image]), model, None, 1)
    assert batch.items[0, 1, 2] == np.float32(-1e30)


READS = ["GET /metrics", "GET /v1/models", "GET /v1/models/{name}",
         "POST /v1/models/{name}/predict"]
WRITES = ["POST /v1/models/{name}/reload", "PUT /v1/models/{name}/aliases/{alias}"]


@pytest.mark.parametrize("protect_reads", [False, True])
def test_openapi_declares_the_token_where_the_server_asks_for_it(make_client, protect_reads):
    client = make_client(protect_reads=protect_reads, token="s3cret")
    schema = client.get("/openapi.json").json()
    secured = sorted(f"{method.upper()} {path}" for path, ops in schema["paths"].items()
                     for method, op in ops.items() if op.get("security") == [{"HTTPBearer": []}])
    assert secured == sorted(WRITES + (READS if protect_reads else []))
    assert client.get("/v1/models").status_code == (401 if protect_reads else 200)


NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*(@([a-z][a-z0-9_-]*|[0-9]+))?$"


def test_openapi_declares_the_item_limits_and_the_path_patterns(make_client):
    schemas = [make_client(max_items=n).get("/openapi.json").json() for n in (7, 9)]
    for schema, n in zip(schemas, (7, 9), strict=True):
        content = schema["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
        inputs = content["application/json"]["schema"]["oneOf"][0]["properties"]["inputs"]
        files = content["multipart/form-data"]["schema"]["properties"]["files"]
        assert (inputs["minItems"], inputs["maxItems"], files["minItems"], files["maxItems"]) == (1, n, 1, n)
    patterns = {(path, p["name"]): p["schema"]["pattern"] for path, ops in schemas[0]["paths"].items()
                for op in ops.values() for p in op.get("parameters", []) if p["in"] == "path"}
    bare = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # only predict takes NAME@ALIAS / NAME@VERSION
    assert patterns == {
        ("/v1/models/{name}", "name"): bare, ("/v1/models/{name}/predict", "name"): NAME,
        ("/v1/models/{name}/reload", "name"): bare,
        ("/v1/models/{name}/aliases/{alias}", "name"): bare,
        ("/v1/models/{name}/aliases/{alias}", "alias"): r"^[a-z][a-z0-9_-]*$",
    }
    assert [bool(re.match(NAME, ref)) for ref in ("digits", "digits@3", "digits@production",
                                                  "fashion-cnn.v2@latest", "../etc", "a@B", "a@")] \
        == [True, True, True, True, False, False, False]
