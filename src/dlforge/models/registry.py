"""The model zoo's registry: ``model.type`` -> builder, plus the input-family checks.

The table below is written out in full, not filled by decorators at import time, so that what
exists is visible in one place and importing a module never changes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from dlforge.config.model_schema import GAN_TYPE
from dlforge.errors import ConfigError
from dlforge.models import (
    airbench,
    autoencoder,
    basic_cnn,
    dcgan,
    linear,
    mlp,
    mobilenet,
    resnet_small,
    text,
)
from dlforge.models.init import init_weights
from dlforge.models.target_scale import TargetScale

Builder = Callable[..., nn.Module]

BUILDERS: dict[str, Builder] = {
    "mlp": mlp.build,
    "basic_cnn": basic_cnn.build,
    "mobilenet": mobilenet.build,
    "resnet_small": resnet_small.build,
    "airbench": airbench.build,
    "text_pool": text.build_text_pool,
    "text_cnn": text.build_text_cnn,
    "linear": linear.build,
    "autoencoder": autoencoder.build,
    "dcgan": dcgan.build,
}

FAMILIES: dict[str, str] = {
    "mlp": "dense", "linear": "dense", "basic_cnn": "conv", "mobilenet": "conv",
    "resnet_small": "conv", "airbench": "conv", "text_pool": "text", "text_cnn": "text", "dcgan": "conv",
}

_IMAGE_MODELS = "basic_cnn, mobilenet or resnet_small"
_GAN_HINT = "A GAN generates images: use an image source (builtin digits, idx, cifar, image_folder)."


def model_family(cfg: Any) -> str:
    """The family ("dense" | "conv" | "text") the model of ``cfg`` will have."""
    if cfg.type == "autoencoder":
        return cfg.kind
    return FAMILIES[cfg.type]


def build_model(cfg: Any, *, input_shape: Sequence[int], num_outputs: int,
                vocab_size: int | None = None, scale_outputs: bool = False) -> nn.Module:
    """Build and initialise the model ``cfg`` describes, sized for the data.

    Args:
        cfg: a validated model config section (``RunConfig.model``), chosen by ``cfg.type``.
        input_shape: shape of one sample: ``(C, H, W)`` images, ``(features,)`` tables,
            ``(maxlen,)`` token ids for text.
        num_outputs: width of the head (``TaskSpec.num_outputs``); ignored by the autoencoder.
        vocab_size: the text preprocessor's vocabulary size; None for images and tables.
        scale_outputs: regression: wrap the network in a `TargetScale` (outputs
            ``mean + std * net(x)``; set the statistics with `fit_target_scale`).

    Returns:
        An ``nn.Module`` with a ``family`` attribute, outputting raw logits
        ``(N, num_outputs)`` (the autoencoder: a reconstruction shaped like its input).

    Raises:
        ConfigError: the model does not fit the data (wrong family, images too small for its
            pools, kernels wider than the texts), one line naming the config key.

    Example:
        >>> from dlforge.config.schema import MLPConfig
        >>> build_model(MLPConfig(hidden=[3]), input_shape=(4,), num_outputs=2).family
        'dense'
    """
    shape = tuple(int(s) for s in input_shape)
    check_family(cfg, shape, vocab_size)
    model = BUILDERS[cfg.type](cfg, input_shape=shape, num_outputs=num_outputs,
                               vocab_size=vocab_size)
    assert model.family == model_family(cfg), (model.family, cfg.type)
    model = init_weights(model, cfg.init)
    after_init = getattr(model, "after_init", None)
    if callable(after_init):  # a model's own initialisation on top of the scheme
        after_init()
    return TargetScale(model, num_outputs) if scale_outputs else model


def check_family(cfg: Any, shape: tuple[int, ...], vocab_size: int | None) -> None:
    """Raise ConfigError if a ``cfg.type`` model cannot take samples of ``shape``.

    Text data is recognised by its vocabulary (``vocab_size`` given), images by 3 dimensions.
    """
    is_text = vocab_size is not None
    family = model_family(cfg)
    data = f"{'token sequences' if is_text else 'samples'} of shape {shape}"
    if family == "conv" and (is_text or len(shape) != 3):
        if cfg.type == "autoencoder":
            hint = "Use text_pool or text_cnn for text." if is_text else \
                "Use model.kind: dense for tables."
            raise ConfigError(f"model.kind: conv autoencoder needs image input (C, H, W); "
                              f"the data gives {data}. {hint}")
        hint = _GAN_HINT if cfg.type == GAN_TYPE else _hint(shape, is_text)
        raise ConfigError(f"model.type: {cfg.type} needs image input (C, H, W); "
                          f"the data gives {data}. {hint}")
    if family == "text" and (not is_text or len(shape) != 1):
        if not is_text:
            data += " with no vocabulary"
        raise ConfigError(f"model.type: {cfg.type} needs token sequences (maxlen,) from the "
                          f"text preprocessor; the data gives {data}. {_hint(shape, is_text)}")
    if family == "dense" and is_text:
        raise ConfigError(f"model.type: {cfg.type} needs numeric features; the data gives "
                          f"{data}. {_hint(shape, is_text)}")


def _hint(shape: tuple[int, ...], is_text: bool) -> str:
    if is_text:
        return "Use text_pool or text_cnn for text."
    if len(shape) == 3:
        return f"Use {_IMAGE_MODELS} for images."
    if len(shape) == 1:
        return "Use mlp or linear for tables."
    return "Use mlp or linear."
