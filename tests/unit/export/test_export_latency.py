"""evaluate.inspect.latency_ms, as profile uses it: any batch size, modules without parameters."""

from __future__ import annotations

import torch
from torch import nn

from dlforge.evaluate.inspect import latency_ms


class _Recorder(nn.Module):
    """No parameters, like an ONNX Runtime session wrapped for `latency_ms`."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return x.sum(dim=1)


def test_latency_at_batch_64_of_a_module_without_parameters():
    module = _Recorder()
    result = latency_ms(module, torch.ones(5), runs=4, batch_size=64)
    assert sorted(result) == ["latency_ms_p50", "latency_ms_p95"]
    assert module.shapes == [(64, 5)] * 7  # 3 warm-up passes and 4 timed ones
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p95"]
