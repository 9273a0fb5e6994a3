"""The premise of the kernel-switch tests' Adam comparisons (tiny_fit.py): no weight of the tiny
fit is near-silenced, so fp32 rounding differences between two kernels stay rounding-sized."""

from __future__ import annotations

import pytest
import torch
from tests.unit.train.tiny_fit import ADAM_SCALE_FLOOR, adam_scale_floor, fit_tiny_cnn


def test_adam_divides_by_no_running_scale_near_eps():
    gradients = []
    fit_tiny_cnn(gradients, optimizer="adam")
    assert len(gradients) == 4 and len(gradients[0]) == 12  # 2 epochs x 2 batches; 12 tensors
    assert adam_scale_floor(gradients) >= ADAM_SCALE_FLOOR


def test_the_floor_is_the_smallest_non_zero_running_scale():
    steps = [{"w": torch.tensor([0.0, 3e-8, 2.0])}, {"w": torch.tensor([0.0, 0.0, 1.0])}]
    # second step: v_hat = (0.999 * 0.001 * 9e-16) / (1 - 0.999 ** 2) for the middle weight
    expected = (0.999 * 0.001 * 9e-16 / (1 - 0.999 ** 2)) ** 0.5
    assert adam_scale_floor(steps) == pytest.approx(expected, rel=1e-5)
    assert adam_scale_floor(steps[:1]) == pytest.approx(3e-8, rel=1e-5)
