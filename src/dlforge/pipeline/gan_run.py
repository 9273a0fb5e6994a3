"""The stages of a GAN run (`model.type: dcgan`) after data preparation.

1. A `basic_cnn` classifier is trained on the same data (`model.classifier_epochs`, through
   `train_candidate`, with its own progress lines under a `gan:` heading): its penultimate features are the space the Frechet distance is measured
   in (evaluate/gan_quality.py; no Inception weights are downloaded). Seeded, so a resumed run
   trains the same classifier again.
2. The GAN trains through `train_candidate` with the GAN step (train/gan_step.py), whose
   validation logs `val_frechet` every epoch, and a callback saving a grid of samples from a
   FIXED latent batch every epoch (`samples/epoch_NNN.png` in the run's folder).
3. Test, once: Frechet distance of generated images against half of the test split, beside
   the floor (the other half of the test split) and the ceiling (the untrained generator), all
   on the same sample sizes; the classifier's confidence and class coverage of generated images.
4. Report (loss curves, Frechet distance per epoch, the grids over time), register.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dlforge.atomic import atomic_open
from dlforge.candidate import Candidate, TrainingPlan, train_candidate
from dlforge.candidate.build import build_for_data
from dlforge.config.model_schema import GAN_TYPE
from dlforge.config.schema import BasicCNNConfig, TrainConfig
from dlforge.evaluate.gan_quality import FeatureSpace
from dlforge.models.dcgan import GAN
from dlforge.registry.model_kind import check_model_kind
from dlforge.registry.predictor import load
from dlforge.report.html import ReportData, write_report
from dlforge.report.plots import image_grid_png, learning_curves_png
from dlforge.runtime import seed_everything
from dlforge.train.callbacks import Callback
from dlforge.train.gan_step import GanStep

if TYPE_CHECKING:
    from dlforge.config import RunConfig
    from dlforge.data.prepare import PreparedData
    from dlforge.train.state import LoopState

GRID_COLUMNS = 8
HEADLINE = ("frechet", "frechet_floor", "frechet_ceiling", "confidence", "class_coverage")


class SampleGrids(Callback):
    """Every epoch, a grid of the generator's images from one fixed latent batch, written
    atomically to `folder/epoch_NNN.png` (epochs from 1), so the grids compare across epochs."""

    def __init__(self, folder: Path, latents: torch.Tensor) -> None:
        self.folder, self.latents = Path(folder), latents

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState) -> None:
        with atomic_open(self.folder / f"epoch_{epoch + 1:03d}.png", "wb") as fh:
            fh.write(grid_png(generate(state.model, self.latents)))


@dataclass(frozen=True)
class GanEvaluation:
    """What the test split says of a trained GAN (the register stage reads it like a
    classifier's `Evaluation`: `summary_metrics()`, `threshold`, `trained_on`)."""

    test_metrics: dict[str, Any]
    trained_on: dict[str, Any]
    threshold: None = None

    def summary_metrics(self) -> dict[str, Any]:
        return {"headline": self.test_metrics["headline"], "test": self.test_metrics,
                "trained_on": self.trained_on}


def step_for(cfg: RunConfig) -> GanStep | None:
    """The fit loop's step of `cfg`: the GAN step for `model.type: dcgan`, else None (the
    supervised default)."""
    return GanStep(cfg.model) if cfg.model.type == GAN_TYPE else None


def generate(gan: torch.nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """The generator's images (CPU, float) for `latents`, in eval mode; the mode is restored."""
    was_training = gan.training
    gan.eval()
    try:
        with torch.inference_mode():
            device = next(gan.parameters()).device
            return gan.generator(latents.to(device)).float().cpu()
    finally:
        gan.train(was_training)


def grid_png(images: torch.Tensor) -> bytes:
    """Images `(N, C, H, W)` in [0, 1] as one PNG grid, 8 per row."""
    return image_grid_png(images.numpy(), [""] * len(images), columns=GRID_COLUMNS)


def fixed_latents(n: int, latent_dim: int, seed: int) -> torch.Tensor:
    """The latent batch every grid of a run is drawn from (depends on the seed only)."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


def classifier_config(cfg: RunConfig) -> RunConfig:
    """The run's config with a default `basic_cnn` trained for `model.classifier_epochs`."""
    train = TrainConfig(epochs=cfg.model.classifier_epochs, batch_size=cfg.train.batch_size,
                        num_threads=cfg.train.num_threads)
    return cfg.model_copy(update={"model": BasicCNNConfig(), "train": train})


def train_gan(plan: TrainingPlan, run_dir: Path, *, device: torch.device, progress: bool,
              resume_from: Path | None) -> tuple[Candidate, FeatureSpace]:
    """Train the feature classifier, then the GAN (step 1 and 2 of the module docstring)."""
    cfg, data = plan.config, plan.data
    if progress:  # two trainings: say which one the epoch lines belong to
        print(f"gan: training the feature classifier first (basic_cnn, epochs: "
              f"{cfg.model.classifier_epochs}; its features measure the Frechet distance)",
              file=sys.stderr)
    classifier = train_candidate(TrainingPlan(classifier_config(cfg), data), device=device,
                                 progress=progress)
    if progress:
        print(f"gan: training the GAN (epochs: {cfg.train.epochs})", file=sys.stderr)
    space = FeatureSpace(classifier.model, device)
    grids = SampleGrids(run_dir / "samples", fixed_latents(cfg.model.grid, cfg.model.latent_dim,
                                                           cfg.seed))
    gan_plan = replace(plan, step=plan.step.with_quality(space.frechet),
                       callbacks=(*plan.callbacks, grids))
    candidate = train_candidate(gan_plan, device=device, progress=progress,
                                checkpoint_dir=run_dir / "checkpoints", resume_from=resume_from)
    return candidate, space


def evaluate_gan(candidate: Candidate, data: PreparedData, space: FeatureSpace) -> GanEvaluation:
    """Step 3 of the module docstring, on `len(test) // 2` images each."""
    cfg = candidate.config
    test = data.inputs("test")
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(cfg.seed))
    half = len(test) // 2
    real, other = test[order[:half]], test[order[half:2 * half]]
    latents = fixed_latents(half, cfg.model.latent_dim, cfg.seed + 1)
    seed_everything(cfg.seed)  # the generator as it was before its first step
    untrained = build_for_data(cfg.model, data)
    scores = space.scores(real, generate(candidate.model, latents))
    metrics = {"task": "gan", "n_samples": half,
               "frechet": scores["frechet"],
               "frechet_floor": space.frechet(real, other)["frechet"],
               "frechet_ceiling": space.frechet(real, generate(untrained, latents))["frechet"],
               "confidence": scores["confidence"], "class_coverage": scores["class_coverage"],
               "class_counts": dict(zip(data.task.class_names, scores["class_counts"], strict=True))}
    metrics["headline"] = [(name, metrics[name]) for name in HEADLINE]
    return GanEvaluation(metrics, candidate.trained_on)


def write_gan_report(path: Path, cfg: RunConfig, run_id: str, candidate: Candidate,
                     evaluation: GanEvaluation, data: PreparedData, timings: dict[str, float],
                     config_json: dict) -> Path:
    """The run's report: test metrics, both loss curves and the Frechet distance per epoch,
    the learning rate, and the sample grids of every epoch."""
    grids = sorted((path.parent / "samples").glob("epoch_*.png"))
    plots = [("Discriminator and generator losses; Frechet distance on validation (per epoch)",
              learning_curves_png(candidate.history, "", panels=("d_loss", "g_loss", "frechet")))]
    plots += [(f"Samples from the fixed latent batch after epoch {int(p.stem[6:])}", p.read_bytes())
              for p in grids]
    report = ReportData(run_name=cfg.name, run_id=run_id, evaluation=evaluation.test_metrics,
                        config=config_json, lr_history=candidate.lr_history,
                        class_names=list(data.task.class_names),
                        provenance=data.dataset.provenance.to_dict(), timings=timings,
                        extra_plots=plots)
    return write_report(path, report)


def generate_grid(ref: str, n: int, output: str | Path, *, seed: int = 0,
                  workspace: str | Path | None = None, url: str | None = None) -> Path:
    """Write a PNG grid of `n` images from a registered GAN (`dlforge generate`).

    Args:
        ref: ``name``, ``name@3`` or ``name@alias`` of a `model.type: dcgan` model.
        n: how many images.
        output: the PNG file, written atomically.
        seed: draws the latent batch; the same seed gives the same images.
        workspace, url: where the store is (defaults as `registry.load`).

    Raises:
        NotFoundError: no such model, version or alias.
        ConfigError: the model is not a GAN (`registry.model_kind.check_model_kind`).

    Example:
        >>> generate_grid("digits-gan@production", 64, "grid.png")  # doctest: +SKIP
        PosixPath('grid.png')
    """
    model = load(ref, workspace, url).bundle.model
    check_model_kind(ref, isinstance(model, GAN), generate=True)
    images = generate(model, fixed_latents(n, model.latent_dim, seed))
    with atomic_open(output, "wb") as fh:
        fh.write(grid_png(images))
    return Path(output)
