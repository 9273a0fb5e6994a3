"""Where a model keeps its output layer: the zoo's classifiers name it `head`; a regression
`TargetScale` wraps the network as `net`, so its output layer is `net.head`. A network whose
output layer is not a `head` (a GAN's discriminator) names it in `output_layer_name`, and
may name its input layer in `input_layer_name` (a GAN generator's projection of z).

Transfer learning (lifecycle/transfer.py) retrains the `head`; Muon (train/muon.py) leaves
the output and named input layers to SGD, as the Muon authors advise for the input and
output layers.
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
    """The model's output layer: the one it names (`output_layer_name`), else `head` or
    `net.head`; None when it has none.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 4))
        >>> net.head = nn.Linear(4, 2)
        >>> output_layer(net)
        Linear(in_features=4, out_features=2, bias=True)
    """
    named = getattr(model, "output_layer_name", None)
    if named is not None:
        return submodule(model, named)
    prefix = head_prefix(model)
    return None if prefix is None else submodule(model, f"{prefix}head")


def input_layer(model: nn.Module) -> nn.Module | None:
    """The layer the model names as its input layer (`input_layer_name`), or None.

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> net.input_layer_name = "0"
        >>> input_layer(net), input_layer(nn.Linear(4, 2))
        (Linear(in_features=8, out_features=4, bias=True), None)
    """
    named = getattr(model, "input_layer_name", None)
    return None if named is None else submodule(model, named)


def submodule(model: nn.Module, name: str) -> nn.Module | None:
    """`model.get_submodule(name)`, or None when there is no such module."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None
