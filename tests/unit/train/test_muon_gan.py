"""train.optimizer: muon on a GAN: each network's dense layer (the generator's projection of z,
the discriminator's output layer) takes SGD, Muon every convolution (measured better than SGD
on the outer convolutions, benchmarks/RESULTS.md); the discriminator's groups keep their
own LRs under the generator's schedule; a tiny fit."""

from __future__ import annotations

import math

import pytest
import torch
from test_gan_step import TASK, gan, loaders
from test_muon import muon_cfg, names

from dlforge.config import load_config
from dlforge.config.schema import DCGANConfig, TrainConfig
from dlforge.models.registry import build_model
from dlforge.train.gan_step import GanStep
from dlforge.train.loop import fit
from dlforge.train.muon import Muon, muon_parameters
from dlforge.train.optim import build_optimizer


def networks(spectral_norm: bool = False):
    torch.manual_seed(0)
    model = build_model(DCGANConfig(width=4, latent_dim=8, spectral_norm=spectral_norm),
                        input_shape=(1, 8, 8), num_outputs=2)
    return model.generator, model.discriminator


def test_the_generators_projection_takes_sgd_and_its_transposed_convolutions_muon():
    generator, _ = networks()
    assert names(generator, muon_parameters(generator)) == ["up.0.weight", "up.3.weight"]
    groups = build_optimizer(generator, muon_cfg()).param_groups
    assert [(g["name"], g["kind"], names(generator, g["params"])) for g in groups] == [
        ("decay", "sgd", ["project.0.weight"]),
        ("no_decay", "sgd", ["project.0.bias", "project.1.weight", "project.1.bias", "up.0.bias",
                             "up.1.weight", "up.1.bias", "up.3.bias"]),
        ("muon", "muon", ["up.0.weight", "up.3.weight"])]


@pytest.mark.parametrize(("spectral_norm", "weight"), [
    (False, "weight"), (True, "parametrizations.weight.original")])
def test_the_discriminators_linear_layer_takes_sgd_and_its_convolutions_muon(spectral_norm,
                                                                             weight):
    _, discriminator = networks(spectral_norm)
    muon = muon_parameters(discriminator)
    assert names(discriminator, muon) == [f"net.0.{weight}", f"net.2.{weight}"]
    assert [tuple(p.shape) for p in muon] == [(4, 1, 4, 4), (8, 4, 4, 4)]


def test_a_gan_config_with_muon_loads():
    cfg = load_config({"model": {"type": "dcgan", "width": 4, "latent_dim": 4},
                       "preprocess": {"image": {"standardize": False}},
                       "train": {"optimizer": "muon", "muon": {"lr": 0.05},
                                 "checkpoint": {"monitor": "val_frechet"}, "early_stopping": False}})
    assert (cfg.train.optimizer, cfg.train.muon.lr) == ("muon", 0.05)


def test_a_one_epoch_gan_fit_with_muon_keeps_each_discriminator_groups_lr():
    cfg, model = gan(d_lr_scale=0.5)
    step = GanStep(cfg)
    d_before = model.discriminator.net[2].weight.detach().clone()
    result = fit(model, loaders(), TrainConfig(epochs=1, lr=0.01, optimizer="muon",
                                               muon={"lr": 0.04}, early_stopping=None),
                 TASK, device="cpu", progress=False, step=step)
    row = result.history[0]
    assert math.isfinite(row["d_loss"]) and math.isfinite(row["g_loss"])
    assert type(step.d_optimizer) is Muon
    assert [(g["kind"], g["lr"]) for g in step.d_optimizer.param_groups] == [
        ("sgd", 0.005), ("sgd", 0.005), ("muon", pytest.approx(0.02))]
    assert not torch.equal(model.discriminator.net[2].weight, d_before)
    buffer = step.d_optimizer.state[model.discriminator.net[2].weight]["momentum_buffer"]
    assert float(buffer.abs().sum()) > 0
