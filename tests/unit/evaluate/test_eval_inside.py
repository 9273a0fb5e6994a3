"""Looking inside a model: blocks, maps, statistics, saliency; hooks only during the call."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from dlforge.config.model_schema import BasicCNNConfig
from dlforge.evaluate.inside import (
    block_maps,
    capturing,
    conv_blocks,
    inspect_model,
    layer_statistics,
    saliency,
)
from dlforge.models.basic_cnn import build


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return build(BasicCNNConfig(filters=[4, 6], dense=8), input_shape=(1, 8, 8), num_outputs=3)


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


def test_each_conv_block_gives_its_maps():
    model = _cnn()
    assert list(conv_blocks(model)) == ["features.0", "features.1"]
    maps = block_maps(model, torch.rand(1, 8, 8))
    assert {name: m.shape for name, m in maps.items()} == {"features.0": (4, 4, 4), "features.1": (6, 2, 2)}


def test_a_dense_model_has_no_blocks_and_says_what_is_shown_instead():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    found = inspect_model(model, torch.ones(4))
    assert found.maps == {} and found.first_layer[0] == "features"
    assert found.first_layer[1].shape == (4,) and found.saliency.shape == (4,)
    assert found.notes == ["no 2-D convolution: per-layer statistics, the first layer's weights "
                           "and the saliency are shown instead of feature maps"]


def test_statistics_show_weights_outputs_and_dead_units():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
        model[0].bias.zero_()
    rows = layer_statistics(model, torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
    assert rows[0] == {"layer": "0", "kind": "Linear", "weight_mean": 0.0,
                       "weight_std": pytest.approx(0.7559, abs=1e-4), "output_mean": 0.0,
                       "output_std": 2.0}  # sample std of 8 outputs
    assert rows[1]["kind"] == "ReLU" and rows[1]["dead_relu"] == 0.5  # units 2 and 3 never fire


def test_saliency_of_a_linear_model_is_its_weights():
    model = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [0.0, 0.0, 0.0]]))
    grads, target = saliency(model, torch.ones(3))
    assert target == 0 and grads.tolist() == [1.0, 2.0, 3.0]


def test_token_ids_have_no_saliency():
    model = nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(6, 2))
    found = inspect_model(model, torch.tensor([1, 2]))
    assert found.saliency is None and found.first_layer[0] == "embeddings"
    norms = found.first_layer[1]
    assert list(found.to_dict()["largest_embedding_norms"]) == np.argsort(-norms)[:10].tolist()
    assert found.notes[-1] == "no saliency: saliency needs float inputs; token ids have no gradient"


def test_no_hook_stays_registered_after_the_call_or_after_an_error():
    model = _cnn()
    inspect_model(model, torch.rand(1, 8, 8), batch=torch.rand(5, 1, 8, 8))
    assert _hooks(model) == 0 and model.training

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    net = nn.Sequential(nn.Linear(2, 2), Boom())
    with pytest.raises(RuntimeError, match="boom"), capturing({"0": net[0]}):
        net(torch.ones(1, 2))
    assert _hooks(net) == 0


def test_inspection_leaves_training_untouched():
    """The same seed trains the same weights whether or not the model was inspected between."""
    def train(inspect: bool) -> torch.Tensor:
        model = _cnn()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.arange(8) % 3
        for _ in range(2):
            if inspect:
                inspect_model(model, x[0], batch=x)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return model.head.weight.detach().clone()

    torch.manual_seed(0)
    plain = train(False)
    torch.manual_seed(0)
    assert torch.equal(plain, train(True))


def test_one_output_value_has_a_spread_of_zero_not_nan():
    # `dlforge inspect` of a binary model: one input through a one-unit head
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warned "degrees of freedom is <= 0"
        rows = layer_statistics(net, torch.ones(1, 2))
    assert rows[-1]["layer"] == "2" and rows[-1]["output_std"] == 0.0


def test_one_weight_has_a_spread_of_zero_not_nan():
    # `dlforge inspect` of a linear model on one feature: its layer has one weight
    net = nn.Sequential(nn.Linear(1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = layer_statistics(net, torch.ones(4, 1))
    with torch.no_grad():
        weight, out = float(net[0].weight), float(net(torch.ones(1, 1)))
    assert rows == [{"layer": "0", "kind": "Linear", "weight_mean": weight, "weight_std": 0.0,
                     "output_mean": out, "output_std": 0.0}]


def test_an_autoencoder_of_table_rows_has_no_saliency():
    """Its reconstruction of 30 features is a vector too: it was explained as 30 'classes'."""
    from dlforge.models.autoencoder import DenseAutoencoder

    found = inspect_model(DenseAutoencoder((30,), hidden=[16], latent_dim=4), torch.ones(30))
    assert (found.saliency, found.target) == (None, None)
    assert found.notes == ["no 2-D convolution: per-layer statistics, the first layer's weights "
                           "are shown instead of feature maps",
                           "no saliency: saliency explains class scores; an autoencoder outputs a "
                           "reconstruction of its input"]
