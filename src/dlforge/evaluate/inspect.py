"""Look inside a trained model: first-layer filters, feature maps, and latency at batch 1."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn


def first_conv(model: nn.Module) -> nn.Conv2d | None:
    """The first 2-D convolution of `model` (in registration order), if it has one."""
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)


def first_layer_filters(model: nn.Module) -> np.ndarray | None:
    """Kernels `(out, in, kh, kw)` of the first convolution, or None for non-conv models."""
    conv = first_conv(model)
    return None if conv is None else conv.weight.detach().float().cpu().numpy()


@torch.inference_mode()
def feature_maps(model: nn.Module, sample: torch.Tensor) -> np.ndarray | None:
    """Activations `(channels, H, W)` of the first convolution for one input `(C, H, W)`."""
    conv = first_conv(model)
    if conv is None:
        return None
    captured: list[torch.Tensor] = []
    handle = conv.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        model(sample[None].to(device))
    finally:
        handle.remove()
        model.train(was_training)
    return captured[0][0].float().cpu().numpy()


@torch.inference_mode()
def latency_ms(model: nn.Module, sample: torch.Tensor, runs: int = 30,
               batch_size: int = 1) -> dict[str, float]:
    """Median and 95th-percentile wall time of one forward pass on `batch_size` copies of `sample`.

    Any callable module works, also one without parameters (an ONNX Runtime session wrapped
    in a module, a dynamically quantized model): it then runs on the CPU.
    """
    was_training = model.training
    model.eval()
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
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
