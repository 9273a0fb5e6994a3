"""ONNX export: parity with PyTorch through ONNX Runtime at any batch size, and one-line failures."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import onnxruntime
import pytest
import torch
from export_models import register
from torch import nn

from dlforge.config.schema import BasicCNNConfig, MLPConfig, MobileNetConfig, TextPoolConfig
from dlforge.errors import DataError, NotFoundError
from dlforge.export import export_model, profile_model
from dlforge.export.compare import max_abs_diff
from dlforge.export.onnx_export import OnnxModule, export_onnx, onnx_session
from dlforge.models import build_model


@pytest.mark.parametrize("cfg", [BasicCNNConfig(filters=[4], dense=8, batch_norm=True),
                                 MobileNetConfig(width=0.25, channels=[8, 16])],
                         ids=["basic_cnn", "mobilenet"])
def test_image_models_match_pytorch_at_any_batch_size(tmp_path, cfg):
    torch.manual_seed(0)
    model = build_model(cfg, input_shape=(1, 8, 8), num_outputs=3).eval()
    x = torch.randn(37, 1, 8, 8)
    assert export_onnx(model, x[:2], tmp_path / "m.onnx", cfg.type) == 18
    exported = OnnxModule(onnx_session(tmp_path / "m.onnx", threads=1))
    assert tuple(exported(x).shape) == (37, 3)
    assert max_abs_diff(model, exported, x, batch_size=16) <= 1e-4  # batches 16, 16 and 5


def test_text_model_exports_int64_token_ids_and_warns_without_a_test_split(tmp_path):
    ws = register(tmp_path / "ws", "words", TextPoolConfig(embedding_dim=4, hidden=4), text=True)
    result = export_model("words", workspace=ws, quantize="int8")
    assert result.path == ws / "exports" / "words-v1"
    assert result.warnings == ["accuracy check skipped: words@1 was registered without a run, "
                               "so its test split is unknown"]
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["parity"]["checked_on"] == "64 random samples"
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    assert manifest["metrics"] == {"pytorch": None, "exported": None}
    spec = json.loads((result.path / "input.json").read_text())
    assert spec["input"] | {"raw": None} == {"name": "input", "dtype": "int64", "shape": ["batch", 6],
                                             "raw": None}
    assert spec["output"] == {"name": "output", "kind": "logits", "shape": ["batch", 3],
                              "scores": "softmax"}
    assert manifest["int8"]["summary"] == ("onnxruntime dynamic int8: 2 linear layers in int8; "
                                           "1 embedding layer stays float")
    assert sorted(p.name for p in result.path.iterdir()) == [
        "input.json", "manifest.json", "model.int8.onnx", "model.onnx", "preprocessing.json",
        "task.json"]
    # Apart from dlforge: ONNX Runtime on token ids from the saved preprocessing.
    from dlforge.data.preprocess import preprocessor_from_dict
    from dlforge.registry import load

    pre = preprocessor_from_dict(json.loads((result.path / "preprocessing.json").read_text()))
    ids = pre.transform(np.array(["good film", "bad plot and awful actors"], dtype=object))
    session = onnxruntime.InferenceSession(str(result.path / "model.onnx"))
    logits = session.run(None, {"input": ids})[0]
    expected = load("words", workspace=ws).predict_scores(["good film", "bad plot and awful actors"])
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 1).numpy(), expected, atol=1e-5)


def test_an_exporter_failure_is_one_line_naming_the_model_type(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("Unsupported operator\nlong traceback-like detail")

    monkeypatch.setattr(torch.onnx, "export", fail)
    model = build_model(TextPoolConfig(), input_shape=(6,), num_outputs=2, vocab_size=9)
    with pytest.raises(DataError) as info:
        export_onnx(model, torch.ones(2, 6, dtype=torch.long), tmp_path / "m.onnx", "text_pool")
    assert str(info.value) == ("export: model type text_pool cannot be exported to ONNX "
                               "(RuntimeError: Unsupported operator); try --format torchscript")


def test_an_int8_quantizer_failure_is_one_line_naming_the_model_type(tmp_path, monkeypatch):
    import onnxruntime.quantization

    def fail(*args, **kwargs):
        raise ValueError("Unsupported initializer type\nlong detail")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", fail)
    ws = register(tmp_path / "ws", "q", MLPConfig(hidden=[4]))
    reason = "ONNX Runtime cannot quantize model type mlp to int8 (ValueError: Unsupported initializer type)"
    with pytest.raises(DataError) as info:
        export_model("q", quantize="int8", workspace=ws)
    assert str(info.value) == f"export: {reason}; export without --quantize int8"
    assert list((ws / "exports").iterdir()) == []
    with pytest.raises(DataError) as info:
        profile_model("q", workspace=ws, runs=1)
    assert str(info.value) == f"profile: {reason}"


class _NanIn(nn.Module):
    """Identity, except NaN in the first batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.full_like(x, math.nan) if self.calls == 1 else x + 5.0


def test_max_abs_diff_is_nan_when_any_output_is_nan():
    x = torch.zeros(4, 3)
    assert max_abs_diff(nn.Identity(), nn.Identity(), x) == 0.0
    # batch 1 has NaN, batch 2 differs by 5: the NaN must not be lost behind the 5
    assert math.isnan(max_abs_diff(nn.Identity(), _NanIn(), x, batch_size=2))
    assert math.isnan(max_abs_diff(_NanIn(), nn.Identity(), x, batch_size=2))


def test_missing_onnxruntime_says_which_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    with pytest.raises(NotFoundError) as info:
        export_model("anything", workspace=tmp_path)
    assert str(info.value) == ("onnxruntime not installed: ONNX export and profiling need the "
                               "export extra; install dlforge[export] (pip install 'dlforge[export]')")
