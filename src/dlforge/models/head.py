"""Where a model keeps its output layer: the zoo's models name it `head`; a regression
`TargetScale` wraps the network as `net`, so its output layer is `net.head`.

Transfer learning (lifecycle/transfer.py) retrains this layer; Muon (train/muon.py) leaves it
to SGD, as the Muon authors advise for the output layer.
"""

from __future__ import annotations

from torch import nn

# Where the output layer may sit, tried in this order: a plain model, a wrapped network.
HEAD_PREFIXES = ("", "net.")


def head_prefix(model: nn.Module) -> str | None:
    """The prefix under which `model` has its `head`, or None when it has none.

    Example:
        >>> net = nn.Module()
        >>> net.head = nn.Linear(4, 2)
        >>> head_prefix(net), head_prefix(nn.Linear(4, 2))
        ('', None)
    """
    for prefix in HEAD_PREFIXES:
        if submodule(model, f"{prefix}head") is not None:
            return prefix
    return None


def output_layer(model: nn.Module) -> nn.Module | None:
    """The model's output layer (`head` or `net.head`), or None when it has none.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 4))
        >>> net.head = nn.Linear(4, 2)
        >>> output_layer(net)
        Linear(in_features=4, out_features=2, bias=True)
    """
    prefix = head_prefix(model)
    return None if prefix is None else submodule(model, f"{prefix}head")


def submodule(model: nn.Module, name: str) -> nn.Module | None:
    """`model.get_submodule(name)`, or None when there is no such module."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None
