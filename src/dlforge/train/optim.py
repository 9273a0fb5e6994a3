"""Optimizers: one builder from ``TrainConfig`` to a ``torch.optim.Optimizer``.

Parameters are split into two groups: weights that multiply inputs get ``cfg.weight_decay``;
biases and normalization parameters (BatchNorm/LayerNorm/GroupNorm/... scale and shift) get
none (unless ``train.decay_biases``, airbench's choice). Weight decay exists to limit the size
of weights that multiply inputs. A bias only shifts an activation, and a normalization layer's
scale sits right after a normalization that undoes any shrinking, so decaying them adds no
regularization; it only pulls BatchNorm's scale towards zero and costs accuracy (Goyal et al. 2017, "Bag of Tricks", He et al. 2019).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from dlforge.config.muon_schema import MuonConfig
from dlforge.config.schema import TrainConfig
from dlforge.errors import ConfigError
from dlforge.train.muon import MUON, SGD, Muon, muon_parameters

# Modules whose every parameter is a normalization scale or shift (lazy variants subclass these).
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
)

# Measured on CPU (torch 2.13, 1 thread): fused SGD/Adam/AdamW steps are 2-5x faster than the
# foreach ones; RMSprop has no fused kernel, so it keeps torch's default (foreach).
_FUSED_DEVICES = ("cpu", "cuda")
# Attribute of a parameter (and key of its group) multiplying its learning rate.
LR_SCALE = "lr_scale"


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Build the optimizer named by ``cfg.optimizer`` over the model's trainable parameters.

    Weight decay is L2 added to the gradient by the optimizer for sgd, adam and rmsprop, and
    decoupled from the gradient (Loshchilov & Hutter) for adamw. muon (train/muon.py): the
    hidden weight matrices (`muon_parameters`) take Muon with ``cfg.muon`` in groups
    ``"muon"`` placed last; the groups below, without them, take SGD. Biases and normalization
    parameters are not decayed: the optimizer has a group ``"decay"`` (weight decay
    ``cfg.weight_decay``) and a group ``"no_decay"`` (weight decay 0), each present only when
    it has parameters; with ``cfg.decay_biases`` the latter is ``"decay_bias"`` and decays at
    the weights' per-step rate (`param_groups`). Every group starts at ``cfg.lr``.

    Args:
        model: The model; only parameters with ``requires_grad`` are optimized, so a frozen
            backbone stays frozen.
        cfg: Training config: ``optimizer``, ``lr``, ``momentum``, ``nesterov``,
            ``weight_decay``, ``muon``.

    Returns:
        A ``torch.optim.Optimizer`` (fused implementation where torch has one for the device).
        A parameter with an ``lr_scale`` attribute (set by transfer learning on a backbone)
        goes in a group of its own, named e.g. ``"decay*0.01"``, starting at ``cfg.lr *
        lr_scale``; the schedule scales every group alike.

    Raises:
        ConfigError: a model without trainable parameters.

    Example:
        >>> from dlforge.config.schema import TrainConfig
        >>> opt = build_optimizer(nn.Linear(4, 2), TrainConfig(optimizer="sgd", lr=0.1))
        >>> [(g["name"], len(g["params"])) for g in opt.param_groups]
        [('decay', 1), ('no_decay', 1)]
    """
    groups = param_groups(model, cfg.weight_decay, cfg.bias_lr_scale, decay_biases=cfg.decay_biases)
    if not groups:
        total = sum(1 for _ in model.parameters())
        raise ConfigError(
            f"model: has no trainable parameters (got 0 of {total} with requires_grad=True); "
            "unfreeze at least one layer"
        )
    params = [p for g in groups for p in g["params"]]
    for g in groups:
        if LR_SCALE in g:
            g["lr"] = cfg.lr * g[LR_SCALE]
    fused = True if _fused_ok(params) else None
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov, fused=fused)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, fused=fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.optimizer == "muon":
        return Muon(_with_muon_groups(model, groups, cfg, fused), lr=cfg.lr)
    assert cfg.optimizer == "rmsprop", cfg.optimizer  # the schema allows only these five
    return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)


