"""`dlforge predict` reads image pixel arrays from .json and .jsonl files as the server reads
them (registry/json_inputs.py, serve/arrays.py): the same predictions as the image files, the
same refusals, naming the file and the line."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from PIL import Image

from dlforge.cli import main
from dlforge.pipeline import run
from dlforge.registry import load


def images(n: int, seed: int) -> np.ndarray:
    """`n` 8x8 grayscale uint8 images, `(n, 8, 8)`."""
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8), dtype=np.uint8)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace with `img`, an MLP trained for 2 epochs on 60 synthetic 8x8 images of three
    classes (dark, mid, bright)."""
    ws = tmp_path_factory.mktemp("json-images")
    x = images(60, seed=0)
    y = np.arange(60) % 3
    x = (x // 3 + 85 * y[:, None, None]).astype(np.uint8)
    np.savez(ws / "train.npz", x_train=x[:, None], y_train=y)
    run({"name": "img", "seed": 0, "data": {"source": "npz", "path": str(ws / "train.npz")},
         "model": {"type": "mlp", "hidden": [8]},
         "train": {"epochs": 2, "batch_size": 16, "num_threads": 1}},
        workspace=ws, progress=False)
    return ws


def predict(ws, *args) -> int:
    return main(["-w", str(ws), "predict", "img", "-f", "jsonl", *map(str, args)])


def outputs(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def without_ids(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "input"} for r in records]


def test_json_pixel_arrays_predict_as_the_image_files_do(ws, tmp_path, capsys):
    x = images(5, seed=1)
    for i, image in enumerate(x):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    (tmp_path / "array.json").write_text(json.dumps(x.tolist()))  # (H, W) items
    (tmp_path / "body.json").write_text(json.dumps({"inputs": x[:, None].tolist(), "top_k": 2}))
    (tmp_path / "lines.jsonl").write_text("".join(json.dumps(i) + "\n" for i in x[:, None].tolist()))
    encoded = {"b64": base64.b64encode(x.tobytes()).decode(), "dtype": "uint8", "shape": [5, 8, 8]}
    (tmp_path / "b64.json").write_text(json.dumps({"inputs": encoded}))
    assert predict(ws, *(tmp_path / f"{i}.png" for i in range(5)), "--top-k", 2) == 0
    files = outputs(capsys)
    expected = load("img", workspace=ws).predict(x, top_k=2)
    assert without_ids(files) == expected and len(expected[0]["scores"]) == 2
    for name in ("array.json", "body.json", "lines.jsonl", "b64.json"):
        assert predict(ws, tmp_path / name, "--top-k", 2) == 0, name
        records = outputs(capsys)
        assert [r["input"] for r in records] == [f"row[{i}]" for i in range(5)]
        assert without_ids(records) == expected, name


def test_images_of_both_layouts_in_one_file_predict_one_by_one(ws, tmp_path, capsys):
    x = images(2, seed=2)
    lines = [json.dumps(x[0].tolist()), json.dumps(x[1][None].tolist())]  # (H, W), then (1, H, W)
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    assert predict(ws, tmp_path / "mixed.jsonl") == 0
    predictor = load("img", workspace=ws)
    assert without_ids(outputs(capsys)) == [*predictor.predict(x[:1], top_k=3),
                                             *predictor.predict(x[1:], top_k=3)]


GOOD = json.dumps(images(1, seed=3)[0].tolist())


@pytest.mark.parametrize(("name", "content", "message"), [
    ("a.jsonl", f"{GOOD}\n" + json.dumps([[0] * 7 + [256]] * 8),
     "input: '{tmp}/a.jsonl' line 2: row[1][0][7]: pixel value 256 is outside 0..255, the range "
     "of the uint8 pixels this model was trained on"),
    ("a.jsonl", f'{GOOD}\n\n"/etc/passwd"',
     "input: '{tmp}/a.jsonl' line 3: row[1]: this model takes pixel arrays of shape (C, H, W) or "
     "(H, W); got a string"),
    ("a.jsonl", "[[1, 2], [3]]", "input: '{tmp}/a.jsonl' line 1: row[0]: images must be arrays "
                                 "of numbers, all of one shape (C, H, W) or (H, W)"),
    ("a.jsonl", f"{GOOD}\n" + json.dumps([[0, 1, "12"]] + [[0] * 8] * 7),
     "input: '{tmp}/a.jsonl' line 2: row[1][0][2]: a pixel must be a JSON number; got a string"),
    ("a.json", json.dumps({"inputs": [[[[False] * 8] * 8]]}),
     "input: '{tmp}/a.json': row[0][0][0][0]: a pixel must be a JSON number; got false "
     "(booleans are not numbers)"),
    ("a.jsonl", f"{GOOD}\n" + json.dumps([[0, 1, True]] + [[0] * 8] * 7),  # read as 1 before
     "input: '{tmp}/a.jsonl' line 2: row[1][0][2]: a pixel must be a JSON number; got true "
     "(booleans are not numbers)"),
    ("a.jsonl", "[[1, NaN]]", "input: '{tmp}/a.jsonl' line 1: not valid JSON (NaN is not valid JSON)"),
    ("a.json", f"[{GOOD}, {GOOD}, {json.dumps([[0] * 7] * 7)}]",
     "input: '{tmp}/a.json': row[2]: expected images of shape (N, 1, 8, 8) or (N, 8, 8), image file "
     "paths or bytes; got an array of shape (1, 7, 7)"),
    ("a.json", json.dumps({"inputs": {"b64": "AAE=", "dtype": "uint8", "shape": [1, 8, 8]}}),
     "input: '{tmp}/a.json': inputs.b64: 2 bytes; shape [1, 8, 8] of uint8 needs 64"),
    ("a.json", json.dumps({"inputs": {"b64": "AAE=", "dtype": "int8", "shape": [1, 8, 8]}}),
     "input: '{tmp}/a.json': inputs.dtype: Input should be 'uint8' or 'float32'"),
    ("a.json", json.dumps({"inputs": [json.loads(GOOD)], "top_k": "2"}),
     "input: '{tmp}/a.json': top_k: must be a JSON integer of at least 1 (got \"2\"); give a "
     "whole number such as 3, or leave it out for --top-k"),
])
def test_refused_as_the_server_refuses_them_naming_file_and_line(ws, tmp_path, capsys, name,
                                                                  content, message):
    (tmp_path / name).write_text(content)
    assert predict(ws, tmp_path / name, "-o", tmp_path / "out.jsonl") == 1
    assert capsys.readouterr().err == "error: " + message.format(tmp=tmp_path) + "\n"
    assert not (tmp_path / "out.jsonl").exists()


SMALL = json.dumps([[0] * 7] * 8)
SHAPE = ("expected images of shape (N, 1, 8, 8) or (N, 8, 8), image file paths or bytes; got an "
         "array of shape (1, 8, 7)")


@pytest.mark.parametrize(("name", "content", "where"), [
    ("a.json", f"[{GOOD}, {GOOD}, {GOOD}, {SMALL}, {GOOD}]", "row[3]"),
    ("a.jsonl", f"{GOOD}\n\n{GOOD}\n{GOOD}\n{SMALL}\n", "line 5: row[3]"),
])
def test_a_wrong_shape_names_the_row_in_a_later_batch(ws, tmp_path, capsys, name, content, where):
    (tmp_path / name).write_text(content)
    assert predict(ws, tmp_path / name, "-b", 2) == 1
    sep = " " if where.startswith("line") else ": "
    assert capsys.readouterr().err == f"error: input: '{tmp_path / name}'{sep}{where}: {SHAPE}\n"


def test_skip_bad_records_a_refused_image_in_its_place(ws, tmp_path, capsys):
    (tmp_path / "a.jsonl").write_text(f"{GOOD}\n{json.dumps([[0] * 8] * 7)}\n{GOOD}\n")
    assert predict(ws, tmp_path / "a.jsonl", "--skip-bad") == 0
    records = outputs(capsys)
    assert [r.get("error") for r in records] == [
        None, f"{tmp_path / 'a.jsonl'} line 2: row[1]: expected images of shape (N, 1, 8, 8) or (N, 8, 8), "
              "image file paths or bytes; got an array of shape (1, 7, 8)", None]


def test_image_files_and_json_are_not_mixed(ws, tmp_path, capsys):
    Image.fromarray(images(1, seed=4)[0]).save(tmp_path / "a.png")
    (tmp_path / "b.json").write_text(f"[{GOOD}]")
    assert predict(ws, tmp_path / "a.png", tmp_path / "b.json") == 1
    assert capsys.readouterr().err == (
        f"error: input: {tmp_path / 'a.png'}, {tmp_path / 'b.json'} mix JSON and other files; "
        "give image files or folders or JSON/JSONL files in one call, not both\n")


def test_a_file_that_is_neither_an_image_nor_json_names_both_kinds(ws, tmp_path, capsys):
    (tmp_path / "a.txt").write_text(GOOD)
    assert predict(ws, tmp_path / "a.txt") == 1
    assert capsys.readouterr().err == (
        f"error: input: '{tmp_path / 'a.txt'}' is not an image file (.bmp, .jpeg, .jpg, .png, .tif, .tiff), a "
        "folder of them, or a .json/.jsonl file of pixel arrays\n")


def test_tiff_files_predict_as_the_png_files_do(ws, tmp_path, capsys):
    # .tif/.tiff were "not an image file", and a folder of them held no images
    x = images(2, seed=3)
    Image.fromarray(x[0]).save(tmp_path / "0.png")
    Image.fromarray(x[1]).save(tmp_path / "1.png")
    assert predict(ws, tmp_path / "0.png", tmp_path / "1.png") == 0
    expected = without_ids(outputs(capsys))
    (tmp_path / "scans").mkdir()
    Image.fromarray(x[0]).save(tmp_path / "scans" / "0.tif")
    Image.fromarray(x[1]).save(tmp_path / "scans" / "1.TIFF")
    assert predict(ws, tmp_path / "scans") == 0
    assert without_ids(outputs(capsys)) == expected
