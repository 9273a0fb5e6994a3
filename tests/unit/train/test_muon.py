"""train.optimizer: muon: the Newton-Schulz iteration, which parameters Muon takes, its step,
weight normalization, the SGD part, the schedule, checkpoints and a tiny fit."""

from __future__ import annotations

import copy

import pytest
import torch
from test_ema import assert_resume_ends_as_uninterrupted
from test_loop_support import TASKS, make_data, make_loaders, tiny_model, train_cfg
from torch import nn

from dlforge.config.schema import TrainConfig
from dlforge.train.loop import fit
from dlforge.train.muon import Muon, muon_parameters, newton_schulz
from dlforge.train.optim import LR_SCALE, build_optimizer
from dlforge.train.schedules import LRSchedule


def conv_net() -> nn.Module:
    """Conv (with bias) -> BN -> conv -> pool -> dense -> head, plus an unused embedding."""
    torch.manual_seed(0)
    net = nn.Module()
    net.features = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                 nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.ReLU(),
                                 nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(6, 5))
    net.embed = nn.Embedding(7, 3)
    net.head = nn.Linear(5, 3)
    net.forward = lambda x: net.head(net.features(x))
    return net


def names(model: nn.Module, params) -> list[str]:
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [by_id[id(p)] for p in params]


def muon_cfg(**muon) -> TrainConfig:
    return TrainConfig(optimizer="muon", lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.01,
                       muon={"lr": 0.2, "momentum": 0.6, "ns_steps": 3, **muon})


@pytest.mark.parametrize("shape", [(64, 288), (288, 64)])
@pytest.mark.parametrize("steps", [3, 5])
def test_newton_schulz_singular_values_within_half_and_three_halves(shape, steps):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    out = newton_schulz(g, steps)
    s = torch.linalg.svdvals(out)
    assert out.shape == shape and out.dtype == torch.float32
    assert 0.5 < float(s.min()) and float(s.max()) < 1.5
    assert float(torch.linalg.svdvals(g).min() / torch.linalg.svdvals(g).max()) < 0.6  # it did work


