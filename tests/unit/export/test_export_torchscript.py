"""TorchScript export and the export directory: files, manifest, warnings, --force, int8."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
import torch
from export_models import register
from torch import nn

from dlforge.cli import main
from dlforge.config.schema import AutoencoderConfig, BasicCNNConfig, MLPConfig
from dlforge.errors import ConfigError, DataError
from dlforge.export import export_model, exporter
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
    assert [p.name for p in again.path.parent.iterdir()] == ["twice-v1-torchscript"]  # no staging left


def test_onnx_and_torchscript_of_one_version_get_folders_of_their_own(tmp_path):
    # both went to <name>-v<version>: the second format was refused, and --force would have
    # replaced the first
    ws = register(tmp_path / "ws", "both", MLPConfig(hidden=[3]))
    onnx = export_model("both", workspace=ws)
    script = export_model("both@1", fmt="torchscript", workspace=ws)
    assert (onnx.path, script.path) == (ws / "exports" / "both-v1", ws / "exports" / "both-v1-torchscript")
    assert (onnx.path / "model.onnx").is_file() and not (onnx.path / "model.pt").exists()
    assert (script.path / "model.pt").is_file() and not (script.path / "model.onnx").exists()


NOT_AN_EXPORT = ("exists and is not a dlforge export (no manifest.json written by dlforge "
                 "export), so --force will not replace it; choose a new --output")


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_force_never_replaces_a_folder_that_is_not_an_export(tmp_path):
    ws = register(tmp_path / "ws", "keep", MLPConfig(hidden=[3]))
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    files = {"notes.txt": "precious", "sub/data.csv": "a,b\n",
             "manifest.json": '{"name": "another tool"}'}  # a manifest.json, not an export's
    for name, text in files.items():
        (mine / name).write_text(text)
    for force in (True, False):  # without --force too: the message does not suggest it
        with pytest.raises(DataError) as info:
            export_model("keep", fmt="torchscript", workspace=ws, output=mine, force=force)
        assert str(info.value) == f"export: {mine} {NOT_AN_EXPORT}"
    assert _tree(mine) == dict(sorted(files.items()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "ws"]  # nothing staged


def test_output_dot_with_force_is_refused_in_a_folder_and_replaces_an_export(tmp_path, monkeypatch,
                                                                           capsys):
    ws = register(tmp_path / "ws", "dot", MLPConfig(hidden=[3]))
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text("print(1)")
    monkeypatch.chdir(folder)
    assert main(["-w", str(ws), "export", "dot", "-f", "torchscript", "-o", ".", "--force", "-q"]) == 1
    assert capsys.readouterr().err == f"error: export: {folder} {NOT_AN_EXPORT}\n"
    assert _tree(folder) == {"train.py": "print(1)"}

    out = export_model("dot", fmt="torchscript", workspace=ws, output=tmp_path / "out").path
    (out / "stale.txt").write_text("from before")
    monkeypatch.chdir(out)
    again = export_model("dot", fmt="torchscript", workspace=ws, output=".", force=True)
    assert again.path == out and (out / "model.pt").is_file() and not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "project", "ws"]


@pytest.mark.parametrize("restore_fails", [False, True], ids=["restored", "restore-fails"])
def test_a_failed_replace_keeps_the_previous_export(tmp_path, monkeypatch, restore_fails):
    ws = register(tmp_path / "ws", "swap", MLPConfig(hidden=[3]))
    first = export_model("swap", fmt="torchscript", workspace=ws).path
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == first and (restore_fails or not str(src).endswith(".old")):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(DataError) as info:
        export_model("swap", fmt="torchscript", workspace=ws, force=True)
    prefix = f"export: cannot move the new export to {first} (Permission denied); the previous export"
    left = [p for p in first.parent.iterdir() if p != first]
    if restore_fails:  # it stays whole under its temporary name, and the message says where
        assert [p.name for p in left] == [re.fullmatch(r"\.swap-v1-torchscript\.[0-9a-f]{8}\.old", left[0].name)[0]]
        assert str(info.value) == f"{prefix} is left at {left[0]}"
        assert {p.name: p.read_bytes() for p in left[0].iterdir()} == before
    else:
        assert str(info.value) == f"{prefix} is unchanged"
        assert left == [] and {p.name: p.read_bytes() for p in first.iterdir()} == before


class _NanRow(nn.Module):
    """The exported model, with NaN in the last output row (as a broken export might give)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x).clone()
        out[-1, 0] = float("nan")
        return out


def test_nan_outputs_refuse_the_export(tmp_path, monkeypatch):
    ws = register(tmp_path / "ws", "nan", MLPConfig(hidden=[3]))
    real_load = exporter.load_torchscript
    monkeypatch.setattr(exporter, "load_torchscript", lambda path: _NanRow(real_load(path)))
    with pytest.raises(DataError) as info:
        export_model("nan", fmt="torchscript", workspace=ws)
    assert str(info.value) == ("export: the torchscript model's outputs (or PyTorch's) contain NaN "
                               "on 64 random samples; nothing was written")
    assert list((ws / "exports").iterdir()) == []


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
