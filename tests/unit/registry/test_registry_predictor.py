"""The predictor: raw inputs of each modality in, task-shaped predictions out."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from registry_models import TEXTS, image_bundle, image_x, table_bundle, table_x, text_bundle

from dlforge.config.schema import LinearConfig
from dlforge.data.dataset import TaskSpec
from dlforge.errors import DataError, NotFoundError
from dlforge.models.scores import predict_scores
from dlforge.registry import Predictor, Store, load, load_bundle


def predictor(path) -> Predictor:
    return Predictor(load_bundle(path))


def set_linear(model: torch.nn.Module, weight: list[list[float]], bias: list[float]) -> None:
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor(weight))
        model.head.bias.copy_(torch.tensor(bias))


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img[0]).save(buf, format="PNG")
    return buf.getvalue()


def test_image_arrays_files_and_bytes_give_the_same_scores(tmp_path):
    path, model, pre = image_bundle(tmp_path / "b")
    x = image_x(4, seed=3)
    files = []
    for i, img in enumerate(x):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(png_bytes(img))
    p = predictor(path)
    expected = predict_scores(model, torch.from_numpy(pre.transform(x)), p.task)
    np.testing.assert_array_equal(p.predict_scores(x), expected)
    np.testing.assert_array_equal(p.predict_scores(x[:, 0]), expected)  # (N, H, W)
    np.testing.assert_array_equal(p.predict_scores(files), expected)
    np.testing.assert_array_equal(p.predict_scores([f.read_bytes() for f in files]), expected)
    # one sample is a batch of 1: oneDNN may sum in another order than for 3 (1e-8 apart here)
    np.testing.assert_allclose(p.predict_scores(str(files[0])), expected[:1], rtol=1e-6, atol=1e-7)


def test_multiclass_rows_are_label_and_top_k_scores(tmp_path):
    path, _, _ = image_bundle(tmp_path / "b")
    p = predictor(path)
    x = image_x(3, seed=4)
    scores = p.predict_scores(x)
    rows = p.predict(x, top_k=2)
    names = ["zero", "one", "two"]
    for row, s in zip(rows, scores, strict=True):
        order = np.argsort(-s)
        assert row == {"label": names[order[0]],
                       "scores": {names[order[0]]: float(s[order[0]]),
                                  names[order[1]]: float(s[order[1]])}}
        assert list(row["scores"]) == [names[order[0]], names[order[1]]]
    assert len(p.predict(x)[0]["scores"]) == 3


@pytest.mark.parametrize(("top_k", "shown"), [(0, "0"), (-3, "-3"), (True, "True"), (2.5, "2.5"),
                                              ("2", "'2'"), (2.0, "2.0"), ("9" * 50, "'" + "9" * 36 + "...")])
def test_top_k_is_none_or_an_integer_of_at_least_1(tmp_path, top_k, shown):
    p = predictor(image_bundle(tmp_path / "b")[0])
    x = image_x(2, seed=4)
    with pytest.raises(DataError) as info:
        p.predict(x, top_k=top_k)
    assert str(info.value) == (f"top_k: must be an integer of at least 1, or None for every "
                               f"class (got {shown})")
    assert [len(r["scores"]) for r in p.predict(x, top_k=np.int64(2))] == [2, 2]
    assert [len(r["scores"]) for r in p.predict(x, top_k=7)] == [3, 3]  # 3 classes


def test_wrong_image_shape_names_the_expected_shape(tmp_path):
    path, _, _ = image_bundle(tmp_path / "b")
    with pytest.raises(DataError) as info:
        predictor(path).predict(np.zeros((2, 3, 8, 8), dtype=np.uint8))
    assert str(info.value) == ("input: expected images of shape (N, 1, 8, 8) or (N, 8, 8), "
                               "image file paths or bytes; got an array of shape (2, 3, 8, 8)")


def test_a_list_of_images_of_several_shapes_is_a_data_error(tmp_path):
    path, _, _ = image_bundle(tmp_path / "b")
    images = [np.zeros((8, 8), np.uint8), np.zeros((1, 8, 8), np.uint8), np.zeros((8, 8), np.uint8)]
    with pytest.raises(DataError) as info:
        predictor(path).predict(images)
    assert str(info.value) == ("input: images of 2 shapes ((1, 8, 8), (8, 8)) in one list; give "
                               "images of one shape")


def test_unreadable_image_file_is_a_data_error(tmp_path):
    path, _, _ = image_bundle(tmp_path / "b")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"bad\.png: cannot read image"):
        predictor(path).predict([bad])


def exact_binary_bundle(tmp_path, threshold):
    """A linear model on raw (unscaled) features a and b: logit = a - b."""
    from dlforge.config.schema import TablePreprocess
    from dlforge.data.preprocess import TablePreprocessor
    from dlforge.models import build_model
    from dlforge.registry.bundle import save_bundle

    train = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [0.0, 1.0, 2.0]})
    pre = TablePreprocessor(TablePreprocess(scaling="none")).fit(train)
    task = TaskSpec("binary", ("ok", "defect"))
    model = build_model(LinearConfig(), input_shape=(2,), num_outputs=1)
    set_linear(model, [[1.0, -1.0]], [0.0])
    return save_bundle(tmp_path / "b", model=model, model_config=LinearConfig(), input_shape=(2,),
                       num_outputs=1, vocab_size=None, preprocessor=pre, task=task,
                       threshold=threshold, metrics={}, extra={"input": {"columns": ["a", "b"]}})


def test_binary_rows_use_the_saved_threshold(tmp_path):
    p = predictor(exact_binary_bundle(tmp_path, threshold=0.4))
    rows = [{"a": 0.0, "b": 0.0}, {"a": 0.0, "b": 1.0}, {"a": 2.0, "b": 0.0}]
    sig = [0.5, float(torch.sigmoid(torch.tensor(-1.0))), float(torch.sigmoid(torch.tensor(2.0)))]
    assert p.predict(rows) == [
        {"label": "defect", "score": sig[0], "threshold": 0.4},
        {"label": "ok", "score": sig[1], "threshold": 0.4},
        {"label": "defect", "score": sig[2], "threshold": 0.4},
    ]
    assert p.predict({"a": 0.0, "b": 1.0}) == p.predict(rows[1:2])
    np.testing.assert_array_equal(p.predict_scores(np.array([[2.0, 0.0]])), np.float32([sig[2]]))
    np.testing.assert_array_equal(p.predict_scores(pd.DataFrame(rows)), np.float32(sig))


def test_binary_without_threshold_uses_one_half(tmp_path):
    p = predictor(exact_binary_bundle(tmp_path, threshold=None))
    assert p.predict([{"a": 0.0, "b": 0.1}]) == [
        {"label": "ok", "score": float(torch.sigmoid(torch.tensor(-0.1))), "threshold": 0.5}]


def test_table_array_of_wrong_width_names_the_columns(tmp_path):
    p = predictor(exact_binary_bundle(tmp_path, threshold=None))
    with pytest.raises(DataError) as info:
        p.predict(np.zeros((2, 3)))
    assert str(info.value) == ("input: expected table rows as a DataFrame, a list of row objects "
                               "or an array (N, 2) in the column order a, b; got ndarray of "
                               "shape (2, 3)")


def test_multilabel_rows(tmp_path):
    task = TaskSpec("multilabel", ("action", "comedy"))
    path, _, _ = text_bundle(tmp_path / "b", task, threshold=[0.2, 0.9])
    p = predictor(path)
    scores = p.predict_scores(["good film", "bad plot"])
    rows = p.predict(["good film", "bad plot"])
    for row, s in zip(rows, scores, strict=True):
        assert row == {"labels": [n for n, v, t in zip(task.class_names, s, (0.2, 0.9), strict=True) if v >= t],
                       "scores": {"action": float(s[0]), "comedy": float(s[1])},
                       "thresholds": {"action": 0.2, "comedy": 0.9}}


def test_text_inputs_single_string_and_dataframe_column(tmp_path):
    task = TaskSpec("multiclass", ("neg", "pos"))
    path, model, pre = text_bundle(tmp_path / "b", task)
    p = predictor(path)
    expected = predict_scores(model, torch.from_numpy(pre.transform(TEXTS[:3])), task)
    np.testing.assert_array_equal(p.predict_scores(TEXTS[:3]), expected)
    np.testing.assert_array_equal(p.predict_scores(np.array(TEXTS[:3], dtype=object)), expected)
    np.testing.assert_array_equal(p.predict_scores(pd.DataFrame({"review": TEXTS[:3]})), expected)
    np.testing.assert_array_equal(p.predict_scores(TEXTS[0]), expected[:1])
    assert (p.modality, p.text_column) == ("text", "review")
    with pytest.raises(DataError) as info:
        p.predict(pd.DataFrame({"body": ["x"]}))
    assert str(info.value) == "input: the table has no text column 'review'; columns are body"


def test_regression_rows_are_values(tmp_path):
    task = TaskSpec("regression", ("price",))
    path, model, pre = table_bundle(tmp_path / "b", task, config=LinearConfig())
    p = predictor(path)
    x = table_x(3, seed=2)
    expected = predict_scores(model, torch.from_numpy(pre.transform(x)), task)
    assert expected.shape == (3,)
    assert p.predict(x) == [{"value": float(v)} for v in expected]


def test_load_resolves_refs_through_the_store(tmp_path):
    ws = tmp_path / "ws"
    store = Store.open(ws)
    first, model1, pre = image_bundle(tmp_path / "b1", seed=1)
    second, model2, _ = image_bundle(tmp_path / "b2", seed=2)
    store.register("digits", None, first, {})
    store.register("digits", None, second, {})
    store.set_alias("digits", "production", 1)
    x = image_x(5, seed=9)
    xt = torch.from_numpy(pre.transform(x))
    task = TaskSpec("multiclass", ("zero", "one", "two"))
    prod = load("digits@production", workspace=ws)
    assert (prod.version.version, prod.version.aliases) == (1, ("production",))
    np.testing.assert_array_equal(prod.predict_scores(x), predict_scores(model1, xt, task))
    np.testing.assert_array_equal(load("digits", workspace=ws).predict_scores(x),
                                  predict_scores(model2, xt, task))
    assert load("digits@2", workspace=ws).version.version == 2
    with pytest.raises(NotFoundError) as info:
        load("digits@3", workspace=ws)
    assert str(info.value) == ("Model 'digits' has no version 3. Available versions: 1, 2. "
                               "Use `dlforge models show digits` to see all.")


def test_load_uses_the_default_workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("DLFORGE_WORKSPACE", str(tmp_path / "env-ws"))
    store = Store.open(tmp_path / "env-ws")
    bundle, _, _ = image_bundle(tmp_path / "b")
    store.register("digits", None, bundle, {})
    assert load("digits").version.bundle_path == tmp_path / "env-ws" / "artifacts" / "models" / "digits" / "v1"


def test_an_empty_batch_gives_no_rows(tmp_path):
    image = predictor(image_bundle(tmp_path / "i")[0])
    assert image.predict([]) == []
    assert image.predict_scores(np.zeros((0, 1, 8, 8), dtype=np.uint8)).shape == (0, 3)
    binary = predictor(exact_binary_bundle(tmp_path, threshold=None))
    assert binary.predict(pd.DataFrame({"a": [], "b": []})) == []
    assert binary.predict_scores([]).shape == (0,)
