"""`train.dense_kernel`: the auto decision per vendor, device and precision; fit applies it."""

from __future__ import annotations

import pytest
import torch
from tests.unit.train.tiny_fit import fit_tiny_cnn
from torch import nn

from dlforge.runtime import cpu_vendor
from dlforge.train import dense_kernel as dk
from dlforge.train.dense_kernel import apply_dense_kernel, wants_onednn
from dlforge.train.precision import FP32, Precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
BF16 = Precision("bf16", torch.bfloat16)


@pytest.mark.parametrize(("vendor", "device", "precision", "isa", "expected"), [
    ("AuthenticAMD", CPU, FP32, "AVX512", True),
    ("HygonGenuine", CPU, FP32, "AVX512", True),
    ("GenuineIntel", CPU, FP32, "AVX512", False),  # MKL is fast on Intel: keep it
    ("", CPU, FP32, "AVX512", False),              # unknown (not x86 Linux): unmeasured
    ("AuthenticAMD", CPU, FP32, "AVX2", False),    # measured 0.92-0.99x under the AVX2 emulation
    ("AuthenticAMD", CPU, BF16, "AVX512", False),  # bf16 autocast keeps its own kernels
    ("AuthenticAMD", CUDA, FP32, "AVX512", False),
])
def test_auto_decides_per_vendor_device_precision_and_isa(vendor, device, precision, isa, expected,
                                                          monkeypatch):
    monkeypatch.setattr(dk, "onednn_linear_available", lambda: True)
    assert wants_onednn("auto", device, precision, vendor=vendor, isa=isa) is expected


def test_auto_is_off_without_the_op(monkeypatch):
    monkeypatch.setattr(dk, "onednn_linear_available", lambda: False)
    assert wants_onednn("auto", CPU, FP32, vendor="AuthenticAMD", isa="AVX512") is False


def test_auto_reads_the_isa_from_torch(monkeypatch):
    monkeypatch.setattr(dk, "onednn_linear_available", lambda: True)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert wants_onednn("auto", CPU, FP32, vendor="AuthenticAMD") is False
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert wants_onednn("auto", CPU, FP32, vendor="AuthenticAMD") is True


@pytest.mark.parametrize(("setting", "expected"), [("aten", False), ("onednn", True)])
def test_explicit_settings_override_auto(setting, expected):
    assert wants_onednn(setting, CPU, FP32, vendor="AuthenticAMD") is expected
    assert wants_onednn(setting, CPU, FP32, vendor="GenuineIntel") is expected


def test_apply_switches_both_ways(monkeypatch):
    model = nn.Sequential(nn.Linear(2, 2))
    assert apply_dense_kernel(model, "onednn", CPU, FP32) is True
    assert type(model[0]).__name__ == "OneDNNLinear"
    assert apply_dense_kernel(model, "aten", CPU, FP32) is False
    assert type(model[0]) is nn.Linear


def test_cpu_vendor_reads_the_first_vendor_id(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n\nvendor_id\t: Other\n")
    assert cpu_vendor(info) == "AuthenticAMD"
    info.write_text("processor\t: 0\nCPU implementer\t: 0x41\n")
    assert cpu_vendor(info) == ""
    assert cpu_vendor(tmp_path / "missing") == ""


@pytest.mark.skipif(not dk.onednn_linear_available(), reason="torch without oneDNN linear")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])  # adam: tiny_fit.py says why it can compare
def test_fit_trains_the_same_model_through_either_kernel(optimizer):
    aten = fit_tiny_cnn(dense_kernel="aten", optimizer=optimizer)
    onednn = fit_tiny_cnn(dense_kernel="onednn", optimizer=optimizer)
    assert {type(m).__name__ for m in aten.model.modules() if isinstance(m, nn.Linear)} == {"Linear"}
    assert {type(m).__name__ for m in onednn.model.modules() if isinstance(m, nn.Linear)} == {"OneDNNLinear"}
    assert [round(r["val_loss"], 4) for r in aten.history] == [round(r["val_loss"], 4) for r in onednn.history]
    for (k, a), (_, o) in zip(aten.model.state_dict().items(), onednn.model.state_dict().items(), strict=True):
        torch.testing.assert_close(o, a, atol=1e-5, rtol=0, msg=k)
