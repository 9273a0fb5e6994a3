"""Every bad input gets its status code and a JSON body naming the problem; none is a 5xx."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from serve_models import image_pixels

from dlforge.errors import StoreError
from dlforge.registry.json_inputs import parse_json as _parse_json

PREDICT = "/v1/models/digits/predict"
IMAGE = image_pixels(1).tolist()


def detail(response) -> tuple[int, str]:
    return response.status_code, response.json()["detail"]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"inputs": [[[0] * 7] * 7]}, 422,
     "input: expected images of shape (N, 1, 8, 8) or (N, 8, 8), image file paths or bytes; "
     "got an array of shape (1, 7, 7)"),
    ({"inputs": [[[0] * 8] * 8, [[0] * 7] * 8]}, 422,
     "inputs: images must be arrays of numbers, all of one shape (C, H, W) or (H, W)"),
    ({"inputs": ["/etc/passwd"]}, 422,
     "inputs[0]: this model takes pixel arrays of shape (C, H, W) or (H, W) (or image files as "
     "multipart); got a string"),
    ({"inputs": [[[1e39] * 8] * 8]}, 422,
     "inputs[0][0][0]: pixel value 1e+39 is outside 0..255, the range of the uint8 pixels this "
     "model was trained on"),
    *[({"inputs": [IMAGE[0], [[[0] * 8] * 3 + [[0] * 5 + [value, 1, 2]] + [[0] * 8] * 4]]}, 422,
       f"inputs[1][0][3][5]: a pixel must be a JSON number; got {kind}")
      for value, kind in [("12", "a string"), (None, "null"), ({"v": 1}, "an object")]],
    ({"inputs": [[[True] * 8] * 8]}, 422, "inputs[0][0][0]: a pixel must be a JSON number; got "
                                         "true (booleans are not numbers)"),
    # a boolean among numbers: numpy read true as 1, and the image was predicted
    *[({"inputs": [IMAGE[0], [[[0] * 8] * 3 + [[0] * 5 + [value, 1, 2]] + [[0] * 8] * 4]]}, 422,
       f"inputs[1][0][3][5]: a pixel must be a JSON number; got {shown} (booleans are not numbers)")
      for value, shown in [(True, "true"), (False, "false")]],
    ({"inputs": [[[0.5] * 7 + [False]] * 8]}, 422,
     "inputs[0][0][7]: a pixel must be a JSON number; got false (booleans are not numbers)"),
    ({"inputs": []}, 422, "inputs: empty; send at least one input"),
    ({"images": []}, 422, "inputs: Field required\nimages: Extra inputs are not permitted"),
    *[({"inputs": IMAGE, "top_k": value}, 422, f"top_k: must be a JSON integer of at least 1 (got "
       f"{shown}); give a whole number such as 3, or leave it out for the query's top_k (default 5)")
      for value, shown in [(0, "0"), ("2", '"2"'), (True, "true"), (2.5, "2.5"), (2.0, "2.0"),
                           ({"k": 2}, "an object"), ("9" * 50, '"' + "9" * 36 + "...")]],
    ({"inputs": {"b64": "AA==", "dtype": "uint8", "shape": [1, 1, 1]}, "top_k": "2"}, 422,
     "top_k: must be a JSON integer of at least 1 (got \"2\"); give a whole number such as 3, or "
     "leave it out for the query's top_k (default 5)"),
    ({"images": [], "top_k": False}, 422, "inputs: Field required\ntop_k: must be a JSON integer "
     "of at least 1 (got false); give a whole number such as 3, or leave it out for the query's "
     "top_k (default 5)\nimages: Extra inputs are not permitted"),
])
def test_bad_json_inputs(client, body, status, message):
    assert detail(client.post(PREDICT, json=body)) == (status, message)


@pytest.mark.parametrize(("body", "kind"), [(b"[1, 2]", "an array"), (b'"x"', "a string"),
                                           (b"3", "a number"), (b"null", "null")])
def test_a_body_that_is_not_an_object_says_so(client, body, kind):
    # was pydantic's "body: Input should be a valid dictionary or instance of PredictRequest"
    assert detail(client.post(PREDICT, content=body, headers={"content-type": "application/json"})) \
        == (422, f'body: must be a JSON object such as {{"inputs": [...]}} (got {kind})')


def test_empty_body_and_not_json(client):
    assert detail(client.post(PREDICT, content=b"")) == (
        422, 'body: empty; send JSON {"inputs": [...]} or image files as multipart "files"')
    assert detail(client.post(PREDICT, content=b"{'inputs'")) == (
        422, "body: not valid JSON (Expecting property name enclosed in double quotes: "
             "line 1 column 2 (char 1))")
    assert detail(client.post(PREDICT, content=b'{"inputs": [NaN]}')) == (
        422, "body: not valid JSON (NaN is not valid JSON)")
    assert detail(client.post(PREDICT, content=b'{"inputs": [[[1' + b"0" * 400 + b"]]]}")) == (
        422, "body: not valid JSON (the number 100000000000... is too large)")
    assert detail(client.post(PREDICT, content=b'{"inputs": [[[1e999]]]}')) == (
        422, "body: not valid JSON (the number 1e999 is too large)")


def test_not_an_image_file(client):
    response = client.post(PREDICT, files=[("files", ("a.png", b"not a png", "image/png"))])
    assert detail(response) == (
        422, "files[0] (a.png): not a readable image file; send PNG, JPEG or BMP files")


def test_image_file_of_the_wrong_size(client):
    from test_serve_predict import png

    files = [("files", ("big.png", png(image_pixels(1)[0, :, :, :4].repeat(4, axis=1)), "image/png"))]
    assert detail(client.post(PREDICT, files=files)) == (
        422, "input: image bytes is 4x32 pixels; the model takes 8x8 images")


def test_files_for_a_text_model_and_texts_of_the_wrong_kind(client):
    files = [("files", ("a.png", b"x", "image/png"))]
    assert detail(client.post("/v1/models/topics/predict", files=files)) == (
        422, 'files: this model takes text inputs, not image files; send JSON {"inputs": [...]}')
    assert detail(client.post("/v1/models/topics/predict", json={"inputs": ["ok", 3]})) == (
        422, "inputs[1]: this model takes strings (the texts); got a number")


def test_table_rows_of_the_wrong_kind(client):
    url = "/v1/models/churn/predict"
    assert detail(client.post(url, json={"inputs": [[1, 2]]})) == (
        422, "inputs[0]: a row array needs 3 values in the order a, b, color; got 2 values")
    assert detail(client.post(url, json={"inputs": [{"a": [1]}]})) == (
        422, "inputs[0].a: a cell must be a number, string, boolean or null; got an array")
    assert detail(client.post(url, json={"inputs": ["a row"]})) == (
        422, "inputs[0]: table models take rows as objects (column -> value) or arrays; got a string")


def test_table_numbers_beyond_float32_are_422_not_a_null_prediction(client):
    url = "/v1/models/churn/predict"
    assert detail(client.post(url, json={"inputs": [[0.5, 1e39, "red"]]})) == (
        422, "column 'b': value 1e+39 (row 0) is not a finite number within float32's range (about "
             "3.4e38) after the training's scaling (1 such value(s)); send finite values of the size "
             "the model was trained on")


def test_a_number_as_a_json_string_is_read_as_the_number_as_in_a_csv(client, store, tmp_path,
                                                                    capsys):
    # deliberate: `dlforge predict` reads the CSV cell "1.5" (quoted or not) as the number 1.5,
    # so the server reads the JSON string "1.5" the same way; text that is no number is refused
    from dlforge.cli import main

    url = "/v1/models/churn/predict"
    (tmp_path / "rows.csv").write_text('a,b,color\n"1.5",2,red\n')
    assert main(["-w", str(store.artifacts_dir.parent), "predict", "churn",
                 str(tmp_path / "rows.csv"), "-f", "json", "-q"]) == 0
    score = json.loads(capsys.readouterr().out)[0]["score"]
    for row in ({"a": "1.5", "b": 2, "color": "red"}, {"a": 1.5, "b": "2", "color": "red"}):
        assert client.post(url, json={"inputs": [row]}).json()["predictions"][0]["score"] == \
            pytest.approx(score, abs=1e-6)
    assert detail(client.post(url, json={"inputs": [{"a": "1,5", "b": 2, "color": "red"}]})) == (
        422, "column 'a': expected numbers, got '1,5' (1 non-numeric value(s))")


def test_a_json_boolean_in_a_numeric_column_is_422_naming_column_and_row(client):
    url = "/v1/models/churn/predict"
    message = ("column 'a': expected numbers, got true (row 1; 1 boolean value(s)); only a column "
               "that was boolean in training takes true/false: send a number")
    rows = {"inputs": [{"a": 0.5, "b": 1, "color": "red"}, {"a": True, "b": 2, "color": "red"}]}
    assert detail(client.post(url, json=rows)) == (422, message)
    arrays = {"inputs": [[0.5, 1, "red"], [True, 2, "red"]]}
    assert detail(client.post(url, json=arrays)) == (422, message)


def test_too_many_items(make_client):
    client = make_client(max_items=2)
    assert detail(client.post(PREDICT, json={"inputs": IMAGE * 3})) == (
        422, "inputs: 3 items; at most 2 per request (dlforge serve --max-items); split the request")


def test_multipart_bodies_starlette_cannot_parse_get_the_project_s_422(make_client):
    # were Starlette's 400 "Missing boundary in multipart." / "Too many files. Maximum ..."
    client = make_client(max_items=2)
    bare = client.post(PREDICT, content=b"x", headers={"content-type": "multipart/form-data"})
    assert detail(bare) == (
        422, 'body: multipart/form-data without a boundary; let the HTTP client build the '
             'multipart body (curl -F "files=@image.png") instead of setting the Content-Type '
             'header by hand')
    files = [("files", (f"{i}.png", b"x", "image/png")) for i in range(4)]
    assert detail(client.post(PREDICT, files=files)) == (
        422, "files: more than 2 items; at most 2 per request (dlforge serve --max-items); "
             "split the request")
    # an empty boundary was "not a valid multipart body (Invalid multipart data)"
    empty = client.post(PREDICT, content=b"--x\r\n",
                        headers={"content-type": "multipart/form-data; boundary="})
    assert detail(empty) == detail(bare)
    # text fields were called too many files
    fields = {f"note{i}": "x" for i in range(4)}
    assert detail(client.post(PREDICT, data=fields, files=files[:1])) == (
        422, "body: more than 2 text fields in the multipart body; send only image files under "
             "'files'")


def test_body_over_the_limit_is_413(make_client):
    client = make_client(max_body_mb=0.001)  # 1048 bytes
    big = {"inputs": [[[255] * 8] * 8] * 4}
    assert detail(client.post(PREDICT, json=big)) == (
        413, "body: larger than the limit of 1048 bytes (serve.max_body_mb); "
             "send fewer or smaller inputs per request")

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"inputs": ['
        for _ in range(200):
            yield b"0, 0, 0, 0, 0, 0, "
        yield b"0]}"
    assert client.post(PREDICT, content=chunks()).status_code == 413


def test_unknown_model_version_and_alias(client):
    assert detail(client.post("/v1/models/nope/predict", json={"inputs": IMAGE})) == (
        404, "No model named 'nope'. Available models: churn, digits, topics. "
             "Use `dlforge models list` to see all.")
    assert detail(client.post("/v1/models/digits@9/predict", json={"inputs": IMAGE})) == (
        404, "Model 'digits' has no version 9. Available versions: 1, 2. "
             "Use `dlforge models show digits` to see all.")
    assert detail(client.post("/v1/models/digits@canary/predict", json={"inputs": IMAGE})) == (
        404, "Model 'digits' has no alias 'canary'. Available aliases: production. "
             "Use `dlforge models show digits` to see all.")
    assert client.get("/v1/models/nope").status_code == 404
    status, message = detail(client.post("/v1/models/Bad Name!/predict", json={"inputs": IMAGE}))
    assert status == 422 and message.startswith("model name: must match")


def test_store_failure_is_503_and_a_bug_is_a_generic_500(client, monkeypatch, store):
    def broken():
        raise StoreError("store: sqlite:///x: database is locked")

    monkeypatch.setattr(store, "list_models", broken)
    assert detail(client.get("/v1/models")) == (503, "store: sqlite:///x: database is locked")
    assert detail(client.get("/readyz")) == (503, "store: sqlite:///x: database is locked")

    def bug(*_):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store, "list_versions", bug)
    with TestClient(client.app, raise_server_exceptions=False) as quiet:
        assert detail(quiet.get("/v1/models/digits")) == (
            500, "internal error; the server log has the details")


@pytest.mark.parametrize(("number", "shown"), [(b"1" + b"0" * 150, "1e+150"),
                                               (b"1" + b"0" * 250, "1e+250"),
                                               (b"1e+99", "1e+99"), (b"1e+100", "1e+100")])
def test_numbers_too_large_for_float32_are_refused_on_the_fast_and_the_checked_parse(client, number,
                                                                                      shown):
    # 150 digits and 2-digit exponents take the plain parse, the others the number-by-number one
    row = b"[" + b",".join([b"0"] * 7 + [number]) + b"]"
    body = b'{"inputs": [[' + b",".join([row] * 8) + b"]]}"
    response = client.post(PREDICT, content=body, headers={"content-type": "application/json"})
    assert detail(response) == (422, f"inputs[0][0][7]: pixel value {shown} is outside 0..255, the "
                                     "range of the uint8 pixels this model was trained on")


@pytest.mark.parametrize("body", [b'{"inputs": [[1, 2.5, -3e2, 0.1]], "top_k": null}',
                                  b'[12345678901234567890123, 1e300]',
                                  b'[-9999999999999999999, -9223372036854775809, 999999999999999999]',
                                  '{"a": "\u00e9"}'.encode("utf-16")])
def test_json_bodies_parse_exactly_as_the_json_module_reads_them(body):
    parsed = _parse_json(body)
    assert parsed == json.loads(body) and repr(parsed) == repr(json.loads(body))


def test_a_gan_reached_by_name_is_a_422_naming_it(tmp_path, monkeypatch):
    """`serve --model GAN` refuses at startup; one reached by name while running gets the
    model-kind check's ConfigError, which the server maps to 422 like a bad input."""
    from tests.unit.export.export_models import register

    from dlforge.config.schema import DCGANConfig, ServeConfig
    from dlforge.registry import Store
    from dlforge.serve import create_app

    monkeypatch.delenv("DLFORGE_SERVE_TOKEN", raising=False)
    register(tmp_path, "gan", DCGANConfig(width=4, latent_dim=4))
    with Store.open(tmp_path) as store, TestClient(create_app(store, ServeConfig())) as client:
        response = client.post("/v1/models/gan/predict", json={"inputs": IMAGE})
    assert detail(response) == (422, "model: gan@1 is a GAN (model.type dcgan): it generates "
                                     "images (`dlforge generate`) and predicts nothing")
