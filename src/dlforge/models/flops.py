"""Model size and cost: parameter counts and FLOPs per sample.

FLOPs are counted by PyTorch's own ``torch.utils.flop_counter.FlopCounterMode`` rather than
hand-written hooks: it sees every matrix multiply and convolution however a model calls it
(modules or functional code). A multiply-add is 2 FLOPs: Conv ``2 * Cin/groups * k*k * Cout *
Hout * Wout``, ConvTranspose ``2 * Cin * k*k * Cout/groups * Hin * Win``, Linear
``2 * in * out``. Bias additions, batch norm, activations, pooling, element-wise arithmetic
and embedding look-ups count 0: they are a small share of any model here, and leaving them out
matches how MobileNet and ResNet papers report mult-adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def describe_model(model: nn.Module, input_shape: Sequence[int],
                   dtype: torch.dtype = torch.float32) -> dict[str, int]:
    """Count a model's parameters and the FLOPs of one sample's forward pass.

    The model runs once in eval mode (restored afterwards) on a zero batch of one sample on
    the device of its parameters. Text models (``family == "text"``) always get int64 token
    ids, whatever ``dtype`` says, since embeddings take nothing else.

    Args:
        model: a built model.
        input_shape: shape of one sample, as given to ``build_model``.
        dtype: dtype of the sample; ``torch.long`` for token ids.

    Returns:
        ``{"params": int, "trainable_params": int, "flops": int}``.

    Example:
        >>> describe_model(nn.Linear(4, 2), (4,))
        {'params': 10, 'trainable_params': 10, 'flops': 16}
    """
    params = list(model.parameters())
    if getattr(model, "family", None) == "text":
        dtype = torch.long
    device = params[0].device if params else torch.device("cpu")
    sample = torch.zeros((1, *input_shape), dtype=dtype, device=device)
    was_training = model.training
    model.eval()  # batch norm in train mode rejects a batch of one
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(sample)
    finally:
        model.train(was_training)
    return {
        "params": sum(p.numel() for p in params),
        "trainable_params": sum(p.numel() for p in params if p.requires_grad),
        "flops": int(counter.get_total_flops()),
    }