def _with_muon_groups(model: nn.Module, groups: list[dict], cfg: TrainConfig,
                      fused: bool | None) -> list[dict]:
    """`param_groups` as SGD groups without the Muon weights (`muon_parameters`), followed by
    the Muon groups (``"muon"``, or ``"muon*0.1"`` for parameters with an ``lr_scale``)."""
    muon = cfg.muon or MuonConfig()
    chosen = muon_parameters(model)
    ids = {id(p) for p in chosen}
    sgd_part = {"kind": SGD, "momentum": cfg.momentum, "nesterov": cfg.nesterov, "fused": fused}
    out = [g | {"params": kept} | sgd_part for g in groups
           if (kept := [p for p in g["params"] if id(p) not in ids])]
    by_scale: dict[float, list[nn.Parameter]] = {}
    for p in chosen:
        by_scale.setdefault(float(getattr(p, LR_SCALE, 1.0)), []).append(p)
    for scale, params in sorted(by_scale.items(), key=lambda kv: -kv[0]):
        name = "muon" if scale == 1.0 else f"muon*{scale:g}"
        out.append({"name": name, "kind": MUON, "params": params, "lr": muon.lr * scale,
                    "momentum": muon.momentum, "nesterov": muon.nesterov,
                    "weight_decay": muon.weight_decay, "ns_steps": muon.ns_steps,
                    "normalize_weights": muon.normalize_weights})
    return out


def param_groups(model: nn.Module, weight_decay: float, bias_lr_scale: float = 1.0, *,
                 decay_biases: bool = False) -> list[dict]:
    """Split the trainable parameters into a decayed and a not-decayed group.

    Args:
        model: The model.
        weight_decay: Weight decay of the ``"decay"`` group.
        bias_lr_scale: LR multiplier of normalization layers' shifts (``train.bias_lr_scale``),
            combined with a parameter's own ``lr_scale``.
        decay_biases: ``train.decay_biases``: biases and normalization parameters are decayed
            too (group ``"decay_bias"``), with ``weight_decay / bias_lr_scale`` for the
            normalization shifts so their per-step decay (lr x decay) equals the weights'.

    Returns:
        Dicts with ``name``, ``params`` and ``weight_decay`` (plus ``lr_scale`` for
        parameters carrying one): decayed first, then not decayed, larger scales first; empty
        groups are left out. A parameter shared by several modules appears once.

    Example:
        >>> bn = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        >>> [(g["name"], g["weight_decay"]) for g in param_groups(bn, 0.01, 4.0, decay_biases=True)]
        [('decay', 0.01), ('decay_bias*4', 0.0025), ('decay_bias', 0.01)]
    """
    groups: dict[tuple[bool, float, float], list[nn.Parameter]] = {}
    for param, decayed, norm_shift in _classified(model):
        scale = float(getattr(param, LR_SCALE, 1.0)) * (bias_lr_scale if norm_shift else 1.0)
        rate = (weight_decay if decayed else 0.0 if not decay_biases
                else weight_decay / (bias_lr_scale if norm_shift else 1.0))
        groups.setdefault((decayed, scale, rate), []).append(param)
    out = []
    for (decayed, scale, rate), params in sorted(groups.items(),
                                                 key=lambda kv: (not kv[0][0], -kv[0][1])):
        name = "decay" if decayed else "decay_bias" if decay_biases else "no_decay"
        group = {"name": name, "params": params, "weight_decay": rate}
        if scale != 1.0:
            group |= {"name": f"{group['name']}*{scale:g}", LR_SCALE: scale}
        out.append(group)
    return out


def _classified(model: nn.Module) -> Iterator[tuple[nn.Parameter, bool, bool]]:
    """Yield each trainable parameter once, with whether it should be weight-decayed and
    whether it is a normalization layer's shift."""
    seen: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, NORM_TYPES)
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            yield param, not (is_norm or name == "bias"), is_norm and name == "bias"


def _fused_ok(params: list[nn.Parameter]) -> bool:
    """Whether torch's fused kernels accept these parameters (floating point, cpu or cuda)."""
    return all(p.is_floating_point() and p.device.type in _FUSED_DEVICES for p in params)
