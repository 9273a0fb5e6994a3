"""Each way a model can fail to fit the data, and its exact message."""

from __future__ import annotations

import re

import pytest

from dlforge.config.schema import (
    AutoencoderConfig,
    BasicCNNConfig,
    LinearConfig,
    MLPConfig,
    MobileNetConfig,
    ResNetSmallConfig,
    TextCNNConfig,
    TextPoolConfig,
)
from dlforge.errors import ConfigError
from dlforge.models import build_model


def _message(cfg, shape, vocab_size=None) -> str:
    with pytest.raises(ConfigError) as info:
        build_model(cfg, input_shape=shape, num_outputs=2, vocab_size=vocab_size)
    return str(info.value)


def test_too_many_pools_for_small_images():
    assert _message(BasicCNNConfig(filters=[4, 4, 4, 4]), (1, 8, 8)) == (
        "model.filters: 4 pooling blocks need inputs of at least 16x16; block 4 max-pool "
        "would get 1x1 from input (1, 8, 8). Use at most 3 entries in model.filters, or "
        "larger images.")


def test_too_many_pools_names_the_short_side():
    assert _message(BasicCNNConfig(filters=[4, 4, 4]), (3, 32, 4)) == (
        "model.filters: 3 pooling blocks need inputs of at least 8x8; block 3 max-pool "
        "would get 8x1 from input (3, 32, 4). Use at most 2 entries in model.filters, or "
        "larger images.")


def test_one_pixel_images_fit_no_pool():
    assert _message(BasicCNNConfig(filters=[4]), (3, 1, 1)) == (
        "model.filters: 1 pooling blocks need inputs of at least 2x2; block 1 max-pool "
        "would get 1x1 from input (3, 1, 1). Use larger images.")


@pytest.mark.parametrize("cfg", [BasicCNNConfig(), MobileNetConfig(), ResNetSmallConfig()])
def test_image_models_reject_tables(cfg):
    assert _message(cfg, (30,)) == (
        f"model.type: {cfg.type} needs image input (C, H, W); the data gives samples of "
        f"shape (30,). Use mlp or linear for tables.")


def test_image_models_reject_text():
    assert _message(MobileNetConfig(), (200,), vocab_size=1000) == (
        "model.type: mobilenet needs image input (C, H, W); the data gives token sequences "
        "of shape (200,). Use text_pool or text_cnn for text.")


@pytest.mark.parametrize("cfg", [TextPoolConfig(), TextCNNConfig()])
def test_text_models_reject_images(cfg):
    assert _message(cfg, (1, 8, 8)) == (
        f"model.type: {cfg.type} needs token sequences (maxlen,) from the text preprocessor; "
        f"the data gives samples of shape (1, 8, 8) with no vocabulary. Use basic_cnn, "
        f"mobilenet or resnet_small for images.")


def test_text_models_need_a_vocabulary():
    assert _message(TextPoolConfig(), (30,)) == (
        "model.type: text_pool needs token sequences (maxlen,) from the text preprocessor; "
        "the data gives samples of shape (30,) with no vocabulary. Use mlp or linear for "
        "tables.")


@pytest.mark.parametrize("cfg", [MLPConfig(), LinearConfig(), AutoencoderConfig()])
def test_dense_models_reject_text(cfg):
    assert _message(cfg, (200,), vocab_size=1000) == (
        f"model.type: {cfg.type} needs numeric features; the data gives token sequences of "
        f"shape (200,). Use text_pool or text_cnn for text.")


def test_conv_autoencoder_rejects_tables():
    assert _message(AutoencoderConfig(kind="conv"), (30,)) == (
        "model.kind: conv autoencoder needs image input (C, H, W); the data gives samples of "
        "shape (30,). Use model.kind: dense for tables.")


def test_text_cnn_kernel_wider_than_texts():
    assert _message(TextCNNConfig(kernel_sizes=[3, 5, 6]), (4,), vocab_size=50) == (
        "model.kernel_sizes: kernels [5, 6] are wider than the sequences (maxlen 4). Use "
        "kernel sizes of at most 4, or a larger preprocess.text.maxlen.")


@pytest.mark.parametrize(("cfg", "shape", "vocab", "message"), [
    (TextCNNConfig(kernel_sizes=[]), (4,), 50,
     "model.kernel_sizes: needs at least one kernel size (got []). Use e.g. [3, 4, 5]."),
    (MobileNetConfig(channels=[]), (1, 8, 8), None,
     "model.channels: needs at least one entry, the stem's channels (got []). "
     "Use e.g. [32, 64, 128, 256]."),
    (AutoencoderConfig(kind="conv", hidden=[]), (1, 8, 8), None,
     "model.hidden: a conv autoencoder needs at least one entry, the channels of each "
     "stride-2 conv (got []). Use e.g. [16, 32]."),
])
def test_empty_layer_lists(cfg, shape, vocab, message):
    assert _message(cfg, shape, vocab) == message


def test_errors_are_single_lines_and_value_errors():
    with pytest.raises(ValueError, match=re.escape("model.type: basic_cnn")) as info:
        build_model(BasicCNNConfig(), input_shape=(30,), num_outputs=2)
    assert "\n" not in str(info.value)
