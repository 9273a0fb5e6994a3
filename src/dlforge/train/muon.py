"""Muon: momentum, then each weight matrix's update orthogonalized by Newton-Schulz iterations.

Sources: Keller Jordan, "Muon: An optimizer for hidden layers in neural networks" (2024,
https://kellerjordan.github.io/posts/muon/) and its use in airbench94_muon.py (94.01 % on
CIFAR-10 in 8 epochs; github.com/KellerJordan/cifar10-airbench). Written for dlforge from
those descriptions: the quintic iteration with coefficients (3.4445, -4.7750, 2.0315) "maximizes
the slope at zero", so a few steps send every singular value of the update into roughly
[0.5, 1.5] (not exactly 1, which does not hurt training, airbench's note).

For a weight W (a conv filter bank flattened to (out, in x kh x kw)) with gradient G:

    B <- momentum * B + G;  U <- G + momentum * B (nesterov) or B
    W <- W * sqrt(out) / ||W||_F                        (normalize_weights, airbench)
    W <- W - lr * weight_decay * W                      (decoupled weight decay, otherwise)
    W <- W - lr * NS(U)

No shape-dependent lr factor (torch.optim.Muon's `adjust_lr_fn`, Keras' `rms_rate`): airbench
uses none. Muon suits hidden weight matrices only: biases, normalization parameters, the
output layer, a named input layer (a GAN generator's projection of z) and embeddings take
SGD with (Nesterov) momentum, as in airbench and as Keras'
`keras.optimizers.Muon` does with AdamW (`exclude_layers`, `exclude_embeddings`). Both update
rules live in ONE optimizer whose groups carry a `kind`, so the LR schedule (a LambdaLR over the
optimizer's groups), checkpoints (`state_dict`), gradient clipping and the fit loop treat it as
any other optimizer. torch.optim.Muon (in the installed torch 2.13) takes 2-D parameters only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.sgd import sgd

from dlforge.models.head import input_layer, output_layer

# Group kinds: the Muon update, or torch's SGD (same arithmetic as torch.optim.SGD).
MUON, SGD = "muon", "sgd"
# The quintic Newton-Schulz coefficients of Keller Jordan's Muon (a, b, c).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
_DEFAULTS = {"kind": SGD, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
             "ns_steps": 5, "normalize_weights": False, "fused": None}


def newton_schulz(g: Tensor, steps: int, eps: float = 1e-7) -> Tensor:
    """Approximately orthogonalize a matrix: ``U S' V^T`` for ``G = U S V^T``, with the
    diagonal of ``S'`` roughly in [0.5, 1.5] after 3 to 5 steps.

    Computed in float32; the result has ``g``'s dtype. airbench uses bfloat16 on the GPU. On
    the 2-core EPYC (avx512_bf16, loaded machine) bfloat16 ran these products 1.5-3x faster,
    but 3 iterations over airbench's six filter banks cost about 6 GFLOP per step against
    about 1.4 TFLOP for the forward and backward passes of a batch of 2,000 (0.4 %), so the
    precision is not worth trading.

    Args:
        g: A 2-D tensor.
        steps: Iterations of ``X <- a X + (b A + c A^2) X`` with ``A = X X^T``.
        eps: Added to the Frobenius norm that first scales ``g`` (top singular value <= 1).

    Returns:
        A tensor of ``g``'s shape and dtype.

    Example:
        >>> s = torch.linalg.svdvals(newton_schulz(torch.randn(8, 20), steps=5))
        >>> bool(((s > 0.5) & (s < 1.5)).all())
        True
    """
    a, b, c = NS_COEFFICIENTS
    x = g.float()
    tall = x.size(0) > x.size(1)
    if tall:  # iterate on the wide orientation: X X^T is the smaller Gram matrix
        x = x.T
    x = x / (x.norm() + eps)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return (x.T if tall else x).to(g.dtype)


def muon_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters Muon updates: every weight with at least 2 dimensions, except
    the output layer's (`models.head.output_layer`, else the model's last `nn.Linear`), the
    input layer's when the model names one (`models.head.input_layer`) and embeddings'
    (`nn.Embedding`, `nn.EmbeddingBag`).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4, 2))
        >>> [tuple(p.shape) for p in muon_parameters(net)]
        [(4, 1, 3, 3)]
    """
    head = output_layer(model)
    if head is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        head = linears[-1] if linears else None
    outer = [m for m in (input_layer(model), head) if m is not None]
    excluded = {id(p) for m in model.modules()
                if any(m is layer for layer in outer) or isinstance(m, nn.Embedding | nn.EmbeddingBag)
                for p in m.parameters()}
    # model.parameters() yields a parameter shared by several modules once
    return [p for p in model.parameters()
            if p.requires_grad and p.ndim >= 2 and id(p) not in excluded]


class Muon(torch.optim.Optimizer):
    """Muon for the groups with ``kind: "muon"``, SGD (torch's arithmetic) for the others.

    Every group carries its own ``lr``, ``momentum``, ``nesterov`` and ``weight_decay`` (L2 in
    the gradient for SGD groups, as torch.optim.SGD; decoupled for Muon groups); Muon groups
    also ``ns_steps`` and ``normalize_weights``, SGD groups ``fused``. State per parameter:
    ``momentum_buffer``, as torch.optim.SGD, so ``state_dict`` round-trips.

    Args:
        params: Parameter groups (dicts); missing keys take the defaults (an SGD group without
            momentum).
        lr: Default learning rate.

    Example:
        >>> w = nn.Parameter(torch.eye(3))
        >>> opt = Muon([{"params": [w], "kind": "muon", "momentum": 0.0}], lr=0.1)
        >>> w.grad = torch.diag(torch.tensor([4.0, 2.0, 1.0]))
        >>> _ = opt.step()
        >>> bool((torch.diag(w) < 1).all())
        True
    """

    def __init__(self, params: Iterable[dict[str, Any]], lr: float) -> None:
        super().__init__(params, {"lr": lr, **_DEFAULTS})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every group's parameters that have a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            (self._muon_step if group["kind"] == MUON else self._sgd_step)(group)
        return loss

    def _muon_step(self, group: dict[str, Any]) -> None:
        lr, momentum = group["lr"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            buf = state.setdefault("momentum_buffer", torch.zeros_like(p.grad))
            buf.mul_(momentum).add_(p.grad)
            update = p.grad.add(buf, alpha=momentum) if group["nesterov"] else buf
            if group["normalize_weights"]:
                p.mul_(p.size(0) ** 0.5 / p.norm().clamp_min(1e-12))
            elif group["weight_decay"]:
                p.mul_(1.0 - lr * group["weight_decay"])
            ortho = newton_schulz(update.reshape(len(update), -1), group["ns_steps"])
            p.add_(ortho.view(p.shape), alpha=-lr)

    def _sgd_step(self, group: dict[str, Any]) -> None:
        params = [p for p in group["params"] if p.grad is not None]
        buffers = [self.state[p].get("momentum_buffer") for p in params]
        sgd(params, [p.grad for p in params], buffers, fused=group["fused"],
            weight_decay=group["weight_decay"], momentum=group["momentum"], lr=group["lr"],
            dampening=0.0, nesterov=group["nesterov"], maximize=False)
        if group["momentum"]:
            for p, buf in zip(params, buffers, strict=True):
                self.state[p]["momentum_buffer"] = buf
