"""Batched augmentation: each op's effect, probabilities, and determinism under a generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlforge.config.schema import AugmentConfig
from dlforge.data.augment import Augmenter, build_augmenter, rotate
from dlforge.errors import DataError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(n: int = 16, c: int = 3, h: int = 8, w: int = 8) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=gen(123))


def test_nothing_enabled_gives_none():
    assert build_augmenter(AugmentConfig()) is None
    assert isinstance(build_augmenter(AugmentConfig(noise={})), Augmenter)


@pytest.mark.parametrize(("op", "dims"), [("hflip", (-1,)), ("vflip", (-2,))])
def test_flip_with_p1_is_torch_flip_and_p0_is_identity(op, dims):
    x = batch()
    torch.testing.assert_close(Augmenter(AugmentConfig(**{op: {"p": 1.0}}))(x, gen()),
                               torch.flip(x, dims), rtol=0, atol=0)
    torch.testing.assert_close(Augmenter(AugmentConfig(**{op: {"p": 0.0}}))(x, gen()), x,
                               rtol=0, atol=0)


def test_flip_probability_picks_some_samples():
    x = batch(n=64)
    out = Augmenter(AugmentConfig(hflip={"p": 0.5}))(x, gen())
    flipped = (out == torch.flip(x, (-1,))).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert bool((flipped | kept).all())
    assert int(flipped.sum()) == int((torch.rand(64, generator=gen()) < 0.5).sum())


def test_crop_shifts_each_sample_within_padding():
    x = batch(n=32)
    out = Augmenter(AugmentConfig(crop={"padding": 2, "p": 1.0}))(x, gen())
    padded = F.pad(x, (2, 2, 2, 2))
    offsets = []
    for i in range(len(x)):  # reference check, per sample, in the test only
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])]
        assert matches, i
        offsets.append(matches[0])
    assert len(set(offsets)) > 5  # offsets really vary
    assert torch.equal(Augmenter(AugmentConfig(crop={"padding": 2, "p": 0.0}))(x, gen()), x)


def test_reflect_crop_fills_with_the_mirrored_border():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    cfg = AugmentConfig(crop={"padding": 2, "p": 1.0, "pad_mode": "reflect"})
    out = Augmenter(cfg)(x, gen())
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    windows = [padded[..., dy:dy + 4, dx:dx + 4] for dy in range(5) for dx in range(5)]
    assert any(torch.equal(out, w) for w in windows)
    assert not torch.equal(out, x)  # this seed shifts it
    assert AugmentConfig(crop={}).crop.pad_mode == "zeros"


def test_rotate_by_90_degrees_is_rot90_and_small_angles_stay_close():
    x = batch(h=6, w=6)
    torch.testing.assert_close(rotate(x, torch.full((16,), 90.0)), torch.rot90(x, 1, (2, 3)),
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(rotate(x, torch.zeros(16)), x, rtol=0, atol=1e-6)
    out = Augmenter(AugmentConfig(rotate={"degrees": 30, "p": 1.0}))(x, gen())
    assert out.shape == x.shape and not torch.allclose(out, x)


def test_brightness_adds_one_value_per_sample_within_amount():
    x = batch()
    out = Augmenter(AugmentConfig(brightness={"amount": 0.2, "p": 1.0}))(x, gen())
    delta = (out - x).flatten(1)
    torch.testing.assert_close(delta, delta[:, :1].expand_as(delta), rtol=0, atol=1e-6)
    assert float(delta.abs().max()) <= 0.2
    assert len(torch.unique(delta[:, 0])) == 16


def test_contrast_keeps_each_mean_and_scales_deviations():
    x = batch()
    out = Augmenter(AugmentConfig(contrast={"amount": 0.5, "p": 1.0}))(x, gen())
    mean_in, mean_out = x.mean((1, 2, 3)), out.mean((1, 2, 3))
    torch.testing.assert_close(mean_out, mean_in, rtol=0, atol=1e-6)
    factor = ((out - mean_out.view(-1, 1, 1, 1)) / (x - mean_in.view(-1, 1, 1, 1))).flatten(1)
    torch.testing.assert_close(factor, factor[:, :1].expand_as(factor), rtol=1e-3, atol=1e-3)
    assert float(factor.min()) >= 0.5 - 1e-4 and float(factor.max()) <= 1.5 + 1e-4


def test_noise_has_the_configured_std():
    x = torch.zeros(64, 1, 32, 32)
    out = Augmenter(AugmentConfig(noise={"std": 0.1, "p": 1.0}))(x, gen())
    assert float(out.std()) == pytest.approx(0.1, rel=0.02)
    assert float(out.mean()) == pytest.approx(0.0, abs=0.002)


def test_same_generator_seed_same_output_and_other_seed_differs():
    cfg = AugmentConfig(hflip={}, vflip={}, crop={}, rotate={}, brightness={}, contrast={}, noise={})
    aug, x = Augmenter(cfg), batch()
    first, again, other = aug(x, gen(5)), aug(x, gen(5)), aug(x, gen(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.is_contiguous() and first.dtype == torch.float32
    assert torch.equal(x, batch())  # the input was not modified in place


@pytest.mark.parametrize("op", ["hflip", "vflip", "crop", "rotate", "brightness", "contrast", "noise"])
def test_every_op_with_p0_leaves_the_batch_unchanged(op):
    x = batch()
    out = Augmenter(AugmentConfig(**{op: {"p": 0.0}}))(x, gen())
    assert torch.equal(out, x)


def test_non_image_batch_is_a_data_error():
    with pytest.raises(DataError) as err:
        Augmenter(AugmentConfig(noise={}))(torch.zeros(4, 10), gen())
    assert str(err.value) == ("augment: applies to image batches (N, C, H, W) only, got shape "
                              "(4, 10); remove the augment section for this data")


def test_crop_and_rotate_fill_uncovered_pixels_with_the_background_value():
    background = -0.5  # e.g. a standardized black pixel
    x = torch.full((4, 1, 6, 6), background)
    x[:, :, 2:4, 2:4] = 2.0
    aug = build_augmenter(AugmentConfig(crop={"padding": 2, "p": 1.0}, rotate={"degrees": 30, "p": 1.0}),
                          fill=torch.tensor([background]))
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.min().item() == pytest.approx(background)
    assert (out == 0).sum().item() == 0
