"""build_optimizer: the optimizer kind, its hyperparameters and the no-decay group."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlforge.config import load_config
from dlforge.config.schema import TrainConfig
from dlforge.errors import ConfigError
from dlforge.train.optim import build_optimizer


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3),
                         nn.LayerNorm(3))


def _names(model: nn.Module, params) -> list[str]:
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [by_id[id(p)] for p in params]


@pytest.mark.parametrize(("name", "cls"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                           ("adamw", torch.optim.AdamW),
                                           ("rmsprop", torch.optim.RMSprop)])
def test_kind_and_groups(name, cls):
    model = _model()
    opt = build_optimizer(model, TrainConfig(optimizer=name, lr=0.05, weight_decay=0.01))
    assert type(opt) is cls
    decay, no_decay = opt.param_groups
    assert (decay["name"], decay["weight_decay"], decay["lr"]) == ("decay", 0.01, 0.05)
    assert (no_decay["name"], no_decay["weight_decay"], no_decay["lr"]) == ("no_decay", 0.0, 0.05)
    assert _names(model, decay["params"]) == ["0.weight", "3.weight"]
    assert _names(model, no_decay["params"]) == ["0.bias", "1.weight", "1.bias", "3.bias",
                                                 "4.weight", "4.bias"]


def test_sgd_momentum_and_nesterov():
    opt = build_optimizer(_model(), TrainConfig(optimizer="sgd", momentum=0.8, nesterov=True))
    assert (opt.defaults["momentum"], opt.defaults["nesterov"]) == (0.8, True)


def test_rmsprop_momentum():
    opt = build_optimizer(_model(), TrainConfig(optimizer="rmsprop", momentum=0.5))
    assert opt.defaults["momentum"] == 0.5


def test_fused_on_cpu_where_torch_has_it():
    fused = {name: build_optimizer(_model(), TrainConfig(optimizer=name)).defaults.get("fused")
             for name in ("sgd", "adam", "adamw", "rmsprop")}
    assert fused == {"sgd": True, "adam": True, "adamw": True, "rmsprop": None}


def test_adam_l2_is_coupled_and_adamw_decoupled():
    """One step from w=1 with zero gradient: Adam's L2 goes through the normalised update
    (moves by lr), AdamW shrinks the weight by lr * wd."""
    moved = {}
    for name in ("adam", "adamw"):
        w = nn.Linear(1, 1, bias=False)
        nn.init.ones_(w.weight)
        opt = build_optimizer(w, TrainConfig(optimizer=name, lr=0.1, weight_decay=0.5))
        w.weight.grad = torch.zeros_like(w.weight)
        opt.step()
        moved[name] = w.weight.item()
    assert moved["adam"] == pytest.approx(1 - 0.1, abs=1e-6)
    assert moved["adamw"] == pytest.approx(1 - 0.1 * 0.5, abs=1e-6)


def test_frozen_and_shared_parameters():
    model = _model()
    model[0].requires_grad_(False)
    model.add_module("tied", model[3])  # the same Linear twice: its parameters appear once
    opt = build_optimizer(model, TrainConfig())
    assert [len(g["params"]) for g in opt.param_groups] == [1, 5]


def test_nesterov_needs_momentum():
    with pytest.raises(ConfigError) as err:
        load_config({"train": {"optimizer": "sgd", "nesterov": True, "momentum": 0.0}})
    assert str(err.value) == "train.nesterov: needs train.momentum > 0 (got 0.0)"


def test_no_trainable_parameters():
    model = _model().requires_grad_(False)
    with pytest.raises(ConfigError) as err:
        build_optimizer(model, TrainConfig())
    assert str(err.value) == ("model: has no trainable parameters (got 0 of 8 with "
                              "requires_grad=True); unfreeze at least one layer")


def test_bias_lr_scale_puts_normalization_shifts_in_a_faster_group():
    model = _model()
    opt = build_optimizer(model, TrainConfig(optimizer="sgd", lr=0.05, weight_decay=0.01,
                                             bias_lr_scale=64))
    assert [(g["name"], g["lr"], g["weight_decay"], _names(model, g["params"]))
            for g in opt.param_groups] == [
        ("decay", 0.05, 0.01, ["0.weight", "3.weight"]),
        ("no_decay*64", 3.2, 0.0, ["1.bias", "4.bias"]),
        ("no_decay", 0.05, 0.0, ["0.bias", "1.weight", "3.bias", "4.weight"]),
    ]


def test_decay_biases_decays_every_parameter_at_the_weights_per_step_rate():
    model = _model()
    opt = build_optimizer(model, TrainConfig(optimizer="sgd", lr=0.05, weight_decay=0.01,
                                             bias_lr_scale=64, decay_biases=True))
    assert [(g["name"], g["lr"], g["weight_decay"], _names(model, g["params"]))
            for g in opt.param_groups] == [
        ("decay", 0.05, 0.01, ["0.weight", "3.weight"]),
        ("decay_bias*64", 3.2, 0.01 / 64, ["1.bias", "4.bias"]),
        ("decay_bias", 0.05, 0.01, ["0.bias", "1.weight", "3.bias", "4.weight"]),
    ]
    x = torch.zeros(2, 4)
    model(x).sum().mul(0).backward()  # zero gradients: one step is the decay alone
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    for name, param in model.named_parameters():  # each shrinks by lr x decay = 0.0005
        torch.testing.assert_close(param.detach(), before[name] * (1 - 0.05 * 0.01))


def test_bias_lr_scale_must_be_positive():
    with pytest.raises(ConfigError) as err:
        load_config({"train": {"bias_lr_scale": 0}})
    assert str(err.value) == "train.bias_lr_scale: must be greater than 0 (got 0)"
