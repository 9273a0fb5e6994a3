"""Exact parameter counts, FLOPs and output shapes of tiny configs, computed by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

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
from dlforge.models import build_model, describe_model
from dlforge.models.mobilenet import scale_channels


def _describe(cfg, shape, num_outputs, vocab_size=None):
    model = build_model(cfg, input_shape=shape, num_outputs=num_outputs, vocab_size=vocab_size)
    return describe_model(model, shape)


@pytest.mark.parametrize(("cfg", "shape", "outputs", "vocab", "params", "flops"), [
    # 4*3+3 + 3*2+2; FLOPs 2*(4*3 + 3*2)
    (MLPConfig(hidden=[3]), (4,), 2, None, 23, 36),
    # batch norm adds weight+bias per unit and no counted FLOPs
    (MLPConfig(hidden=[3], batch_norm=True, dropout=0.5), (4,), 2, None, 29, 36),
    # an image is flattened: 2*2*2 = 8 inputs
    (MLPConfig(hidden=[3]), (2, 2, 2), 2, None, 35, 60),
    (LinearConfig(), (30,), 1, None, 31, 60),
    # conv 1->2: 18+2 (2*1*9*2*64 FLOPs), conv 2->2: 36+2 (2*2*9*2*64), pool to 4x4,
    # dense 32->4: 132 (2*32*4), head 4->3: 15 (2*4*3)
    (BasicCNNConfig(filters=[2], dense=4), (1, 8, 8), 3, None, 205, 2304 + 4608 + 256 + 24),
    # stem 3->4 no bias + BN: 108+8 (2*3*9*4*64); depthwise 4x3x3 + BN: 36+8 (2*9*4*16 at
    # stride 2); pointwise 4->8 + BN: 32+16 (2*4*8*16); head 8->2: 18 (2*8*2)
    (MobileNetConfig(channels=[4, 8]), (3, 8, 8), 2, None, 226, 13824 + 1152 + 1024 + 32),
    # embedding 10x4 (0 FLOPs), hidden 4->3: 15 (2*4*3), head 3->1: 4 (2*3)
    (TextPoolConfig(embedding_dim=4, hidden=3), (6,), 1, 10, 59, 30),
    # embedding 40; conv k=2: 4*2*2+2 (2*4*2*2*5 FLOPs), k=3: 4*2*3+2 (2*4*3*2*4); head 4->2
    (TextCNNConfig(embedding_dim=4, filters=2, kernel_sizes=[2, 3]), (6,), 2, 10, 94,
     160 + 192 + 16),
    # 6->4, 4->2 | 2->4, 4->6
    (AutoencoderConfig(hidden=[4], latent_dim=2), (6,), 99, None, 80, 2 * (24 + 8 + 8 + 24)),
    # conv 1->2 stride 2: 20 (2*9*2*4); 8->3: 27 (48); 3->8: 32 (48); convT 2->1: 19
    # (2*2*9*1*(2*2) input positions)
    (AutoencoderConfig(kind="conv", hidden=[2], latent_dim=3), (1, 4, 4), 99, None, 98,
     144 + 48 + 48 + 144),
])
def test_params_and_flops_by_hand(cfg, shape, outputs, vocab, params, flops):
    assert _describe(cfg, shape, outputs, vocab) == {
        "params": params, "trainable_params": params, "flops": flops}


def test_resnet_small_params_by_hand():
    # stem 3->2 + BN: 54+4; stage 1 block 2->2: 2*(36+4); stage 2 block 2->4 stride 2:
    # 72+8 + 144+8 + shortcut 8+8; stage 3 block 4->8: 288+16 + 576+16 + 32+16; head 8->2: 18
    described = _describe(ResNetSmallConfig(width=2, blocks=1), (3, 8, 8), 2)
    assert described["params"] == 58 + 80 + 248 + 944 + 18


def test_frozen_parameters_are_not_trainable():
    model = build_model(MLPConfig(hidden=[3]), input_shape=(4,), num_outputs=2)
    model.head.requires_grad_(False)
    assert describe_model(model, (4,)) == {"params": 23, "trainable_params": 15, "flops": 36}


def test_describe_model_restores_training_mode():
    model = build_model(MLPConfig(hidden=[3], batch_norm=True), input_shape=(4,), num_outputs=2)
    describe_model(model, (4,))  # a batch of one in train mode would fail in BatchNorm1d
    assert model.training is True


def test_text_models_are_described_with_token_ids_whatever_the_dtype():
    model = build_model(TextPoolConfig(embedding_dim=4, hidden=3), input_shape=(6,),
                        num_outputs=1, vocab_size=10)
    assert describe_model(model, (6,), dtype=torch.float32)["flops"] == 30


def test_conv_transpose_flops_count_input_positions():
    model = nn.ConvTranspose2d(2, 3, 3, stride=2)
    assert describe_model(model, (2, 5, 5))["flops"] == 2 * 2 * 9 * 3 * 25


@pytest.mark.parametrize(("channels", "width", "scaled"), [
    (64, 0.5, 32), (32, 0.1, 8), (4, 0.5, 4), (10, 2.0, 20), (1, 0.01, 1), (7, 1.5, 10)])
def test_mobilenet_width_multiplier(channels, width, scaled):
    assert scale_channels(channels, width) == scaled


def test_mobilenet_width_scales_every_layer():
    model = build_model(MobileNetConfig(channels=[16, 32], width=0.5), input_shape=(3, 8, 8),
                        num_outputs=2)
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == [8, 8, 16]
    assert model.head.in_features == 16


def test_mobilenet_stops_striding_on_small_images():
    model = build_model(MobileNetConfig(channels=[4, 4, 4, 4]), input_shape=(1, 8, 8),
                        num_outputs=2)
    strides = [m.stride[0] for m in model.modules() if isinstance(m, nn.Conv2d)]
    # stem 1; depthwise 2 (8->4), 2 (4->2), then 1 at 2x2; pointwise always 1
    assert strides == [1, 2, 1, 2, 1, 1, 1]


@pytest.mark.parametrize("shape", [(1, 5, 3), (3, 28, 28), (2, 9, 16)])
def test_conv_autoencoder_output_is_exactly_the_input_shape(shape):
    model = build_model(AutoencoderConfig(kind="conv", hidden=[2, 3], latent_dim=2),
                        input_shape=shape, num_outputs=7)
    assert tuple(model(torch.zeros(2, *shape)).shape) == (2, *shape)


def test_basic_cnn_accepts_non_square_images():
    model = build_model(BasicCNNConfig(filters=[2, 2], dense=4), input_shape=(3, 12, 4),
                        num_outputs=5)
    assert tuple(model(torch.zeros(2, 3, 12, 4)).shape) == (2, 5)
    assert model.classifier[1].in_features == 2 * 3 * 1


def test_basic_cnn_downscale_pools_the_input_first_and_cuts_the_flops():
    cfg = BasicCNNConfig(filters=[4, 8], dense=8)
    full = build_model(cfg, input_shape=(1, 128, 128), num_outputs=3)
    pooled = build_model(cfg.model_copy(update={"downscale": 2}), input_shape=(1, 128, 128),
                         num_outputs=3)
    assert tuple(pooled(torch.zeros(2, 1, 128, 128)).shape) == (2, 3)
    assert isinstance(pooled.features[0], nn.AvgPool2d)
    assert pooled.classifier[1].in_features == 8 * 16 * 16  # 128 / 2 / 2 / 2
    # the convolutions dominate: a quarter of the pixels is about a quarter of the FLOPs
    ratio = describe_model(pooled, (1, 128, 128))["flops"] / describe_model(full, (1, 128, 128))["flops"]
    assert 0.24 < ratio < 0.27


def test_basic_cnn_stride_2_stem_halves_the_sides_and_cuts_the_flops():
    cfg = BasicCNNConfig(filters=[4, 8], dense=8, downscale=2)
    plain = build_model(cfg, input_shape=(1, 128, 128), num_outputs=3)
    stem = build_model(cfg.model_copy(update={"stem_stride": 2}), input_shape=(1, 128, 128),
                       num_outputs=3)
    assert tuple(stem(torch.zeros(2, 1, 128, 128)).shape) == (2, 3)
    strides = [m.stride[0] for m in stem.modules() if isinstance(m, nn.Conv2d)]
    assert strides == [2, 1, 1, 1]  # only the first convolution
    assert stem.classifier[1].in_features == 8 * 8 * 8  # 128 / 2 (pool) / 2 (stem) / 2 / 2
    ratio = describe_model(stem, (1, 128, 128))["flops"] / describe_model(plain, (1, 128, 128))["flops"]
    assert 0.24 < ratio < 0.27
    # odd sides round up at the stem: 45 -> 23 -> 11 -> 5
    odd = build_model(BasicCNNConfig(filters=[4, 8], dense=8, stem_stride=2), input_shape=(1, 45, 45),
                      num_outputs=3)
    assert odd.classifier[1].in_features == 8 * 5 * 5
    assert tuple(odd(torch.zeros(1, 1, 45, 45)).shape) == (1, 3)
