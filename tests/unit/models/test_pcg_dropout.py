"""`PCGDropout`: torch's dropout arithmetic with masks from numpy's PCG64, seeded by torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlforge.models.pcg_dropout import (
    PCGDropout,
    _bits_for,
    _keep_words,
    keep_noise,
    set_dropout_kernel,
)


def layer(p: float, inplace: bool = False) -> PCGDropout:
    return set_dropout_kernel(nn.Sequential(nn.Dropout(p, inplace=inplace)), pcg=True)[0].train()


@pytest.mark.parametrize(("p", "dtype", "scale"), [
    (0.25, torch.float32, 1 / 0.75), (0.5, torch.float32, 2.0),
    (0.25, torch.bfloat16, 1.3359375),  # 1 / 0.75 rounded to bfloat16, as torch's dropout scales
])
def test_kept_values_are_scaled_as_torch_scales_them_and_the_rest_are_zero(p, dtype, scale):
    x = torch.randn(64, 32).to(dtype)
    torch.manual_seed(0)
    out = layer(p)(x)
    kept = out != 0
    assert out.dtype == dtype
    torch.testing.assert_close(out[kept], x[kept] * torch.tensor(1 / (1 - p), dtype=dtype),
                               atol=0, rtol=0)
    assert torch.tensor(scale, dtype=dtype) == torch.tensor(1 / (1 - p), dtype=dtype)


@pytest.mark.parametrize(("p", "expected"), [
    (0.5, (1, 1)), (0.25, (2, 3)), (0.75, (2, 1)), (0.125, (3, 7)), (0.1, (16, 58982)),
    (1e-6, (16, 65536)),
])
def test_each_element_gets_the_fewest_random_bits_that_make_the_keep_rate_exact(p, expected):
    assert _bits_for(1 - p) == expected


@pytest.mark.parametrize("bits", [1, 2, 3, 16])
def test_the_bit_sliced_comparison_is_the_plain_one(bits):
    rng = np.random.default_rng(bits)
    planes = rng.integers(0, 2**64, size=(bits, 40), dtype=np.uint64, endpoint=False)
    unpacked = [np.unpackbits(plane.view(np.uint8), bitorder="little") for plane in planes]
    numbers = sum(u.astype(np.int64) << (bits - 1 - i) for i, u in enumerate(unpacked))
    for below in (1, 2**bits // 3, 2**bits - 1):
        kept = np.unpackbits(_keep_words(planes, below).view(np.uint8), bitorder="little")
        assert np.array_equal(kept, numbers < below)


@pytest.mark.parametrize("p", [0.1, 0.125, 0.25, 0.5, 0.75, 0.9])
def test_the_keep_rate_is_one_minus_p(p):
    torch.manual_seed(0)
    n = 1_000_000
    kept = float((layer(p)(torch.ones(n)) != 0).float().mean())
    # 5 standard deviations of a binomial mean, plus the 1/65536 rounding of the rate
    assert abs(kept - (1 - p)) < 5 * (p * (1 - p) / n) ** 0.5 + 2**-16


@pytest.mark.parametrize("p", [1e-6, 7e-6])
def test_a_drop_rate_below_one_in_131072_keeps_every_element_scaled(p):
    torch.manual_seed(0)
    out = keep_noise(torch.ones(4, 1000), p)
    assert out.dtype == torch.float32 and out.shape == (4, 1000)
    assert torch.equal(out, torch.full((4, 1000), 1 / (1 - p)))


def test_the_mask_follows_torchs_generator_so_seeds_and_checkpoints_reproduce_it():
    x = torch.ones(4, 1000)
    torch.manual_seed(3)
    first = keep_noise(x, 0.5)
    state = torch.get_rng_state()
    second = keep_noise(x, 0.5)
    assert not torch.equal(first, second)
    torch.manual_seed(3)
    assert torch.equal(keep_noise(x, 0.5), first)
    torch.set_rng_state(state)
    assert torch.equal(keep_noise(x, 0.5), second)


def test_channels_last_inputs_keep_their_layout_and_both_layouts_mask_the_same_memory():
    x = torch.randn(8, 16, 5, 5)
    cl = x.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    noise_cl = keep_noise(cl, 0.25)
    assert noise_cl.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    noise = keep_noise(x, 0.25)
    # the bits are laid down in memory order, so the NHWC noise is the NCHW noise's storage
    assert torch.equal(noise_cl.permute(0, 2, 3, 1).flatten(), noise.flatten())


def test_a_strided_input_gets_a_mask_of_its_shape():
    x = torch.randn(10, 12)[:, ::2]
    torch.manual_seed(0)
    out = layer(0.5)(x)
    assert out.shape == (10, 6)
    assert torch.equal(out[out != 0], x[out != 0] * 2)


def test_the_gradient_is_the_forward_noise():
    x = torch.randn(32, 16, requires_grad=True)
    torch.manual_seed(0)
    out = layer(0.25)(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out / x).detach().nan_to_num(), atol=1e-6, rtol=1e-6)
    assert x.grad.unique().tolist() == [0.0, torch.tensor(1 / 0.75).item()]


def test_eval_mode_p0_p1_and_inplace():
    x = torch.randn(6, 6)
    assert torch.equal(layer(0.5).eval()(x), x)
    assert torch.equal(layer(0.0)(x), x)
    assert torch.equal(layer(1.0)(x), torch.zeros(6, 6))
    y = x.clone()
    torch.manual_seed(0)
    out = layer(0.5, inplace=True)(y)
    assert out is y and torch.equal(out[out != 0], x[out != 0] * 2)


def test_switching_leaves_other_dropouts_and_state_dicts_alone():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1), nn.Dropout2d(0.1))
    keys = list(model.state_dict())
    set_dropout_kernel(model, pcg=True)
    assert [type(m).__name__ for m in model] == ["Linear", "PCGDropout", "Dropout2d"]
    assert list(model.state_dict()) == keys
    set_dropout_kernel(model, pcg=False)
    assert type(model[1]) is nn.Dropout


def test_tensors_off_the_cpu_keep_torchs_dropout():
    out = layer(0.5)(torch.ones(4, 4, device="meta"))
    assert (out.device.type, out.shape) == ("meta", (4, 4))
