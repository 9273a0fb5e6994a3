"""`dlforge export` and `dlforge profile` on a tiny trained model, through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
from typer.testing import CliRunner

from dlforge.cli import main
from dlforge.cli.app import app
from dlforge.config import load_config
from dlforge.export.exporter import sha256_file
from dlforge.pipeline import run
from dlforge.registry import Store, load
from dlforge.registry.bundle import WEIGHTS

TINY = {"name": "tiny", "data": {"source": "builtin", "name": "digits", "limit": 300},
        "model": {"type": "mlp", "hidden": [16]}, "train": {"epochs": 2, "batch_size": 32},
        "evaluate": {"baseline": False}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace where TINY was trained and registered as tiny@1."""
    workspace = tmp_path_factory.mktemp("export-cli") / "ws"
    assert run(load_config(TINY), workspace=workspace, progress=False).model_ref == "tiny@1"
    return workspace


def test_export_onnx_int8_then_profile_reuses_the_files(trained, capsys):
    ws = trained
    fresh = CliRunner().invoke(app, ["-w", str(ws), "profile", "tiny", "--runs", "2", "--json"])
    assert fresh.exit_code == 0, fresh.output
    assert json.loads(fresh.stdout)["notes"][0] == "int8: onnxruntime dynamic int8: 2 linear layers in int8"
    result = CliRunner().invoke(app, ["-w", str(ws), "export", "tiny", "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    out = ws / "exports" / "tiny-v1"
    lines = result.stdout.splitlines()
    assert lines[0] == f"exported tiny@1 (mlp) as onnx, opset 18 to {out}"
    assert lines[1].startswith("max abs diff vs PyTorch: ") and lines[1].endswith(" on 45 test samples")
    assert lines[2] == "onnxruntime dynamic int8: 2 linear layers in int8 (model.int8.onnx)"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parity"]["max_abs_diff"] <= 1e-4 and manifest["accuracy_check"] is None
    stored = dict(Store.open(ws).resolve("tiny").metrics["headline"])
    assert manifest["metrics"]["pytorch"] == {"accuracy": stored["accuracy"], "macro_f1": stored["macro_f1"]}
    int8 = manifest["int8"]
    assert int8["drop"]["accuracy"] == pytest.approx(stored["accuracy"] - int8["metrics"]["accuracy"], abs=1e-12)
    assert manifest["sha256"] == sha256_file(out / "model.onnx")
    # The file alone, in ONNX Runtime, gives the registered model's probabilities at batch 3.
    x = np.random.default_rng(0).integers(0, 17, (3, 1, 8, 8)).astype(np.float64)
    pre = load("tiny", workspace=ws)
    logits = onnxruntime.InferenceSession(str(out / "model.onnx")).run(
        None, {"input": pre.bundle.preprocessor.transform(x)})[0]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, pre.predict_scores(x), atol=1e-5)

    assert main(["-w", str(ws), "export", "tiny@1", "--quantize", "int8", "-q"]) == 1
    assert capsys.readouterr().err == (f"error: export: {out} already exists; pass --force to "
                                       "replace it, or --output DIR to export elsewhere\n")

    profile = CliRunner().invoke(app, ["-w", str(ws), "profile", "tiny", "--runs", "3", "--json"])
    assert profile.exit_code == 0, profile.output
    report = json.loads(profile.stdout)
    rows = {row["backend"]: row for row in report["backends"]}
    assert list(rows) == ["eager", "onnxruntime", "int8"]
    assert {(r["params"], r["flops"]) for r in rows.values()} == {(1210, 2368)}
    assert rows["eager"]["size_mb"] == pre.bundle.path.joinpath(WEIGHTS).stat().st_size / 2**20
    assert rows["int8"]["size_mb"] == (out / "model.int8.onnx").stat().st_size / 2**20
    assert all(r["samples_per_s"] > 0 and r["latency_ms_p95"] >= r["latency_ms_p50"] > 0
               for r in rows.values())
    assert report["notes"][:2] == [f"ONNX file: {out / 'model.onnx'} (from dlforge export)",
                                   "int8: onnxruntime dynamic int8: 2 linear layers in int8 (model.int8.onnx)"]

    (out / "model.int8.onnx").write_bytes(b"changed since the export")  # no longer the manifest's
    again = CliRunner().invoke(app, ["-w", str(ws), "profile", "tiny", "--runs", "2", "--json"])
    assert json.loads(again.stdout)["notes"][:2] == [
        f"ONNX file: {out / 'model.onnx'} (from dlforge export)",
        "int8: onnxruntime dynamic int8: 2 linear layers in int8"]  # quantized afresh


def test_profile_prints_one_row_per_backend(trained, monkeypatch):
    import dlforge.runtime
    from dlforge.export import profile_model

    calls = []
    monkeypatch.setattr(dlforge.runtime, "configure_process", lambda *args: calls.append(args))
    result = CliRunner().invoke(app, ["-w", str(trained), "profile", "tiny@1", "--runs", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert calls == [()]  # the command sets torch's threads ...
    assert profile_model("tiny@1", workspace=trained, runs=1).model_type == "mlp"
    assert calls == [()]  # ... the library function leaves its caller's alone
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "tiny@1 (mlp)"
    assert lines[1].split() == ["backend", "params", "FLOPs", "size", "MB", "p50", "ms", "p95", "ms",
                                "samples/s", "@64"]
    assert [line.split()[:3] for line in lines[2:5]] == [
        ["eager", "1210", "2368"], ["onnxruntime", "1210", "2368"], ["int8", "1210", "2368"]]


def test_bad_format_and_unknown_model(trained, capsys):
    assert main(["-w", str(trained), "export", "tiny", "--format", "tflite"]) == 2
    assert capsys.readouterr().err == ("error: Invalid value for '--format': must be onnx or torchscript "
                                       "(got 'tflite') (see 'dlforge export -h')\n")
    assert main(["-w", str(trained), "export", "ghost"]) == 1
    assert capsys.readouterr().err == ("error: No model named 'ghost'. Available models: tiny. "
                                       "Use `dlforge models list` to see all.\n")
    assert main(["-w", str(trained), "profile", "ghost"]) == 1
    assert capsys.readouterr().err.startswith("error: No model named 'ghost'.")


@pytest.mark.parametrize("command", [["export", "gan", "-o", "{tmp}/out"],
                                     ["export", "gan", "-f", "torchscript", "-o", "{tmp}/out"],
                                     ["profile", "gan", "--runs", "1"]])
def test_a_gan_is_refused_in_one_line_and_nothing_is_written(tmp_path, capsys, command):
    from tests.unit.export.export_models import register

    from dlforge.config.schema import DCGANConfig

    register(tmp_path / "ws", "gan", DCGANConfig(width=4, latent_dim=4))
    args = [a.format(tmp=tmp_path) for a in command]
    assert main(["-w", str(tmp_path / "ws"), *args, "-q"]) == 2  # profile crashed, export half-tried
    assert capsys.readouterr().err == ("error: model: gan@1 is a GAN (model.type dcgan): it "
                                       "generates images (`dlforge generate`) and predicts nothing\n")
    assert not (tmp_path / "out").exists()
