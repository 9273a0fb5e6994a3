from __future__ import annotations

import os
import platform
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from dlforge.errors import ConfigError
from dlforge.runtime import (
    configure_process,
    cpu_has_native_bf16,
    physical_cores,
    seed_everything,
    select_device,
)


def test_cpu_and_auto_devices():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_config_error(spec):
    with pytest.raises(ConfigError) as err:
        select_device(spec)
    assert str(err.value) == (
        f"device: {spec!r} requested but CUDA is not available; use device: auto or cpu")


def test_configure_process_sets_threads_and_is_idempotent():
    before = torch.get_num_threads()
    try:
        configure_process(1)
        configure_process(1)
        assert torch.get_num_threads() == 1
        configure_process()
        assert torch.get_num_threads() == physical_cores()
    finally:
        torch.set_num_threads(before)


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first


def test_a_torch_device_passes_through():
    assert select_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("isa", ["AVX2", "avx512_core_vnni"])
def test_a_process_limited_to_an_isa_without_bf16_has_no_native_bf16(monkeypatch, isa):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert cpu_has_native_bf16() is torch.backends.mkldnn.is_available()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert cpu_has_native_bf16() is False


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="needs an x86-64 CPU")
def test_the_benchmarks_avx2_emulation_reaches_onednn_and_aten():
    # the limits are read when torch loads: only a fresh process shows their effect
    probe = ("import torch; from dlforge.runtime import cpu_has_native_bf16; "
             "print(torch.backends.cpu.get_cpu_capability(), "
             "torch.ops.mkldnn._is_mkldnn_bf16_supported(), cpu_has_native_bf16())")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["AVX2", "False", "False"]
