"""How good a GAN's images are, measured in the feature space of a classifier that dlforge
trained on the same data (no downloaded Inception weights: the features are those of the run's
own classifier, so distances compare within one data set, not with published FID numbers).

- Frechet distance: ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^1/2) between Gaussians
  fitted to the penultimate-layer features (the inputs of the classifier's last Linear layer)
  of real and generated images; 0 for identical distributions. It is biased upwards for small
  samples, so compare distances measured on equal sample sizes.
- Confidence: the classifier's mean top softmax probability on generated images.
- Class coverage: the fraction of classes that are the classifier's prediction for at least
  one generated image in 1/(2 * classes) of them; mode collapse shows as missing classes.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg
from torch import Tensor, nn


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """The Frechet distance between Gaussians fitted to two feature sets `(N, D)`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(500, 2))
        >>> round(frechet_distance(a, a), 6), round(frechet_distance(a, a + 3.0), 3)
        (0.0, 18.0)
    """
    mu_r, mu_f = real.mean(axis=0), fake.mean(axis=0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    with warnings.catch_warnings():  # fewer samples than features: singular, handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(np.atleast_2d(cov_r) @ np.atleast_2d(cov_f))
        if not np.isfinite(covmean).all():  # offset the diagonals (as FID implementations do)
            offset = np.eye(len(mu_r)) * 1e-6
            covmean = linalg.sqrtm((cov_r + offset) @ (cov_f + offset))
    covmean = np.real(covmean)
    value = float(((mu_r - mu_f) ** 2).sum() + np.trace(cov_r) + np.trace(cov_f)
                  - 2 * np.trace(covmean))
    return max(value, 0.0)


def coverage(probs: np.ndarray) -> dict[str, object]:
    """Confidence and class coverage of generated images from the classifier's probabilities
    `(N, classes)`.

    Example:
        >>> coverage(np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]]))["class_coverage"]
        0.3333333333333333
    """
    classes = probs.shape[1]
    counts = np.bincount(probs.argmax(axis=1), minlength=classes)
    share = counts / max(len(probs), 1)
    return {"confidence": float(probs.max(axis=1).mean()),
            "class_coverage": float((share >= 1 / (2 * classes)).sum() / classes),
            "class_counts": [int(c) for c in counts]}


class FeatureSpace:
    """A trained classifier as a feature extractor: `embed(images) -> (features, probs)`.

    Args:
        classifier: a trained classifier whose last `nn.Linear` is its head.
        device: where it runs.
        batch_size: images per forward pass.
    """

    def __init__(self, classifier: nn.Module, device: torch.device, batch_size: int = 256) -> None:
        self.model = classifier.to(device).eval()
        self.device, self.batch_size = device, batch_size
        linears = [m for m in classifier.modules() if isinstance(m, nn.Linear)]
        self.head = linears[-1]

    @torch.inference_mode()
    def embed(self, images: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features `(N, D)` and softmax probabilities `(N, classes)`."""
        feats: list[Tensor] = []
        hook = self.head.register_forward_pre_hook(lambda _m, args: feats.append(args[0].float()))
        try:
            logits = [self.model(images[i:i + self.batch_size].to(self.device)).float()
                      for i in range(0, len(images), self.batch_size)]
        finally:
            hook.remove()
        probs = torch.softmax(torch.cat(logits), dim=1)
        return torch.cat(feats).cpu().numpy().astype(np.float64), probs.cpu().numpy()

    def frechet(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        """`{"frechet": distance}` between two image batches (the GAN step's `quality`)."""
        return {"frechet": frechet_distance(self.embed(real)[0], self.embed(fake)[0])}

    def scores(self, real: Tensor, fake: Tensor) -> dict[str, object]:
        """Frechet distance, confidence and class coverage of `fake` against `real`."""
        real_feats = self.embed(real)[0]
        fake_feats, fake_probs = self.embed(fake)
        return {"frechet": frechet_distance(real_feats, fake_feats), **coverage(fake_probs)}
