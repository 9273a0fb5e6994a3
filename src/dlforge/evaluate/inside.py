"""Look inside a trained model: the feature maps of each convolutional block, per-layer weight
and activation statistics, the first layer's weights, and a saliency map of one input.

Forward hooks exist only inside `capturing`: a model leaves every function here with no hook
registered, so training and serving never pay for them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.Embedding)
TOP_TOKENS = 20  # token ids listed by embedding norm


@contextlib.contextmanager
def capturing(modules: dict[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each module in `modules` (by name) while the block runs; the hooks
    are removed when it ends, also on error.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> with capturing({"relu": net[1]}) as seen:
        ...     _ = net(torch.ones(1, 2))
        >>> seen["relu"].shape, len(net[1]._forward_hooks)
        (torch.Size([1, 3]), 0)
    """
    seen: dict[str, torch.Tensor] = {}
    handles = [module.register_forward_hook(_recorder(seen, name)) for name, module in modules.items()]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _recorder(seen: dict[str, torch.Tensor], name: str):
    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            seen[name] = output.detach().float().cpu()
    return hook


def conv_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """The convolutional blocks of `model`, by name: from the root, descend while only one child
    holds a 2-D convolution; the children that hold one where several do are the blocks (a
    `BasicCNN`'s `features.0`, `features.1`). Empty for models without 2-D convolutions."""
    node, prefix = model, ""
    while True:
        holders = [(n, c) for n, c in node.named_children() if _has_conv(c)]
        if len(holders) != 1 or isinstance(holders[0][1], nn.Conv2d):
            return {prefix + n: c for n, c in holders}
        name, node = holders[0]
        prefix += name + "."


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def block_maps(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Each conv block's output `(channels, H, W)` for one input `x` `(C, H, W)`."""
    blocks = conv_blocks(model)
    with capturing(blocks) as seen:
        _forward(model, x[None])
    return {name: seen[name][0].numpy() for name in blocks if name in seen}


def layer_statistics(model: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """Per layer: weight mean and std (layers with weights), output mean and std on the batch
    `x`, and for each ReLU the share of its units (channels, or features) that output 0 for
    every sample of `x` ("dead"). Vanishing or exploding layers show as tiny or huge stds.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[1., 1.], [-1., -1.]])), net[0].bias.zero_()
        >>> [row["dead_relu"] for row in layer_statistics(net, torch.ones(4, 2)) if row["kind"] == "ReLU"]
        [0.5]
    """
    watched = {n: m for n, m in model.named_modules() if isinstance(m, (*WEIGHTED, nn.ReLU))}
    with capturing(watched) as seen:
        _forward(model, x)
    rows = []
    for name, module in watched.items():
        row: dict[str, Any] = {"layer": name, "kind": type(module).__name__}
        if isinstance(module, WEIGHTED):
            weight = module.weight.detach().float()
            row |= {"weight_mean": float(weight.mean()), "weight_std": _spread(weight)}
        out = seen.get(name)
        if out is not None and out.numel():
            row |= {"output_mean": float(out.mean()), "output_std": _spread(out)}
            if isinstance(module, nn.ReLU):
                units = out.transpose(0, 1).reshape(out.shape[1], -1) if out.ndim > 1 else out[None]
                row["dead_relu"] = float((units.amax(dim=1) <= 0).float().mean())
        rows.append(row)
    return rows


def _spread(values: torch.Tensor) -> float:
    """The standard deviation; 0 for one value (a binary head's one output, a linear model's
    one weight on one feature), where torch gives NaN (invalid JSON) and a warning."""
    return float(values.std()) if values.numel() > 1 else 0.0


def first_layer_weights(model: nn.Module) -> tuple[str, np.ndarray] | None:
    """What the first weighted layer looks at: conv kernels `(out, in, kh, kw)` ("filters"), the
    L2 norm of each input feature's weights ("features", dense models on tables), or the norm of
    each token's embedding ("embeddings", text models); None without such a layer."""
    first = next((m for m in model.modules() if isinstance(m, WEIGHTED)), None)
    if first is None:
        return None
    weight = first.weight.detach().float().cpu()
    if isinstance(first, nn.Conv2d):
        return "filters", weight.numpy()
    if isinstance(first, nn.Embedding):
        return "embeddings", weight.norm(dim=1).numpy()
    if isinstance(first, nn.Linear):
        return "features", weight.norm(dim=0).numpy()
    return None


def saliency(model: nn.Module, x: torch.Tensor, target: int | None = None) -> tuple[np.ndarray, int]:
    """Input gradients: |d logit(target) / d input| for one input `x`, reduced over channels
    for images `(C, H, W) -> (H, W)`; per feature for tables. `target` defaults to the predicted
    class (binary: the logit itself, signed towards the prediction).

    Raises:
        ValueError: integer inputs (token ids) have no gradient; the model is an autoencoder
            (`reconstructs`) or its output per input is not a vector of class scores.
    """
    if not x.is_floating_point():
        raise ValueError("saliency needs float inputs; token ids have no gradient")
    if getattr(model, "reconstructs", False):  # a table's reconstruction is a vector too
        raise ValueError("saliency explains class scores; an autoencoder outputs a "
                         "reconstruction of its input")
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        inp = x[None].detach().to(device).requires_grad_(True)
        logits = model(inp)[0].float()
        if logits.ndim != 1:  # e.g. an autoencoder's reconstruction: no class to explain
            raise ValueError(f"saliency explains class scores; this model outputs "
                             f"{tuple(logits.shape)} per input")
        if logits.numel() == 1:
            target = int(logits.item() > 0) if target is None else target
            chosen = logits[0] if target == 1 else -logits[0]
        else:
            target = int(logits.argmax()) if target is None else target
            chosen = logits[target]
        (grad,) = torch.autograd.grad(chosen, inp)
    finally:
        model.train(was_training)
    grad = grad[0].abs().cpu()
    return (grad.amax(dim=0) if grad.ndim == 3 else grad).numpy(), target


@dataclass
class Inspection:
    """What `inspect_model` found for one input.

    Attributes:
        maps: each conv block's output for the input (empty without 2-D convolutions).
        statistics: `layer_statistics` rows on the batch the input came from.
        first_layer: `first_layer_weights` (kind, array), or None.
        saliency: input gradients, or None (text) with the reason in `notes`.
        target: the class the saliency explains.
        notes: what is shown instead of what does not apply.
    """

    maps: dict[str, np.ndarray]
    statistics: list[dict[str, Any]]
    first_layer: tuple[str, np.ndarray] | None
    saliency: np.ndarray | None
    target: int | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"statistics": self.statistics, "notes": self.notes,
                               "blocks": {n: list(m.shape) for n, m in self.maps.items()},
                               "saliency_target": self.target}
        kind, weights = self.first_layer or ("", None)
        if kind == "features":
            out["first_layer_feature_norms"] = np.round(weights, 5).tolist()
        elif kind == "embeddings":  # a vocabulary can be large: the TOP_TOKENS largest norms
            top = np.argsort(-weights)[:TOP_TOKENS]
            out["largest_embedding_norms"] = {int(i): round(float(weights[i]), 5) for i in top}
        return out


def inspect_model(model: nn.Module, x: torch.Tensor, batch: torch.Tensor | None = None) -> Inspection:
    """Everything above for one preprocessed input `x` (statistics on `batch`, default `x`).

    Example:
        >>> found = inspect_model(nn.Sequential(nn.Linear(3, 2)), torch.ones(3))
        >>> found.maps, found.first_layer[0], found.notes[0][:41]
        ({}, 'features', 'no 2-D convolution: per-layer statistics,')
    """
    notes, maps = [], block_maps(model, x)
    grads, target, why = None, None, None
    try:
        grads, target = saliency(model, x)
    except ValueError as exc:
        why = f"no saliency: {exc}"
    if not maps:
        shown = "the first layer's weights and the saliency" if why is None else "the first layer's weights"
        notes.append(f"no 2-D convolution: per-layer statistics, {shown} are shown instead of "
                     f"feature maps")
    notes += [why] if why else []
    stats = layer_statistics(model, x[None] if batch is None else batch)
    return Inspection(maps, stats, first_layer_weights(model), grads, target, notes)


@torch.no_grad()
def _forward(model: nn.Module, x: torch.Tensor) -> None:
    was_training = model.training
    model.eval()
    try:
        model(x.to(model_device(model)))
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")
