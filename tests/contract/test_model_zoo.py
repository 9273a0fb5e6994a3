"""One contract every model in the zoo keeps, run over every ``model.type`` with tiny widths.

A model builds from its config, gives outputs of the promised shape, passes gradients to
every parameter, describes itself with positive numbers, round-trips through safetensors
with identical outputs, and runs in eval mode on a batch of one. A GAN (dcgan) is fed latent
vectors (its `forward` generates images) and its gradients flow through its discriminator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from dlforge.config.schema import (
    MODEL_TYPES,
    AirbenchConfig,
    AutoencoderConfig,
    BasicCNNConfig,
    DCGANConfig,
    LinearConfig,
    MLPConfig,
    MobileNetConfig,
    ResNetSmallConfig,
    TextCNNConfig,
    TextPoolConfig,
)
from dlforge.models import build_model, describe_model

VOCAB = 30


@dataclass(frozen=True)
class Case:
    cfg: Any
    input_shape: tuple[int, ...]
    text: bool = False
    latent: int | None = None  # a GAN: forward takes (n, latent) and returns images

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.latent,) if self.latent else self.input_shape

    def build(self) -> torch.nn.Module:
        return build_model(self.cfg, input_shape=self.input_shape, num_outputs=3,
                           vocab_size=VOCAB if self.text else None)

    def batch(self, n: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(n)
        if self.text:
            return torch.randint(0, VOCAB, (n, *self.input_shape), generator=g)
        return torch.randn((n, *self.sample_shape), generator=g)

    def expected_shape(self, n: int) -> tuple[int, ...]:
        return (n, *self.input_shape) if self.cfg.type in ("autoencoder", "dcgan") else (n, 3)


CASES = {
    "mlp": Case(MLPConfig(hidden=[8, 4], batch_norm=True, dropout=0.1), (6,)),
    "basic_cnn": Case(BasicCNNConfig(filters=[4, 4], dense=8, batch_norm=True), (1, 8, 8)),
    "mobilenet": Case(MobileNetConfig(channels=[4, 8, 8], width=1.0), (3, 8, 8)),
    "resnet_small": Case(ResNetSmallConfig(width=2, blocks=1), (3, 8, 8)),
    "airbench": Case(AirbenchConfig(widths=[4, 4]), (3, 8, 8)),
    "text_pool": Case(TextPoolConfig(embedding_dim=4, hidden=4), (7,), text=True),
    "text_cnn": Case(TextCNNConfig(embedding_dim=4, filters=3, kernel_sizes=[2, 3]), (7,),
                     text=True),
    "linear": Case(LinearConfig(), (2, 3, 3)),
    "autoencoder": Case(AutoencoderConfig(hidden=[8], latent_dim=2), (1, 6, 6)),
    "autoencoder_conv": Case(AutoencoderConfig(kind="conv", hidden=[4, 4], latent_dim=2),
                             (1, 7, 6)),
    "dcgan": Case(DCGANConfig(width=2, latent_dim=3, spectral_norm=True), (1, 8, 12), latent=3),
}


@pytest.fixture(params=sorted(CASES), name="case")
def _case(request) -> Case:
    torch.manual_seed(0)
    return CASES[request.param]


def test_every_model_type_has_a_case():
    # `auto` is resolved to one of the others (config/auto.py) before any model is built
    assert {case.cfg.type for case in CASES.values()} == set(MODEL_TYPES) - {"auto"}


def test_builds_with_a_family(case):
    assert case.build().family in ("dense", "conv", "text")


def test_forward_shape(case):
    model = case.build()
    out = model(case.batch(4))
    assert tuple(out.shape) == case.expected_shape(4)
    assert out.dtype == torch.float32


def test_gradients_reach_every_parameter(case):
    model = case.build()
    params = [p for p in model.parameters() if p.requires_grad]
    out = model(case.batch(4))
    if case.latent:  # the discriminator's parameters get theirs through its verdict
        out = model.discriminator(out)
    loss = out.square().mean()
    grads = torch.autograd.grad(loss, params)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_describe_model_numbers_are_positive(case):
    model = case.build()
    dtype = torch.long if case.text else torch.float32
    described = describe_model(model, case.sample_shape, dtype)
    assert set(described) == {"params", "trainable_params", "flops"}
    assert described["params"] == described["trainable_params"] > 0
    assert described["flops"] > 0


def test_safetensors_round_trip_gives_identical_outputs(case, tmp_path):
    model = case.build().eval()
    save_file(model.state_dict(), str(tmp_path / "weights.safetensors"))
    torch.manual_seed(1)  # a differently initialised twin
    twin = case.build().eval()
    x = case.batch(3)
    with torch.no_grad():
        assert not torch.equal(model(x), twin(x))
        twin.load_state_dict(load_file(str(tmp_path / "weights.safetensors")))
        assert torch.equal(model(x), twin(x))


def test_eval_mode_batch_of_one(case):
    model = case.build().eval()
    with torch.no_grad():
        first = model(case.batch(1))
        again = model(case.batch(1))
    assert tuple(first.shape) == case.expected_shape(1)
    assert torch.equal(first, again)  # no dropout or batch statistics in eval mode
