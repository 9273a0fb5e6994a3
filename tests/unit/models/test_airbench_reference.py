"""model.type airbench: the knobs that make it airbench94's net (batch norm, dirac init, floor
pooling, test-time translations, the whitening bias's epochs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlforge.config import load_config
from dlforge.config.schema import AirbenchConfig, TrainConfig
from dlforge.data.dataset import TaskSpec
from dlforge.data.loader import BatchLoader, Loaders
from dlforge.errors import ConfigError
from dlforge.models import build_model
from dlforge.train.loop import fit

REFERENCE = {"bn_momentum": 0.4, "bn_eps": 1e-12, "bn_scale": False, "dirac_init": True,
             "pool_floor": True}


def net(size: int = 8, **kwargs):
    torch.manual_seed(0)
    return build_model(AirbenchConfig(widths=[4, 8], **kwargs), input_shape=(3, size, size),
                       num_outputs=3)


def norms(model) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def test_defaults_keep_the_earlier_net():
    model = net()
    assert [(bn.momentum, bn.eps, bn.weight.requires_grad) for bn in norms(model)] == [
        (0.1, 1e-5, True)] * 4
    assert model.whiten_bias_epochs is None and model.tta_translate is False


def test_reference_batch_norm_has_its_statistics_and_a_frozen_scale_of_one():
    model = net(**REFERENCE)
    assert [(bn.momentum, bn.eps, bn.weight.requires_grad, bn.bias.requires_grad)
            for bn in norms(model)] == [(0.4, 1e-12, False, True)] * 4
    assert all(torch.equal(bn.weight, torch.ones(bn.num_features)) for bn in norms(model))


def test_dirac_init_passes_the_input_channels_through_the_first_filters():
    model = net(dirac_init=True)
    first, second = model.features[1][0], model.features[1][4]  # 24 -> 4, then 4 -> 4
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        assert torch.equal(second(x), x)
        assert torch.equal(first.weight[:4], nn.init.dirac_(torch.empty(4, 24, 3, 3)))


@pytest.mark.parametrize(("floor", "sizes"), [(False, [(8, 8), (4, 4)]), (True, [(7, 7), (3, 3)])])
def test_pool_floor_drops_the_odd_border(floor, sizes):
    model = net(size=16, pool_floor=floor)
    h = model.stem(torch.randn(2, 3, 16, 16))  # 15 x 15 after the 2 x 2 whitening
    seen = []
    for block in model.features:
        h = block(h)
        if isinstance(block, nn.Sequential):
            seen.append(tuple(h.shape[-2:]))
    assert seen == sizes


def test_tta_translate_weights_the_views_as_airbench_does():
    model, x = net(tta_translate=True).eval(), torch.randn(2, 3, 8, 8)
    padded = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    with torch.no_grad():
        views = [model.flip_averaged(v) for v in (x, padded[..., :8, :8], padded[..., 2:, 2:])]
        expected = 0.5 * views[0] + 0.25 * views[1] + 0.25 * views[2]
        assert torch.allclose(model(x), expected, atol=1e-6)
        assert not torch.allclose(model(x), views[0], atol=1e-3)
        assert torch.equal(model.train()(x), model.logits(x))


def test_tta_translate_needs_test_flip():
    with pytest.raises(ConfigError) as err:
        load_config({"model": {"type": "airbench", "tta_translate": True, "test_flip": False}})
    assert str(err.value) == ("model.tta_translate: averages flip-averaged "
                              "logits, so it needs model.test_flip: true (got test_flip: false)")


class BiasLog:
    """A callback recording the whitening bias after every epoch."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def on_fit_start(self, state):
        self.seen = [state.model.stem.bias.detach().clone()]

    def on_epoch_end(self, epoch, logs, state):
        self.seen.append(state.model.stem.bias.detach().clone())

    def on_fit_end(self, state):
        pass


def test_the_whitening_bias_trains_for_its_epochs_only():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 8, 8, generator=g), torch.randint(0, 3, (32,), generator=g)
    loaders = Loaders(train=BatchLoader(x, y, batch_size=16, shuffle=True), val=None)
    log = BiasLog()
    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.1, optimizer="sgd", early_stopping=None)
    fit(net(whiten_bias_epochs=2), loaders, cfg, TaskSpec("multiclass", ("a", "b", "c")),
        callbacks=[log], device="cpu", progress=False)
    changed = [not torch.equal(a, b) for a, b in zip(log.seen, log.seen[1:], strict=False)]
    assert changed == [True, True, False, False]
