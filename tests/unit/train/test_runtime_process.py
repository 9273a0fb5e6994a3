from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from dlforge.errors import ConfigError
from dlforge.runtime import configure_process, physical_cores, seed_everything, select_device


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
