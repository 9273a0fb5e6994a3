"""Model bundles: the files, a lossless round trip, all-or-nothing writes, clear load errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from registry_models import image_bundle, image_x, table_bundle, table_x

from dlforge import __version__
from dlforge.config.schema import MLPConfig
from dlforge.data.dataset import TaskSpec
from dlforge.errors import ConfigError, DataError, NotFoundError
from dlforge.models.scores import predict_scores
from dlforge.registry.bundle import load_bundle

BINARY = TaskSpec("binary", ("ok", "defect"))
SRC = Path(__file__).resolve().parents[3] / "src" / "dlforge" / "registry"


def test_bundle_files_and_their_contents(tmp_path):
    path, _, pre = table_bundle(tmp_path / "b", BINARY, threshold=0.3)
    assert sorted(p.name for p in path.iterdir()) == [
        "meta.json", "metrics.json", "model.json", "preprocess.json", "task.json",
        "weights.safetensors"]
    model_json = json.loads((path / "model.json").read_text())
    assert model_json == {
        "config": MLPConfig(hidden=[8]).model_dump(mode="json"), "input_shape": [5],
        "num_outputs": 1, "vocab_size": None, "input_dtype": "float32", "scale_outputs": False,
        "input": {"modality": "table", "columns": ["a", "b", "color"]}}
    assert json.loads((path / "task.json").read_text()) == {
        "kind": "binary", "class_names": ["ok", "defect"], "threshold": 0.3}
    assert json.loads((path / "preprocess.json").read_text()) == pre.to_dict()
    assert json.loads((path / "metrics.json").read_text()) == {"f1": 0.5}
    meta = json.loads((path / "meta.json").read_text())
    assert {k: meta[k] for k in ("format", "dlforge_version", "run_id", "data_fingerprint")} == {
        "format": 1, "dlforge_version": __version__, "run_id": "r1", "data_fingerprint": "fp"}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", meta["created_at"])


def test_image_input_spec_follows_the_input_shape(tmp_path):
    path, _, _ = image_bundle(tmp_path / "b")
    spec = json.loads((path / "model.json").read_text())["input"]
    assert spec == {"modality": "image", "color": "grayscale", "size": [8, 8]}


def test_round_trip_gives_identical_scores(tmp_path):
    path, model, pre = table_bundle(tmp_path / "b", BINARY, threshold=0.3)
    bundle = load_bundle(path)
    x = torch.from_numpy(pre.transform(table_x(16, seed=1)))
    before = predict_scores(model, x, BINARY)
    after = predict_scores(bundle.model, torch.from_numpy(bundle.preprocessor.transform(
        table_x(16, seed=1))), bundle.task)
    np.testing.assert_array_equal(before, after)
    assert before.shape == (16,)
    assert (bundle.task, bundle.threshold, bundle.metrics) == (BINARY, 0.3, {"f1": 0.5})
    assert bundle.model.training is False
    assert bundle.model_config == MLPConfig(hidden=[8])
    assert bundle.input_shape == (5,)


def test_round_trip_keeps_every_weight_bit_for_bit(tmp_path):
    path, model, _ = image_bundle(tmp_path / "b")
    loaded = load_bundle(path).model.state_dict()
    original = model.state_dict()
    assert sorted(loaded) == sorted(original)
    for name, tensor in original.items():
        assert torch.equal(loaded[name], tensor), name


def test_a_failure_mid_write_leaves_nothing(tmp_path):
    dest = tmp_path / "bundles" / "b"
    with pytest.raises(TypeError, match="not JSON serializable"):
        # weights are written first; the unserialisable metric fails a later file
        table_bundle(dest, BINARY, extra={"input": {}, "note": object()})
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_an_existing_destination_is_refused(tmp_path):
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError) as info:
        table_bundle(tmp_path / "b", BINARY)
    assert str(info.value) == (f"bundle: {tmp_path / 'b'} already exists; "
                               "save the bundle to a new directory")


def test_missing_bundle_directory(tmp_path):
    with pytest.raises(NotFoundError) as info:
        load_bundle(tmp_path / "nope")
    assert str(info.value) == f"bundle: {tmp_path / 'nope'} does not exist or is not a directory"


@pytest.mark.parametrize("name", ["weights.safetensors", "model.json", "preprocess.json"])
def test_missing_file_is_named(tmp_path, name):
    path, _, _ = table_bundle(tmp_path / "b", BINARY)
    (path / name).unlink()
    with pytest.raises(NotFoundError) as info:
        load_bundle(path)
    assert str(info.value) == (f"bundle: {path / name} is missing; the bundle is incomplete, "
                               "re-register the model")


def test_corrupt_json_is_a_data_error_naming_the_file(tmp_path):
    path, _, _ = table_bundle(tmp_path / "b", BINARY)
    (path / "task.json").write_text("{not json")
    with pytest.raises(DataError) as info:
        load_bundle(path)
    assert str(info.value) == (f"bundle: {path / 'task.json'} is not valid JSON (Expecting "
                               "property name enclosed in double quotes: line 1 column 2 (char 1)); "
                               "re-register the model")


@pytest.mark.parametrize(("name", "text", "kind"), [
    ("meta.json", "[]", "an array"), ("meta.json", "null", "null"), ("metrics.json", "3", "a number"),
    ("task.json", '"binary"', "a string"), ("preprocess.json", "[]", "an array"),
    ("preprocess.json", "true", "a boolean"),
    ("model.json", "[1]", "an array")])
def test_a_json_file_that_is_not_an_object_is_refused_naming_it(tmp_path, name, text, kind):
    path, _, _ = table_bundle(tmp_path / "b", BINARY)
    (path / name).write_text(text)
    with pytest.raises(DataError) as info:
        load_bundle(path)
    assert str(info.value) == (f"bundle: {path / name} holds {kind}, not a JSON object; the file "
                               "is damaged, re-register the model")


def test_corrupt_weights_are_a_data_error(tmp_path):
    path, _, _ = table_bundle(tmp_path / "b", BINARY)
    (path / "weights.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(DataError, match=r"^bundle: .*weights\.safetensors is not a readable "
                                        r"safetensors file \(.*\); re-register the model$"):
        load_bundle(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path, _, _ = table_bundle(tmp_path / "b", BINARY)
    model_json = json.loads((path / "model.json").read_text())
    model_json["config"]["hidden"] = [9]
    (path / "model.json").write_text(json.dumps(model_json))
    with pytest.raises(DataError, match=r"^bundle: .*weights\.safetensors does not match the "
                                        r"architecture in model\.json \(tensor 'body\.1\.weight': "
                                        r"\(8, 5\) in the file, \(9, 5\) in the architecture\); "
                                        r"re-register the model$"):
        load_bundle(path)


def test_unknown_model_type_in_model_json(tmp_path):
    path, _, _ = table_bundle(tmp_path / "b", BINARY)
    model_json = json.loads((path / "model.json").read_text())
    model_json["config"]["type"] = "transformer"
    (path / "model.json").write_text(json.dumps(model_json))
    with pytest.raises(DataError, match=r"^bundle: .*model\.json or task\.json is incomplete or "
                                        r"corrupt \(.*\); re-register the model$"):
        load_bundle(path)


@pytest.mark.parametrize("failing_call", [1, 2])  # the meta-device check, the real build
def test_a_model_that_cannot_be_built_is_a_data_error(tmp_path, monkeypatch, failing_call):
    # the real build ran outside the try: its ConfigError reached the user as a config error
    import dlforge.models

    path, _, _ = table_bundle(tmp_path / "b", BINARY)
    real, calls = dlforge.models.build_model, []

    def build_model(*args, **kwargs):
        calls.append(1)
        if len(calls) == failing_call:
            raise ConfigError("model.hidden: too wide for this machine")
        return real(*args, **kwargs)

    monkeypatch.setattr(dlforge.models, "build_model", build_model)
    with pytest.raises(DataError) as err:
        load_bundle(path)
    assert str(err.value) == (f"bundle: {path / 'model.json'} describes a model that cannot be "
                              "built (model.hidden: too wide for this machine); re-register the "
                              "model")


def test_the_registry_never_unpickles():
    offenders = [p.name for p in SRC.glob("*.py")
                 if re.search(r"torch\.load\((?![^)]*weights_only=True)", p.read_text())
                 or re.search(r"\bpickle\b|\bjoblib\b", p.read_text())]
    assert offenders == []
    assert image_x(2).dtype == np.uint8  # the helper the other tests lean on


def test_a_regression_model_with_scaled_outputs_loads_back_identical(tmp_path):
    from registry_models import TablePreprocess, TablePreprocessor

    from dlforge.models import build_model
    from dlforge.models.target_scale import TargetScale, fit_target_scale
    from dlforge.registry.bundle import save_bundle

    pre = TablePreprocessor(TablePreprocess()).fit(table_x())
    model = build_model(MLPConfig(hidden=[4]), input_shape=pre.output_shape, num_outputs=1,
                        scale_outputs=True)
    fit_target_scale(model, torch.tensor([100.0, 300.0]))
    torch.nn.init.normal_(model.net.head.weight)
    path = save_bundle(tmp_path / "b", model=model, model_config=MLPConfig(hidden=[4]),
                       input_shape=pre.output_shape, num_outputs=1, vocab_size=None,
                       preprocessor=pre, task=TaskSpec("regression", ("y",)), threshold=None,
                       metrics={})
    assert json.loads((path / "model.json").read_text())["scale_outputs"] is True
    loaded = load_bundle(path).model
    assert isinstance(loaded, TargetScale)
    assert (loaded.mean.item(), loaded.std.item()) == (200.0, 100.0)
    x = torch.randn(4, *pre.output_shape)
    assert torch.equal(loaded(x), model.eval()(x))
