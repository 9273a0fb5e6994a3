"""A bundle is checked before it costs memory: weights against the architecture, JSON size and
depth, and the store's bundle_path inside the artifacts folder."""

from __future__ import annotations

import json

import pytest
import torch
from registry_models import table_bundle
from safetensors.torch import load_file, save_file
from sqlalchemy import text

import dlforge.models
from dlforge.data.dataset import TaskSpec
from dlforge.errors import DataError, StoreError
from dlforge.registry import Store, bundle_checks
from dlforge.registry.bundle import load_bundle

BINARY = TaskSpec("binary", ("ok", "defect"))


@pytest.fixture
def bundle(tmp_path):
    return table_bundle(tmp_path / "b", BINARY)[0]


@pytest.fixture
def devices(monkeypatch):
    """The default device of every build_model call; building anywhere but on `meta` with a
    model.json under test would allocate its parameters, so that fails at once."""
    seen: list[str] = []
    original = dlforge.models.build_model

    def spy(*args, **kwargs):
        seen.append(torch.get_default_device().type)
        if seen[-1] != "meta" and seen.count("meta") == 0:
            raise AssertionError("built for real before the weights were checked")
        return original(*args, **kwargs)

    monkeypatch.setattr(dlforge.models, "build_model", spy)
    return seen


def edit_json(path, name, change):
    doc = json.loads((path / name).read_text())
    change(doc)
    (path / name).write_text(json.dumps(doc))


def test_a_huge_architecture_is_refused_from_the_weights_header(bundle, devices):
    edit_json(bundle, "model.json", lambda d: d["config"].update(hidden=[200000, 200000]))
    with pytest.raises(DataError) as info:
        load_bundle(bundle)
    assert str(info.value) == (
        f"bundle: {bundle / 'weights.safetensors'} does not match the architecture in model.json "
        "(tensor 'body.1.weight': (8, 5) in the file, (200000, 5) in the architecture); "
        "re-register the model")
    assert devices == ["meta"]


def test_a_bundle_that_fits_is_checked_on_meta_then_built(bundle, devices):
    assert load_bundle(bundle).model.head.weight.shape == (1, 8)
    assert devices == ["meta", "cpu"]


@pytest.mark.parametrize(("change", "what"), [
    (lambda w: w.pop("head.bias"), "tensor 'head.bias': missing from the file, (1,) in the architecture"),
    (lambda w: w.update(extra=torch.zeros(2)), "tensor 'extra': (2,) in the file, not in the architecture"),
])
def test_the_first_tensor_that_differs_is_named(bundle, change, what):
    file = bundle / "weights.safetensors"
    weights = load_file(str(file))
    change(weights)
    save_file(weights, str(file))
    with pytest.raises(DataError) as info:
        load_bundle(bundle)
    assert str(info.value) == (f"bundle: {file} does not match the architecture in model.json "
                               f"({what}); re-register the model")


@pytest.mark.parametrize(("task", "names", "message"), [
    (BINARY, ["ok"], "names 1 classes but a binary model with 1 output(s) in model.json needs 2"),
    (TaskSpec("multiclass", ("a", "b", "c")), ["a", "b"],
     "names 2 classes but a multiclass model with 3 output(s) in model.json needs 3"),
    (TaskSpec("multiclass", ("a", "b", "c")), ["a", "b", "c", "d"],
     "names 4 classes but a multiclass model with 3 output(s) in model.json needs 3"),
])
def test_class_names_that_do_not_match_the_outputs_are_refused(tmp_path, task, names, message):
    path = table_bundle(tmp_path / "b", task)[0]
    assert load_bundle(path).task == task
    edit_json(path, "task.json", lambda doc: doc.update(class_names=names))
    with pytest.raises(DataError) as info:
        load_bundle(path)
    assert str(info.value) == f"bundle: {path / 'task.json'} {message}; re-register the model"


@pytest.mark.parametrize(("doc", "detail"), [
    ({}, "preprocessor.kind: must be one of image, table, text (got None)"),
    ({"kind": "table"}, "'config'"),
])
def test_a_broken_preprocess_json_names_the_file_and_the_fix(bundle, doc, detail):
    (bundle / "preprocess.json").write_text(json.dumps(doc))
    with pytest.raises(DataError) as info:
        load_bundle(bundle)
    assert str(info.value) == (f"bundle: {bundle / 'preprocess.json'} is incomplete or corrupt "
                               f"({detail}); re-register the model")


def test_json_nested_deeper_than_the_limit_is_refused(bundle):
    file = bundle / "metrics.json"
    message = (f"bundle: {file} nests deeper than 64 levels, the most a bundle JSON file may; "
               "re-register the model")
    for depth in (100_000, 65):  # beyond the parser's recursion limit; parsed, then refused
        file.write_text("[" * depth + "]" * depth)
        with pytest.raises(DataError) as info:
            load_bundle(bundle)
        assert str(info.value) == message
    file.write_text(json.dumps({"f1": 0.5, "deep": "[" * 63 + "]" * 63}))
    assert load_bundle(bundle).metrics["f1"] == 0.5
    nested: list = []
    for _ in range(62):
        nested = [nested]
    file.write_text('{"deep": ' + "[" * 63 + "]" * 63 + "}")  # 64 levels load (an object: 1)
    assert load_bundle(bundle).metrics == {"deep": nested}


def test_json_larger_than_the_limit_is_refused(bundle, monkeypatch):
    monkeypatch.setattr(bundle_checks, "MAX_JSON_BYTES", 1000)
    file = bundle / "meta.json"
    file.write_text(json.dumps({"run_id": "r1", "note": "x" * 1000}))
    with pytest.raises(DataError) as info:
        load_bundle(bundle)
    assert str(info.value) == (f"bundle: {file} is over 1000 bytes, the most a bundle JSON file "
                               "may hold; re-register the model")


@pytest.mark.parametrize("stored", ["../../outside", "/etc", "models/t/../../../x"])
def test_a_bundle_path_outside_the_artifacts_folder_is_refused(tmp_path, bundle, stored):
    with Store.open(tmp_path / "ws") as store:
        store.register("t", None, bundle, {})
        with store._engine.begin() as conn:
            conn.execute(text("UPDATE model_versions SET bundle_path = :p"), {"p": stored})
        with pytest.raises(StoreError) as info:
            store.resolve("t")
    assert str(info.value) == (
        f"t@1: the store's bundle_path {stored!r} leaves the artifacts folder "
        f"{tmp_path / 'ws' / 'artifacts'} (absolute or with '..'); re-register the model")
