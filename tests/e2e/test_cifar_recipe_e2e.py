"""End to end: examples/cifar10.yaml through `dlforge run` on tiny synthetic 32x32 colour
images (an npz instead of the CIFAR batches; its alternating flip included), then the
registered bundle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_cli_e2e import cli

pytestmark = pytest.mark.e2e


def colour_images(path, n: int = 240) -> None:
    """Three classes told apart by which colour channel is bright, on noise (N, 32, 32, 3)."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    x = rng.integers(0, 80, (n, 32, 32, 3), dtype=np.uint8)
    x[np.arange(n), :, :, y] += 150
    np.savez(path, x_train=x, y_train=y)


def run_on_colours(tmp_path, example: str, lr: float):
    """`dlforge run examples/<example>` on 240 colour images: a small net, 3 epochs of batch
    32 at `lr`. Returns the workspace."""
    colour_images(tmp_path / "colours.npz")
    workspace = tmp_path / "ws"
    cli(workspace, "run", f"examples/{example}", "--quiet", "--set", "data.source=npz",
        "--set", f"data.path={tmp_path / 'colours.npz'}", "--set", "data.name=null",
        "--set", "model.widths=[8,16]", "--set", "train.epochs=3", "--set", "train.batch_size=32",
        "--set", f"train.lr={lr}")
    return workspace


def test_the_recipe_runs_registers_and_serves_its_whitened_ema_model(tmp_path):
    # the recipe's lr scales with the batch: 1.5 x 32 / 1024
    workspace = run_on_colours(tmp_path, "cifar10.yaml", lr=0.047)
    import dlforge
    from dlforge.models.airbench import Whitening
    from dlforge.registry import Store

    store = Store.open(workspace)
    version = store.resolve("cifar10-airbench@staging")
    assert dict(version.metrics["headline"])["accuracy"] >= 0.9  # chance is 1/3
    assert store.get_run(version.run_id).config["augment"]["hflip"] == {"p": 0.5, "alternate": True}
    predictor = dlforge.registry.load("cifar10-airbench@staging", workspace=workspace)
    model = predictor.bundle.model
    assert (model.test_flip, model.tta_translate, model.whiten_bias_epochs) == (True, True, 3)
    # the bundle holds the whitening filters fitted to the training images, not the identity
    assert not torch.equal(model.stem.weight, Whitening(3, 2).weight)
    images = np.load(tmp_path / "colours.npz")["x_train"].transpose(0, 3, 1, 2)
    scores = predictor.predict_scores(images)  # through the bundle: preprocessing, test flip
    assert scores.shape == (240, 3)
    assert (scores.argmax(1) == np.arange(240) % 3).mean() >= 0.9


def test_the_muon_recipe_runs_and_registers_its_model(tmp_path):
    # the SGD part's lr scales with the batch: 1.656 x 32 / 2000; Muon's does not
    workspace = run_on_colours(tmp_path, "cifar10_muon.yaml", lr=0.0265)
    from dlforge.registry import Store

    store = Store.open(workspace)
    version = store.resolve("cifar10-airbench-muon@staging")
    assert dict(version.metrics["headline"])["accuracy"] >= 0.9  # chance is 1/3
    stored = store.get_run(version.run_id).config["train"]
    assert (stored["optimizer"], stored["muon"]["ns_steps"], stored["schedule"]["type"]) == (
        "muon", 3, "linear")
