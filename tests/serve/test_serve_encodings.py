"""Images as raw bytes (base64 in JSON, .npy bodies): the same predictions as JSON pixel
lists, and every bound of the JSON path enforced on them."""

from __future__ import annotations

import base64
import io
import pickle
import struct

import numpy as np
import pytest
from serve_models import image_pixels

from dlforge.serve.arrays import encode_b64, encode_npy

PREDICT = "/v1/models/digits/predict"
NPY = {"Content-Type": "application/x-npy"}


def detail(response) -> tuple[int, str]:
    return response.status_code, response.json()["detail"]


def b64_body(data: bytes, dtype: str, shape: list[int]) -> dict:
    return {"inputs": {"b64": base64.b64encode(data).decode(), "dtype": dtype, "shape": shape}}


def npy(x: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.save(stream, x)
    return stream.getvalue()


# a header whose shape tuple is not closed: numpy's parser raises tokenize.TokenError
_HEADER = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4 , }".ljust(118) + "\n"
NPY_BAD_HEADER = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(_HEADER)) + _HEADER.encode() + bytes(96)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_base64_and_npy_predict_exactly_like_json_lists(client, dtype):
    x = image_pixels(3, seed=4).astype(dtype)
    expected = client.post(PREDICT, json={"inputs": x.tolist(), "top_k": 2}).json()
    assert expected["predictions"] and len(expected["predictions"]) == 3
    assert client.post(PREDICT, json=encode_b64(x, top_k=2)).json() == expected
    assert client.post(f"{PREDICT}?top_k=2", content=encode_npy(x), headers=NPY).json() == expected
    assert client.post(PREDICT, json=encode_b64(x[:, 0], top_k=2)).json() == expected  # (N, H, W)


def test_the_encoders_send_uint8_as_is_and_anything_else_as_float32():
    assert encode_b64(np.zeros((1, 2, 2), dtype=np.uint8))["inputs"]["dtype"] == "uint8"
    body = encode_b64(np.full((1, 1, 2), 0.5))  # float64 in
    assert body["inputs"] == {"b64": base64.b64encode(np.full(2, 0.5, "<f4").tobytes()).decode(),
                              "dtype": "float32", "shape": [1, 1, 2]}
    assert np.load(io.BytesIO(encode_npy(np.arange(4).reshape(1, 2, 2)))).dtype == np.float32


@pytest.mark.parametrize(("body", "message"), [
    (b64_body(bytes(64 * 3), "uint8", [3, 1, 8, 8]),
     "inputs.shape: 3 items; at most 2 per request (dlforge serve --max-items); split the request"),
    (b64_body(bytes(63), "uint8", [1, 1, 8, 8]),
     "inputs.b64: 63 bytes; shape [1, 1, 8, 8] of uint8 needs 64"),
    (b64_body(bytes(64), "float32", [1, 1, 8, 8]),
     "inputs.b64: 64 bytes; shape [1, 1, 8, 8] of float32 needs 256"),
    (b64_body(bytes(64), "uint8", [64]),
     "inputs.shape: [64] has 1 dimensions; images take (N, H, W) or (N, C, H, W)"),
    (b64_body(b"", "uint8", [0, 8, 8]),
     "inputs.shape: [0, 8, 8] holds no image; send at least one input"),
    ({"inputs": {"b64": "AAAA*AAA", "dtype": "uint8", "shape": [1, 2, 3]}},
     "inputs.b64: not valid base64; encode the array's bytes with the standard alphabet and "
     "padding (base64.b64encode(x.tobytes()))"),
    ({"inputs": {"b64": "AAAA", "dtype": "float64", "shape": [1, 1, 3]}},
     "inputs.dtype: Input should be 'uint8' or 'float32'"),
    ({"inputs": {"b64": "AAAA", "dtype": "uint8", "shape": [1, 1, 3], "path": "/etc"}},
     "inputs.path: Extra inputs are not permitted"),
    ({"inputs": {"b64": "AAAA", "dtype": "uint8", "shape": [1, -1, -3]}},
     "inputs.shape[1]: Input should be greater than or equal to 0\n"
     "inputs.shape[2]: Input should be greater than or equal to 0"),
])
def test_bad_base64_bodies_get_422_naming_the_field(make_client, body, message):
    client = make_client(max_items=2)
    assert detail(client.post(PREDICT, json=body)) == (422, message)


def test_a_npy_header_with_negative_dimensions_is_refused(client):
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (1, -1, -3)})
    body = stream.getvalue() + bytes(3)  # as many bytes as the product of the dimensions
    assert detail(client.post(PREDICT, content=body, headers=NPY)) == (
        422, "body: shape: [1, -1, -3] has a negative dimension")


