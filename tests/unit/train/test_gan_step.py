"""The GAN step in the one fit loop: its losses, its two optimizers and the discriminator's
LR, what it logs, and a resume after SIGKILL that ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import math
import os
import signal

import pytest
import torch
from test_resume_killed import _untimed, killed_beside

from dlforge.config.schema import DCGANConfig, TrainConfig
from dlforge.data.dataset import TaskSpec
from dlforge.data.loader import BatchLoader, Loaders
from dlforge.models.registry import build_model
from dlforge.train.callbacks import Callback
from dlforge.train.gan_step import GanStep
from dlforge.train.loop import TrainResult, fit

TASK = TaskSpec("multiclass", ("a", "b"))


def loaders(n: int = 64) -> Loaders:
    g = torch.Generator().manual_seed(0)
    x, xv = torch.rand(n, 1, 8, 8, generator=g), torch.rand(32, 1, 8, 8, generator=g)
    y, yv = torch.randint(0, 2, (n,), generator=g), torch.randint(0, 2, (32,), generator=g)
    return Loaders(train=BatchLoader(x, y, batch_size=16, shuffle=True, seed=3),
                   val=BatchLoader(xv, yv, batch_size=16))


def gan(**cfg):
    torch.manual_seed(1)
    model_cfg = DCGANConfig(width=4, latent_dim=8, **cfg)
    return model_cfg, build_model(model_cfg, input_shape=(1, 8, 8), num_outputs=2)


def mean_gap(real, fake):
    """A stand-in for the Frechet distance: the gap between the mean pixels."""
    return {"frechet": abs(float(real.mean()) - float(fake.mean()))}


def train(ckpt_dir=None, *, kill=False, resume=False, epochs=4, **model_cfg) -> TrainResult:
    cfg, model = gan(**model_cfg)
    train_cfg = TrainConfig(epochs=epochs, lr=0.01, schedule={"type": "cosine"},
                            early_stopping={"monitor": "val_frechet", "patience": 10,
                                            "restore_best": False},
                            checkpoint={"monitor": "val_frechet"})
    return fit(model, loaders(), train_cfg, TASK, seed=5, device="cpu", progress=False,
               step=GanStep(cfg, mean_gap), checkpoint_dir=ckpt_dir,
               callbacks=[KillAt()] if kill else [],
               resume_from=ckpt_dir / "last.pt" if resume else None)


class KillAt(Callback):
    """SIGKILL this process in epoch 2, after epoch 1's checkpoint was written."""

    def on_epoch_end(self, epoch, logs, state):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)


def test_both_losses_and_the_frechet_distance_are_logged_every_epoch():
    result = train(epochs=2)
    assert [sorted(row) for row in result.history] == [sorted(
        ["epoch", "d_loss", "g_loss", "val_d_loss", "val_g_loss", "val_frechet", "lr",
         "epoch_time_s", "samples_per_s"])] * 2
    assert all(math.isfinite(row["val_frechet"]) for row in result.history)
    assert len(result.lr_history) == 2 * 4  # the generator's steps: 4 batches an epoch


@pytest.mark.parametrize("d_steps", [1, 3])
def test_d_steps_discriminator_updates_per_generator_update(d_steps):
    cfg, model = gan(d_steps=d_steps)
    step = GanStep(cfg)
    fit(model, loaders(), TrainConfig(epochs=1, early_stopping=None), TASK, device="cpu",
        progress=False, step=step)
    d_param = next(model.discriminator.parameters())
    g_param = next(model.generator.parameters())
    assert int(step.d_optimizer.state[d_param]["step"]) == 4 * d_steps
    assert set(step.d_optimizer.state) <= set(model.discriminator.parameters())
    # the loop's optimizer (and schedule) is the generator's: 4 batches, one step each
    assert g_param not in step.d_optimizer.state


def test_the_discriminator_lr_follows_the_generators_schedule_scaled():
    cfg, model = gan(d_lr_scale=0.5)
    step = GanStep(cfg)
    result = fit(model, loaders(), TrainConfig(epochs=2, lr=0.01, schedule={"type": "cosine"},
                                               early_stopping=None),
                 TASK, device="cpu", progress=False, step=step)
    last_g_lr = result.lr_history[-1]
    assert [g["lr"] for g in step.d_optimizer.param_groups] == [0.5 * last_g_lr] * len(
        step.d_optimizer.param_groups)


def test_non_saturating_and_hinge_losses():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 0.0])
    bce = GanStep(DCGANConfig())
    softplus = torch.nn.functional.softplus
    want_d = (softplus(-real).mean() + softplus(fake).mean()).item()
    assert bce.d_loss(real, fake).item() == pytest.approx(want_d)
    assert bce.g_loss(fake).item() == pytest.approx(softplus(-fake).mean().item())
    smooth = GanStep(DCGANConfig(label_smoothing=0.2))
    # BCE(logit 0, target 0.8) is log 2 whatever the target; logit 2 against 0.8:
    want = (0.8 * softplus(torch.tensor(-2.0)) + 0.2 * softplus(torch.tensor(2.0))).item()
    assert smooth.d_loss(real, fake).item() == pytest.approx(
        (want + math.log(2)) / 2 + softplus(fake).mean().item())
    hinge = GanStep(DCGANConfig(loss="hinge"))
    assert hinge.d_loss(real, fake).item() == pytest.approx((0 + 1) / 2 + (0 + 1) / 2)
    assert hinge.g_loss(fake).item() == pytest.approx(0.5)


def test_a_killed_gan_run_resumes_to_identical_weights(tmp_path):
    ckpt = tmp_path / "killed"
    reference = killed_beside("test_gan_step", ckpt, lambda: train(tmp_path / "full"))
    saved = torch.load(ckpt / "last.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["step"]["d_optimizer"]["state"]

    resumed = train(ckpt, resume=True)

    assert [row["epoch"] for row in reference.history] == [0, 1, 2, 3]
    assert _untimed(resumed.history) == _untimed(reference.history)
    assert resumed.lr_history == reference.lr_history
    want, got = reference.model.state_dict(), resumed.model.state_dict()
    assert want.keys() == got.keys() and len(want) > 10
    for key in want:
        assert torch.equal(want[key], got[key]), key
