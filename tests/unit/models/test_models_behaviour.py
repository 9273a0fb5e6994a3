"""Initialisation schemes, text masking and the family attribute."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dlforge.config.schema import (
    AutoencoderConfig,
    BasicCNNConfig,
    MLPConfig,
    MobileNetConfig,
    TextCNNConfig,
    TextPoolConfig,
)
from dlforge.models import build_model, init_weights, model_family


def test_glorot_gives_zero_biases_and_full_width_uniform_kernels():
    torch.manual_seed(0)
    layer = init_weights(nn.Sequential(nn.Linear(100, 100)), "glorot")[0]
    bound = math.sqrt(6 / (100 + 100))  # 0.173; torch's default bound is 1/sqrt(100) = 0.1
    assert torch.count_nonzero(layer.bias).item() == 0
    assert layer.weight.abs().max().item() <= bound
    assert layer.weight.abs().max().item() > 0.95 * bound


def test_glorot_conv_bound_uses_receptive_field():
    torch.manual_seed(0)
    conv = init_weights(nn.Conv2d(8, 16, 3), "glorot")
    bound = math.sqrt(6 / ((8 + 16) * 9))
    assert torch.count_nonzero(conv.bias).item() == 0
    assert bound * 0.95 < conv.weight.abs().max().item() <= bound


def test_glorot_leaves_embeddings_and_batch_norm_alone():
    torch.manual_seed(0)
    model = build_model(TextPoolConfig(), input_shape=(5,), num_outputs=1, vocab_size=500)
    assert model.embedding.weight.std().item() == pytest.approx(1.0, abs=0.05)
    cnn = build_model(BasicCNNConfig(filters=[2], dense=4, batch_norm=True),
                      input_shape=(1, 4, 4), num_outputs=2)
    bn = cnn.features[0][1]
    assert bn.weight.tolist() == [1.0, 1.0] and bn.bias.tolist() == [0.0, 0.0]


def test_torch_init_keeps_pytorch_defaults():
    torch.manual_seed(0)
    model = build_model(MLPConfig(hidden=[100], init="torch"), input_shape=(100,),
                        num_outputs=2)
    first = model.body[1]
    assert torch.count_nonzero(first.bias).item() == 100
    assert first.weight.abs().max().item() <= 1 / math.sqrt(100)


def test_same_seed_builds_the_same_weights():
    weights = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build_model(MLPConfig(hidden=[5]), input_shape=(4,), num_outputs=2)
        weights.append(model.body[1].weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


@pytest.mark.parametrize("cfg", [TextPoolConfig(embedding_dim=4, hidden=3),
                                 TextCNNConfig(embedding_dim=4, filters=3, kernel_sizes=[2])])
def test_text_pool_ignores_padding(cfg):
    torch.manual_seed(0)
    model = build_model(cfg, input_shape=(6,), num_outputs=2, vocab_size=20).eval()
    short = model(torch.tensor([[5, 7, 9, 0, 0, 0]]))
    if cfg.type == "text_pool":
        # the mean is over the 3 real tokens: padding changes nothing however long
        longer = build_model(cfg, input_shape=(3,), num_outputs=2, vocab_size=20)
        longer.load_state_dict(model.state_dict())
        assert torch.allclose(short, longer.eval()(torch.tensor([[5, 7, 9]])), atol=1e-6)
    assert torch.isfinite(model(torch.zeros(1, 6, dtype=torch.long))).all()


def test_text_pool_mean_over_real_tokens_exactly():
    model = build_model(TextPoolConfig(embedding_dim=2, hidden=2), input_shape=(4,),
                        num_outputs=1, vocab_size=4).eval()
    with torch.no_grad():
        model.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 6.0],
                                                   [9.0, 9.0]]))
        model.hidden[0].weight.copy_(torch.eye(2))
        model.head.weight.copy_(torch.tensor([[1.0, 1.0]]))
    # tokens 1 and 2 average to (2, 4); the two pads are not counted: 2 + 4 = 6
    assert model(torch.tensor([[1, 2, 0, 0]])).item() == 6.0


@pytest.mark.parametrize(("cfg", "family"), [
    (MLPConfig(), "dense"), (BasicCNNConfig(), "conv"), (MobileNetConfig(), "conv"),
    (TextPoolConfig(), "text"), (AutoencoderConfig(), "dense"),
    (AutoencoderConfig(kind="conv"), "conv")])
def test_model_family(cfg, family):
    assert model_family(cfg) == family


@pytest.mark.parametrize("batch_norm", [False, True])
def test_the_basic_cnn_pools_before_its_second_relu_with_the_textbook_function(batch_norm):
    """conv-ReLU-conv-pool-ReLU computes conv-ReLU-conv-ReLU-pool, gradients included, with the
    same parameter names (bundles saved before load unchanged)."""
    torch.manual_seed(0)
    model = build_model(BasicCNNConfig(filters=[4, 6], dense=8, batch_norm=batch_norm,
                                       dropout=0, dense_dropout=0), input_shape=(1, 12, 12), num_outputs=3).eval()
    block = model.features[0]
    assert [type(m).__name__ for m in block][-2:] == ["MaxPool2d", "ReLU"]
    textbook = build_model(BasicCNNConfig(filters=[4, 6], dense=8, batch_norm=batch_norm,
                                          dropout=0, dense_dropout=0), input_shape=(1, 12, 12), num_outputs=3).eval()
    for seq in textbook.features:
        seq[-2], seq[-1] = seq[-1], seq[-2]  # back to ReLU then pool
    assert [type(m).__name__ for m in textbook.features[0]][-2:] == ["ReLU", "MaxPool2d"]
    textbook.load_state_dict(model.state_dict())  # strict: the same keys
    x = torch.randn(5, 1, 12, 12, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out, ref = model(x), textbook(x2)
    assert torch.equal(out, ref)
    out.sum().backward()
    ref.sum().backward()
    assert torch.equal(x.grad, x2.grad)
    for (name, p), (_, q) in zip(model.named_parameters(), textbook.named_parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name
