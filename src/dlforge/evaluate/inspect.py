"""Latency of a model's forward pass at batch 1 (what a model looks like inside: `evaluate.inside`)."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from dlforge.evaluate.inside import model_device


@torch.inference_mode()
def latency_ms(model: nn.Module, sample: torch.Tensor, runs: int = 30,
               batch_size: int = 1) -> dict[str, float]:
    """Median and 95th-percentile wall time of one forward pass on `batch_size` copies of `sample`.

    Any callable module works, also one without parameters (an ONNX Runtime session wrapped
    in a module, a dynamically quantized model): it then runs on the CPU.
    """
    was_training = model.training
    model.eval()
    device = model_device(model)
    x = sample[None].expand(batch_size, *sample.shape).contiguous().to(device)
    try:
        for _ in range(3):  # warm-up: first calls allocate and pick kernels
            model(x)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        model.train(was_training)
    return {"latency_ms_p50": float(np.percentile(times, 50)),
            "latency_ms_p95": float(np.percentile(times, 95))}