def test_newton_schulz_ignores_the_scale_and_keeps_the_dtype():
    g = torch.randn(6, 10, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(newton_schulz(g, 5), newton_schulz(1000 * g, 5), atol=1e-5)
    assert newton_schulz(g.double(), 5).dtype == torch.float64


def test_groups_hidden_matrices_to_muon_the_rest_to_sgd():
    net = conv_net()
    opt = build_optimizer(net, muon_cfg())
    assert type(opt) is Muon
    got = [(g["name"], g["kind"], g["lr"], g["weight_decay"], names(net, g["params"]))
           for g in opt.param_groups]
    assert got == [
        ("decay", "sgd", 0.1, 0.01, ["embed.weight", "head.weight"]),
        ("no_decay", "sgd", 0.1, 0.0, ["features.0.bias", "features.1.weight", "features.1.bias",
                                      "features.7.bias", "head.bias"]),
        ("muon", "muon", 0.2, 0.0, ["features.0.weight", "features.3.weight", "features.7.weight"]),
    ]
    sgd, muon = opt.param_groups[0], opt.param_groups[2]
    assert (sgd["momentum"], sgd["nesterov"], sgd["fused"]) == (0.5, True, True)
    assert (muon["momentum"], muon["nesterov"], muon["ns_steps"], muon["normalize_weights"]) == (
        0.6, True, 3, False)


def test_without_a_head_the_last_linear_is_the_output_layer():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert names(net, muon_parameters(net)) == ["0.weight"]


def test_an_lr_scaled_backbone_gets_a_scaled_muon_group():
    net = conv_net()
    setattr(net.features[0].weight, LR_SCALE, 0.1)
    muon_groups = [g for g in build_optimizer(net, muon_cfg()).param_groups if g["kind"] == "muon"]
    assert [(g["name"], g["lr"], names(net, g["params"])) for g in muon_groups] == [
        ("muon", 0.2, ["features.3.weight", "features.7.weight"]),
        ("muon*0.1", pytest.approx(0.02), ["features.0.weight"])]


def one_step(**muon) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weight before, its gradient, weight after) of a 4x2x3x3 filter bank, one Muon step."""
    w = nn.Parameter(torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(2)))
    before = w.detach().clone()
    opt = Muon([{"params": [w], "kind": "muon", "momentum": 0.6, "nesterov": True,
                 "ns_steps": 3, **muon}], lr=0.25)
    w.grad = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(3))
    opt.step()
    return before, w.grad, w.detach()


def test_a_step_moves_filters_by_lr_times_the_orthogonalized_nesterov_update():
    before, grad, after = one_step()
    # first step: buffer = g; Nesterov update = g + 0.6 g
    expected = before - 0.25 * newton_schulz((grad + 0.6 * grad).reshape(4, 18), 3).view(4, 2, 3, 3)
    assert torch.allclose(after, expected, atol=1e-6)
    assert not torch.allclose(after, before, atol=1e-2)


def test_normalized_weights_are_rescaled_to_sqrt_out_channels_before_the_step():
    before, grad, after = one_step(normalize_weights=True)
    _, _, plain = one_step()
    rescaled = before * (2.0 / before.norm())  # sqrt(4 output channels)
    assert torch.allclose(after, rescaled + (plain - before), atol=1e-6)
    assert float(before.norm()) != pytest.approx(2.0, abs=0.1)


def test_decoupled_weight_decay_shrinks_before_the_step():
    before, _, after = one_step(weight_decay=0.4)
    _, _, plain = one_step()
    assert torch.allclose(after, before * (1 - 0.25 * 0.4) + (plain - before), atol=1e-6)


def test_sgd_groups_step_exactly_as_torch_sgd():
    net, twin = conv_net(), conv_net()
    opt = build_optimizer(net, muon_cfg())
    head_groups = [g for g in opt.param_groups if g["kind"] == "sgd"]
    ref = torch.optim.SGD([{"params": [dict(twin.named_parameters())[n] for n in
                                       names(net, g["params"])], "weight_decay": g["weight_decay"]}
                           for g in head_groups], lr=0.1, momentum=0.5, nesterov=True)
    for model in (net, twin):  # Muon's weights stay put, so both see the same gradients
        for p in muon_parameters(model):
            p.requires_grad_(False)
    x = torch.randn(8, 2, 5, 5, generator=torch.Generator().manual_seed(4))
    for _ in range(3):
        for model, o in ((net, opt), (twin, ref)):
            o.zero_grad()
            model(x).square().mean().backward()
            o.step()
    assert torch.equal(net.head.weight, twin.head.weight)
    assert torch.equal(net.features[1].bias, twin.features[1].bias)
    assert not torch.equal(net.head.weight, conv_net().head.weight)  # it trained


def test_the_schedule_scales_muon_and_sgd_groups_alike():
    opt = build_optimizer(conv_net(), muon_cfg().model_copy(update={"schedule": {"type": "linear"}}))
    cfg = TrainConfig(optimizer="muon", lr=0.1, epochs=2, schedule={"type": "linear"})
    schedule = LRSchedule(opt, cfg, steps_per_epoch=2)
    lrs = []
    for _ in range(4):
        lrs.append([round(g["lr"], 6) for g in opt.param_groups])
        opt.step()
        schedule.step()
    assert lrs == [[0.1, 0.1, 0.2], [0.075, 0.075, 0.15], [0.05, 0.05, 0.1], [0.025, 0.025, 0.05]]


def test_state_dict_round_trips():
    x = torch.randn(8, 2, 5, 5, generator=torch.Generator().manual_seed(5))
    nets = [conv_net(), conv_net()]
    opts = [build_optimizer(n, muon_cfg(normalize_weights=True)) for n in nets]

    def train(net, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()

    train(nets[0], opts[0], 2)
    nets[1].load_state_dict(nets[0].state_dict())
    opts[1].load_state_dict(copy.deepcopy(opts[0].state_dict()))  # as through a file: no aliasing
    assert opts[1].param_groups[2]["kind"] == "muon" and len(opts[1].state) == 9  # all but the unused embedding
    for net, opt in zip(nets, opts, strict=True):
        train(net, opt, 2)
    for (key, a), b in zip(nets[0].state_dict().items(), nets[1].state_dict().values(), strict=True):
        assert torch.equal(a, b), key


def run(cfg, **kwargs):
    x, y = make_data("multiclass")
    return fit(tiny_model("multiclass"), make_loaders(x, y), cfg, TASKS["multiclass"],
               progress=False, **kwargs)


def test_a_resumed_run_ends_as_the_uninterrupted_one(tmp_path):
    cfg = train_cfg(epochs=4, optimizer="muon", lr=0.05, momentum=0.9, nesterov=True,
                    muon={"lr": 0.05, "ns_steps": 3})
    assert_resume_ends_as_uninterrupted(run, cfg, tmp_path)


def test_a_tiny_fit_decreases_the_loss():
    result = run(train_cfg(epochs=5, optimizer="muon", lr=0.2, muon={"lr": 0.1}))
    losses = [r["loss"] for r in result.history]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.3 * losses[0]
    assert result.history[-1]["val_accuracy"] == 1.0
