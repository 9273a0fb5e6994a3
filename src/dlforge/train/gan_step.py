"""The GAN step: alternating discriminator and generator updates inside the one fit loop.

Two optimizers. The loop's `state.optimizer` is the generator's, so the learning-rate
schedule, `lr_history` and the history's `lr` are the generator's. The discriminator's
optimizer (the same `train.optimizer` settings) is built in `bind` and checkpointed in
`state_dict`, so a run resumed after kill -9 ends exactly as an uninterrupted one; before each
discriminator update the LR of each of its groups is set to `model.d_lr_scale` x the
generator's scheduled LR x the group's starting share (its starting LR over the generator's
first group's), so one schedule drives both and Muon's groups keep `train.muon.lr`.

Per batch: `model.d_steps` discriminator updates (each on fresh z against the same real batch),
then one generator update. Losses: `non_saturating` (D: BCE with real targets 1 -
`label_smoothing`, fake 0; G: BCE of D(G(z)) against 1) or `hinge` (D: relu(1 - D(x)) + relu(1 +
D(G(z))); G: -D(G(z))). z is drawn from torch's global generator, which the loop seeds per
epoch. Validation logs both losses on each validation batch with z from a generator seeded by
the run's seed only (the same z every epoch, so epochs compare), and `frechet` from the
`quality` function the caller gives (the pipeline: the Frechet distance in the features of a
classifier trained on the same data, evaluate/gan_quality.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dlforge.train.optim import build_optimizer
from dlforge.train.schedules import LRSchedule
from dlforge.train.steps import Step, backward_and_step

if TYPE_CHECKING:
    from dlforge.config.schema import DCGANConfig
    from dlforge.train.state import LoopState

Quality = Callable[[Tensor, Tensor], dict[str, float]]  # (real, generated) -> {"frechet": ...}
LOGGED = ("d_loss", "g_loss")
VALIDATED = (*LOGGED, "frechet")


class GanMeter:
    """Sums of one epoch's losses; a validation meter also keeps the real and generated
    images for `quality`."""

    def __init__(self, quality: Quality | None = None, seed: int = 0) -> None:
        self.samples, self.d_sum, self.g_sum = 0, 0.0, 0.0
        self.quality = quality
        self.real: list[Tensor] = []
        self.fake: list[Tensor] = []
        self.latents = torch.Generator().manual_seed(seed)

    def update(self, d_loss: Tensor, g_loss: Tensor, n: int) -> None:
        self.samples += n
        self.d_sum += float(d_loss) * n
        self.g_sum += float(g_loss) * n

    def result(self, prefix: str = "") -> dict[str, float]:
        n = max(self.samples, 1)
        logs = {f"{prefix}d_loss": self.d_sum / n, f"{prefix}g_loss": self.g_sum / n}
        if self.quality is not None and self.real:
            scores = self.quality(torch.cat(self.real).float(), torch.cat(self.fake).float())
            logs |= {f"{prefix}{k}": v for k, v in scores.items()}
        return logs


class GanStep(Step):
    """Generator/discriminator updates of a `model.type: dcgan` model (`models.dcgan.GAN`).

    Args:
        cfg: the model section (loss, label_smoothing, d_steps, d_lr_scale).
        quality: scores validation's real and generated images; None logs no `val_frechet`
            (the pipeline always gives one).

    Example:
        >>> step = GanStep(DCGANConfig(d_steps=2))  # doctest: +SKIP
        >>> train_candidate(TrainingPlan(cfg, data, step=step), device=cpu)  # doctest: +SKIP
    """

    def __init__(self, cfg: DCGANConfig, quality: Quality | None = None) -> None:
        self.cfg = cfg
        self.quality = quality
        self.d_optimizer: torch.optim.Optimizer | None = None
        self.d_base_lrs: list[float] = []  # each discriminator group's starting LR

    def with_quality(self, quality: Quality) -> GanStep:
        """The same step, scoring validation with `quality`."""
        return GanStep(self.cfg, quality)

    def logged(self, task_kind: str) -> tuple[str, ...]:
        return LOGGED

    def validated(self, task_kind: str) -> tuple[str, ...]:
        return VALIDATED

    def meter(self, state: LoopState) -> GanMeter:
        return GanMeter(self.quality, state.seed)

    def bind(self, state: LoopState) -> None:
        gan = state.model
        state.optimizer = build_optimizer(gan.generator, state.cfg)
        state.schedule = LRSchedule(state.optimizer, state.cfg, state.schedule.steps_per_epoch)
        state.trainable = [p for p in gan.generator.parameters() if p.requires_grad]
        self.d_optimizer = build_optimizer(gan.discriminator, state.cfg)
        self.d_base_lrs = [group["lr"] for group in self.d_optimizer.param_groups]
        self.d_params = [p for p in gan.discriminator.parameters() if p.requires_grad]

    def train_batch(self, state: LoopState, xb: Tensor, yb: Tensor, meter: GanMeter) -> None:
        gan, n = state.model, xb.shape[0]
        g_first = state.optimizer.param_groups[0]
        lr = g_first["lr"] * self.cfg.d_lr_scale
        # each group keeps its starting LR's share (Muon's groups start at train.muon.lr,
        # normalization shifts at train.bias_lr_scale x train.lr)
        for group, base in zip(self.d_optimizer.param_groups, self.d_base_lrs, strict=True):
            group["lr"] = lr * (base / g_first["initial_lr"])
        for _ in range(self.cfg.d_steps):
            with torch.no_grad():
                fake = gan.generator(torch.randn(n, gan.latent_dim, device=state.device))
            with state.precision.autocast(state.device):
                d_loss = self.d_loss(gan.discriminator(xb).float(), gan.discriminator(fake).float())
            backward_and_step(state, d_loss, self.d_optimizer, self.d_params)
        gan.discriminator.requires_grad_(False)  # G's update needs no gradients of D's weights
        try:
            with state.precision.autocast(state.device):
                fake = gan.generator(torch.randn(n, gan.latent_dim, device=state.device))
                g_loss = self.g_loss(gan.discriminator(fake).float())
            backward_and_step(state, g_loss, state.optimizer, state.trainable)
        finally:
            gan.discriminator.requires_grad_(True)
        meter.update(d_loss.detach(), g_loss.detach(), n)

    def eval_batch(self, state: LoopState, xb: Tensor, yb: Tensor, meter: GanMeter) -> None:
        gan, n = state.model, xb.shape[0]
        z = torch.randn(n, gan.latent_dim, generator=meter.latents).to(state.device)
        with state.precision.autocast(state.device):
            fake = gan.generator(z)
            real_logits, fake_logits = gan.discriminator(xb).float(), gan.discriminator(fake).float()
        meter.update(self.d_loss(real_logits, fake_logits), self.g_loss(fake_logits), n)
        if meter.quality is not None:
            meter.real.append(xb.cpu())
            meter.fake.append(fake.cpu())

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """The discriminator's loss on its logits for real and generated images."""
        if self.cfg.loss == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        target = torch.full_like(real, 1.0 - self.cfg.label_smoothing)
        return (F.binary_cross_entropy_with_logits(real, target)
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def g_loss(self, fake: Tensor) -> Tensor:
        """The generator's loss on the discriminator's logits for its images."""
        if self.cfg.loss == "hinge":
            return -fake.mean()
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))

    def state_dict(self) -> dict[str, Any]:
        return {"d_optimizer": self.d_optimizer.state_dict()} if self.d_optimizer else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "d_optimizer" in state_dict:
            self.d_optimizer.load_state_dict(state_dict["d_optimizer"])
