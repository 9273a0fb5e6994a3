"""The GAN's quality measures: Frechet distance, confidence and class coverage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlforge.evaluate.gan_quality import FeatureSpace, coverage, frechet_distance


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    b = rng.normal(size=(4000, 3)) * 2.0 + np.array([1.0, 0.0, 0.0])
    # ||mu||^2 = 1; trace terms 3 * (1 + 4 - 2 * 2) = 3, up to sampling error
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_with_fewer_samples_than_features_is_finite():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(10, 32)), rng.normal(size=(10, 32)) + 1.0
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 32 * 0.5


def test_coverage_counts_the_classes_generated_and_the_confidence():
    probs = np.array([[0.7, 0.2, 0.1, 0.0]] * 6 + [[0.1, 0.1, 0.8, 0.0]] * 2)
    # shares 6/8 and 2/8, each >= 1/8; classes 1 and 3 never predicted: mode collapse
    assert coverage(probs) == {"confidence": pytest.approx(0.725), "class_coverage": 0.5,
                               "class_counts": [6, 0, 2, 0]}


def test_feature_space_uses_the_inputs_of_the_head():
    torch.manual_seed(0)
    body, head = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU()), nn.Linear(3, 2)
    space = FeatureSpace(nn.Sequential(body, head), torch.device("cpu"), batch_size=2)
    x = torch.rand(5, 1, 2, 2)
    feats, probs = space.embed(x)
    with torch.no_grad():
        np.testing.assert_allclose(feats, body(x).numpy(), rtol=1e-6)
        np.testing.assert_allclose(probs, torch.softmax(head(body(x)), 1).numpy(), rtol=1e-6)
    assert space.frechet(x, x) == {"frechet": pytest.approx(0.0, abs=1e-9)}
