"""The model zoo: ``build_model`` turns a model config section into an ``nn.Module``.

Types: mlp, basic_cnn, mobilenet, resnet_small, text_pool, text_cnn, linear, autoencoder,
dcgan (a generator and a discriminator: `forward(z)` generates images).
Models import only torch and the config schema; they output raw logits.
"""

from __future__ import annotations

from dlforge.models.flops import describe_model
from dlforge.models.init import init_weights
from dlforge.models.registry import build_model, model_family

__all__ = ["build_model", "describe_model", "init_weights", "model_family"]
