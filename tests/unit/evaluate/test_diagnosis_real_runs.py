"""The calibrated diagnosis on real training runs (issue 20): the defaults fit digits and
Fashion-MNIST well; a 2-unit MLP underfits; a large unregularized MLP on 300 samples overfits.

Small subsets and a fixed number of epochs (the default model, `model: auto`) keep each run
short; Fashion-MNIST needs its IDX files (Debian's
dataset-fashion-mnist package), else those tests are skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlforge.candidate import TrainingPlan, train_candidate
from dlforge.config import load_config
from dlforge.data.prepare import prepare_data

pytestmark = pytest.mark.slow
FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                                   reason="needs the Fashion-MNIST IDX files (dataset-fashion-mnist)")
FASHION_DATA = {"source": "idx", "name": "fashion_mnist", "path": str(FASHION)}


def _verdict(raw: dict) -> str:
    cfg = load_config({**raw, "train": {"num_threads": 1, **raw.get("train", {})},
                       "evaluate": {"baseline": False}})
    candidate = train_candidate(TrainingPlan(cfg, prepare_data(cfg)), device=torch.device("cpu"))
    return candidate.validation.diagnosis.verdict


def test_digits_with_the_defaults_is_a_good_fit():
    assert _verdict({"data": {"source": "builtin", "name": "digits", "limit": 900},
                     "train": {"epochs": 15}}) == "good fit"


@needs_fashion
def test_fashion_mnist_with_the_defaults_is_a_good_fit():
    # 10 epochs: final train accuracy ~0.80, clear of the 0.775 underfitting line for any
    # dropout masks (8 epochs ended at 0.774-0.781 with three mask generators: a coin toss)
    assert _verdict({"data": {**FASHION_DATA, "limit": 2000}, "train": {"epochs": 10}}) == "good fit"


def test_a_two_unit_mlp_underfits_digits():
    assert _verdict({"data": {"source": "builtin", "name": "digits", "limit": 900},
                     "model": {"type": "mlp", "hidden": [2]}, "train": {"epochs": 10}}) \
        == "underfitting"


@needs_fashion
def test_a_large_unregularized_mlp_on_300_samples_overfits():
    assert _verdict({"data": {**FASHION_DATA, "limit": 600, "val_fraction": 0.25,
                              "test_fraction": 0.25},
                     "model": {"type": "mlp", "hidden": [512, 512]},
                     "train": {"epochs": 30, "early_stopping": False}}) == "overfitting"
