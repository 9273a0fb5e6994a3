"""Switching a model's layers between torch's class and a same-state variant, in place.

A kernel switch (`train.dense_kernel`, `train.dropout_kernel`) changes how a layer computes,
not what it holds: the variant subclasses torch's layer and adds no parameters or buffers, so
swapping ``__class__`` keeps parameters, state_dict keys and hooks, and a checkpoint of either
form loads into the other.
"""

from __future__ import annotations

from torch import nn


def swap_layers(model: nn.Module, base: type[nn.Module], variant: type[nn.Module], *,
                on: bool) -> nn.Module:
    """Make every layer of `model` whose class is exactly `base` or `variant` a `variant`
    (`on` True) or a `base`; subclasses other than these two are left alone.

    Args:
        model: any module; its submodules are visited recursively.
        base: torch's layer class (e.g. ``nn.Linear``).
        variant: a subclass of `base` with the same state.
        on: True for `variant`, False for `base`.

    Returns:
        `model` itself.

    Example:
        >>> class Loud(nn.ReLU): ...
        >>> m = swap_layers(nn.Sequential(nn.ReLU()), nn.ReLU, Loud, on=True)
        >>> type(m[0]).__name__, type(swap_layers(m, nn.ReLU, Loud, on=False)[0]).__name__
        ('Loud', 'ReLU')
    """
    target = variant if on else base
    for module in model.modules():
        if type(module) in (base, variant):
            module.__class__ = target
    return model
