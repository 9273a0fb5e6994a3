from __future__ import annotations

import torch

from dlforge.config.schema import MLPConfig
from dlforge.models import build_model
from dlforge.models.target_scale import TargetScale, fit_target_scale


def test_outputs_are_mean_plus_std_times_the_network():
    torch.manual_seed(0)
    model = build_model(MLPConfig(hidden=[4]), input_shape=(3,), num_outputs=2, scale_outputs=True)
    assert isinstance(model, TargetScale) and model.family == "dense"
    y = torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    fit_target_scale(model, y)
    assert model.mean.tolist() == [3.0, 10.0]
    assert torch.allclose(model.std, torch.tensor([(8 / 3) ** 0.5, 1.0]))  # constant target: 1
    x = torch.randn(5, 3)
    assert model(x).tolist() == [[3.0, 10.0]] * 5  # the head starts at zero: the training mean
    torch.nn.init.normal_(model.net.head.weight)
    assert torch.allclose(model(x), model.net(x) * model.std + model.mean)
    assert sorted(k for k in model.state_dict() if not k.startswith("net.")) == ["mean", "std"]


def test_one_target_and_unscaled_models():
    model = build_model(MLPConfig(hidden=[4]), input_shape=(3,), num_outputs=1, scale_outputs=True)
    fit_target_scale(model, torch.tensor([100.0, 200.0]))
    assert (model.mean.tolist(), model.std.tolist()) == ([150.0], [50.0])
    assert model(torch.zeros(2, 3)).shape == (2, 1)
    plain = build_model(MLPConfig(hidden=[4]), input_shape=(3,), num_outputs=1)
    assert fit_target_scale(plain, torch.tensor([1.0, 2.0])) is plain
    assert not isinstance(plain, TargetScale)
