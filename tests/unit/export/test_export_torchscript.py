"""TorchScript export and the export directory: files, manifest, warnings, --force, int8."""

from __future__ import annotations

import json

import pytest
import torch
from export_models import register

from dlforge.config.schema import AutoencoderConfig, BasicCNNConfig, MLPConfig
from dlforge.errors import ConfigError, DataError
from dlforge.export import export_model
from dlforge.export.exporter import sha256_file
from dlforge.export.quantize import Quantized
from dlforge.registry import load

# Loading TorchScript apart from dlforge, as a user would; torch marks torch.jit as deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

GONE = {"data": {"source": "csv", "path": "/gone/data.csv"}, "seed": 0}


def test_moved_data_skips_the_accuracy_check_with_a_warning_and_the_file_loads_back(tmp_path):
    ws = register(tmp_path / "ws", "moved", MLPConfig(hidden=[5]), run_config=GONE)
    result = export_model("moved@1", fmt="torchscript", workspace=ws)
    run_id = load("moved", workspace=ws).version.run_id
    assert result.warnings == [f"accuracy check skipped: the data of run {run_id} could not be "
                               "loaded (data.path: '/gone/data.csv' does not exist; give an "
                               "existing CSV file)"]
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["format"] == "torchscript" and manifest["opset"] is None
    assert manifest["source"] == {"ref": "moved@1", "model": "moved", "version": 1, "run_id": run_id}
    assert manifest["sha256"] == sha256_file(result.path / "model.pt")
    assert manifest["accuracy_check"] == result.warnings[0].removeprefix("accuracy check skipped: ")
    loaded = torch.jit.load(str(result.path / "model.pt"))
    model = load("moved", workspace=ws).bundle.model
    x = torch.randn(5, 1, 8, 8)
    assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_an_existing_export_is_replaced_only_with_force(tmp_path):
    ws = register(tmp_path / "ws", "twice", MLPConfig(hidden=[3]))
    first = export_model("twice", fmt="torchscript", workspace=ws)
    (first.path / "stale.txt").write_text("from before")
    with pytest.raises(DataError) as info:
        export_model("twice", fmt="torchscript", workspace=ws)
    assert str(info.value) == (f"export: {first.path} already exists; pass --force to replace it, "
                               "or --output DIR to export elsewhere")
    again = export_model("twice", fmt="torchscript", workspace=ws, force=True)
    assert again.path == first.path and not (again.path / "stale.txt").exists()
    assert [p.name for p in again.path.parent.iterdir()] == ["twice-v1"]  # no staging left


def test_int8_quantizes_linear_layers_and_keeps_convolutions_float(tmp_path):
    ws = register(tmp_path / "ws", "cnn", BasicCNNConfig(filters=[4], dense=8))
    result = export_model("cnn", fmt="torchscript", quantize="int8", workspace=ws,
                          output=tmp_path / "out")
    int8 = result.manifest["int8"]
    assert int8["summary"] == "torch.ao dynamic int8: 2 linear layers in int8; 2 conv layers stay float"
    assert (int8["file"], int8["int8_layers"], int8["float_layers"]) == ("model.int8.pt", 2, {"conv": 2})
    assert int8["sha256"] == sha256_file(tmp_path / "out" / "model.int8.pt")
    assert 0 < int8["max_abs_diff"] < 0.05  # int8 weights: close, not equal
    assert int8["metrics"] is None and int8["drop"] is None  # no test split for a run-less version
    quantized = torch.jit.load(str(tmp_path / "out" / "model.int8.pt"))
    assert tuple(quantized(torch.randn(3, 1, 8, 8)).shape) == (3, 3)


def test_the_autoencoder_exports_its_reconstruction_without_an_accuracy_check(tmp_path):
    ws = register(tmp_path / "ws", "ae", AutoencoderConfig(kind="dense", hidden=[8], latent_dim=2))
    result = export_model("ae", fmt="torchscript", workspace=ws)
    reason = ("model type autoencoder outputs a reconstruction, not predictions: there is no "
              "accuracy to compare")
    assert result.warnings == [f"accuracy check skipped: {reason}"]
    assert result.manifest["outputs"] == "reconstruction"
    spec = json.loads((result.path / "input.json").read_text())
    assert spec["output"] == {"name": "output", "kind": "reconstruction",
                              "shape": ["batch", 1, 8, 8], "scores": None}


def test_int8_torchscript_without_dynamic_quantization_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delattr(torch.ao.quantization, "quantize_dynamic")
    with pytest.raises(ConfigError) as info:
        export_model("not-even-looked-up", fmt="torchscript", quantize="int8", workspace=tmp_path)
    assert str(info.value) == ("--quantize: int8 is not supported for TorchScript by this torch "
                               "build (no dynamic quantization engine); use --format onnx "
                               "--quantize int8")


@pytest.mark.parametrize(("fmt", "quantize", "message"), [
    ("tflite", None, "--format: must be one of onnx, torchscript (got 'tflite')"),
    ("onnx", "int4", "--quantize: must be one of int8 (got 'int4')")])
def test_unknown_format_or_quantization(tmp_path, fmt, quantize, message):
    with pytest.raises(ConfigError) as info:
        export_model("x", fmt=fmt, quantize=quantize, workspace=tmp_path)
    assert str(info.value) == message


@pytest.mark.parametrize(("layers", "kept", "text"), [
    (1, {}, "m int8: 1 linear layer in int8"),
    (1, {"embedding": 1}, "m int8: 1 linear layer in int8; 1 embedding layer stays float"),
    (3, {"conv": 2, "embedding": 1}, "m int8: 3 linear layers in int8; 2 conv layers and 1 "
                                     "embedding layer stay float")])
def test_quantization_summary_counts_layers(layers, kept, text):
    assert Quantized("m", layers, kept).describe() == text
