"""model.type airbench: the whitening layer, test-time flip, building for prepared data."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from dlforge.candidate.build import build_for_data
from dlforge.config.schema import AirbenchConfig
from dlforge.data.dataset import TaskSpec
from dlforge.errors import ConfigError
from dlforge.models import build_model
from dlforge.models.airbench import Whitening


def net(**kwargs):
    torch.manual_seed(0)
    cfg = AirbenchConfig(widths=[4, 8], **kwargs)
    return build_model(cfg, input_shape=(3, 8, 8), num_outputs=3)


def correlated_images(n: int = 400) -> torch.Tensor:
    """Images whose channels and neighbouring pixels are strongly correlated."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(n, 1, 9, 9, generator=g)
    smooth = F.avg_pool2d(base, 2, stride=1)  # neighbours share 3 of 4 inputs
    return torch.cat([smooth, 2 * smooth + 0.1, smooth - 0.5], 1) + 0.2 * torch.randn(
        n, 3, 8, 8, generator=g)


def test_whitening_starts_as_the_identity_basis_and_its_negative():
    layer = Whitening(3, 2)
    eye = torch.eye(12).view(12, 3, 2, 2)
    assert torch.equal(layer.weight, torch.cat([eye, -eye]))
    assert [name for name, _ in layer.named_parameters()] == ["bias"]
    assert list(layer.state_dict()) == ["bias", "weight"]


def test_fitted_whitening_gives_unit_uncorrelated_patch_features():
    x = correlated_images()
    layer = Whitening(3, 2)
    layer.fit(x)
    with torch.no_grad():
        out = layer(x)[:, :12]  # the first half; the second is its negative
    features = out.permute(0, 2, 3, 1).reshape(-1, 12)
    # airbench's fit: the uncentred second moment of the patches (bias 0 at initialisation)
    second_moment = features.T @ features / len(features)
    # the smallest eigenvalue is 0.0386 here: the 5e-4 added shrinks it by <= 1.3 %
    assert torch.allclose(second_moment, torch.eye(12), atol=0.013)
    assert torch.equal(layer(x)[:, 12:], -(out - layer.bias[:12, None, None]) + layer.bias[12:, None, None])


def test_the_whitening_filters_are_frozen_and_the_rest_trains():
    model = net()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert "stem.weight" not in trainable and "stem.bias" in trainable
    assert "stem.weight" in model.state_dict()


def test_without_whiten_the_stem_is_a_trainable_convolution_of_the_same_shape():
    model = net(whiten=False)
    assert tuple(model.stem.weight.shape) == (24, 3, 2, 2) and model.stem.weight.requires_grad


def test_test_flip_averages_an_image_and_its_mirror_in_eval_mode_only():
    model, x = net().eval(), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), model(x.flip(-1)))
        assert torch.equal(model(x), (model.logits(x) + model.logits(x.flip(-1))) / 2)
        plain = net(test_flip=False).eval()
        assert not torch.equal(plain(x), plain(x.flip(-1)))
        model.train()
        assert torch.equal(model(x), model.logits(x))


def test_patches_larger_than_the_images_are_a_config_error():
    with pytest.raises(ConfigError) as err:
        build_model(AirbenchConfig(whiten_size=3), input_shape=(3, 2, 2), num_outputs=3)
    assert str(err.value) == ("model.whiten_size: patches of 3 px do not fit images of 2x2 px; "
                              "use at most 2")


@dataclass
class FakeData:
    """What `build_for_data` asks of `PreparedData`."""

    x: torch.Tensor
    task: TaskSpec = TaskSpec("multiclass", ("a", "b", "c"))
    vocab_size: None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def inputs(self, split: str) -> torch.Tensor:
        assert split == "train"
        return self.x


def test_building_for_the_data_fits_the_whitening_to_the_training_inputs():
    x = correlated_images()
    model = build_for_data(AirbenchConfig(widths=[4]), FakeData(x))
    reference = Whitening(3, 2)
    reference.fit(x)
    assert torch.equal(model.stem.weight, reference.weight)


def test_whitening_samples_images_evenly_over_a_split_kept_in_class_order(monkeypatch):
    # 3 "classes" of 4 images in source order, each a constant of its own; with 3 images
    # sampled, a prefix would see class 0 only (zero covariance), even spacing sees all three
    from dlforge.models import airbench
    monkeypatch.setattr(airbench, "WHITEN_SAMPLES", 3)
    seen, unfold = [], airbench.F.unfold
    monkeypatch.setattr(airbench.F, "unfold", lambda x, k: seen.append(x[:, 0, 0, 0].tolist()) or
                        unfold(x, k))
    x = torch.cat([torch.full((4, 1, 4, 4), float(c)) for c in range(3)])
    Whitening(1, 2).fit(x)
    assert seen == [[0.0, 1.0, 2.0]]