@pytest.mark.parametrize(("body", "message"), [
    (npy(np.zeros((3, 8, 8), np.uint8)),
     "body: shape: 3 items; at most 2 per request (dlforge serve --max-items); split the request"),
    (npy(np.zeros((1, 8, 8), np.uint8))[:-1], "body: 63 bytes; shape [1, 8, 8] of uint8 needs 64"),
    (npy(np.zeros((1, 8, 8), np.float64)),
     "body: a .npy array of dtype <f8; send uint8 or float32 (little-endian) in C order: "
     "numpy.save(f, np.ascontiguousarray(x, dtype=np.float32))"),
    (npy(np.asfortranarray(np.zeros((1, 8, 8), np.float32))),
     "body: a .npy array of dtype <f4, Fortran order; send uint8 or float32 (little-endian) in "
     "C order: numpy.save(f, np.ascontiguousarray(x, dtype=np.float32))"),
    (npy(np.zeros((1, 8, 8), ">f4")),
     "body: a .npy array of dtype >f4; send uint8 or float32 (little-endian) in C order: "
     "numpy.save(f, np.ascontiguousarray(x, dtype=np.float32))"),
    (b'{"inputs": [1]}',
     "body: not a .npy array (the magic string is not correct; expected b'\\x93NUMPY', got "
     "b'{\"inpu'); write it with numpy.save"),
    (NPY_BAD_HEADER, "body: not a .npy array (('EOF in multi-line statement', (2, 0))); write it "
                     "with numpy.save"),
])
def test_bad_npy_bodies_get_422(make_client, body, message):
    client = make_client(max_items=2)
    assert detail(client.post(PREDICT, content=body, headers=NPY)) == (422, message)


def test_a_pickled_npy_body_is_refused_without_unpickling(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("unpickled a request body")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    objects = np.empty((1, 8, 8), dtype=object)
    objects[...] = 0
    stream = io.BytesIO()
    np.save(stream, objects, allow_pickle=True)
    assert detail(client.post(PREDICT, content=stream.getvalue(), headers=NPY)) == (
        422, "body: a .npy array of dtype |O; send uint8 or float32 (little-endian) in C order: "
             "numpy.save(f, np.ascontiguousarray(x, dtype=np.float32))")


@pytest.mark.parametrize(("value", "shown"), [(256.0, "256.0"), (-0.001, "-0.001"),
                                              (np.nan, "nan"), (np.inf, "inf")])
def test_float32_pixels_outside_the_training_range_get_422(client, value, shown):
    x = image_pixels(2).astype(np.float32)
    x[1, 0, 3, 5] = value
    message = (f"inputs[1][0][3][5]: pixel value {shown} is outside 0..255, the range of the "
               "uint8 pixels this model was trained on")
    assert detail(client.post(PREDICT, json=encode_b64(x))) == (422, message)
    assert detail(client.post(PREDICT, content=encode_npy(x), headers=NPY)) == (422, message)


def test_models_of_other_modalities_refuse_image_arrays(client):
    for name in ("churn", "topics"):
        kind = {"churn": "table", "topics": "text"}[name]
        assert detail(client.post(f"/v1/models/{name}/predict", json=encode_b64(image_pixels(1)))) == (
            422, f"inputs: this model takes {kind} inputs, not an image array; "
                 'send JSON {"inputs": [...]}')


def test_the_body_limit_holds_for_every_encoding(make_client):
    client = make_client(max_body_mb=0.001)  # 1048 bytes
    x = image_pixels(20)  # 1280 bytes of pixels
    too_large = (413, "body: larger than the limit of 1048 bytes (serve.max_body_mb); "
                      "send fewer or smaller inputs per request")
    assert detail(client.post(PREDICT, json=encode_b64(x))) == too_large
    assert detail(client.post(PREDICT, content=encode_npy(x), headers=NPY)) == too_large
    assert client.post(PREDICT, content=encode_npy(x[:2]), headers=NPY).status_code == 200


def test_a_wrong_image_shape_gets_the_predictors_message(client):
    assert detail(client.post(PREDICT, json=encode_b64(np.zeros((1, 7, 7), np.uint8)))) == (
        422, "input: expected images of shape (N, 1, 8, 8) or (N, 8, 8), image file paths or "
             "bytes; got an array of shape (1, 7, 7)")


def test_openapi_describes_every_predict_body_with_examples(client):
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    assert sorted(content) == ["application/json", "application/x-npy", "multipart/form-data"]
    plain, encoded = content["application/json"]["schema"]["oneOf"]
    assert (plain["title"], encoded["title"]) == ("PredictRequest", "EncodedPredictRequest")
    assert encoded["properties"]["inputs"]["properties"]["dtype"]["enum"] == ["uint8", "float32"]
    example = encoded["examples"][0]
    assert client.post("/v1/models/digits/predict", json=example).json()["detail"] == (
        "input: expected images of shape (N, 1, 8, 8) or (N, 8, 8), image file paths or bytes; "
        "got an array of shape (1, 2, 3)")


@pytest.mark.parametrize("query", ["", "?top_k=1"])
def test_a_null_top_k_is_an_absent_one_on_both_body_forms(client, query):
    x = image_pixels(2, seed=5)
    absent = client.post(PREDICT + query, json={"inputs": x.tolist()})
    assert absent.status_code == 200
    assert len(absent.json()["predictions"][0]["scores"]) == (1 if query else 3)  # 3 classes
    for body in ({"inputs": x.tolist(), "top_k": None}, {**encode_b64(x), "top_k": None}):
        response = client.post(PREDICT + query, json=body)
        assert (response.status_code, response.json()) == (200, absent.json())


def test_openapi_says_top_k_is_an_integer_of_at_least_1_or_null(client):
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    for body in content["application/json"]["schema"]["oneOf"]:
        assert body["properties"]["top_k"]["anyOf"] == [{"minimum": 1, "type": "integer"},
                                                        {"type": "null"}], body["title"]
