"""Images: scaling to [0, 1] and per-channel standardization fitted on the training split."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from dlforge.config.schema import ImagePreprocess
from dlforge.data.preprocess.base import Preprocessor
from dlforge.errors import DataError

# Samples per float64 piece of a fit: a large training set (CIFAR: 50k x 3 x 32 x 32) never
# needs a full float64 copy.
CHUNK = 4096


class ImagePreprocessor(Preprocessor):
    """`(x / divisor - mean[c]) / std[c]` per channel, as float32 `(N, C, H, W)`.

    The divisor is 255 when `scale` is on and the TRAINING images are uint8, else 1 (float
    sources are taken as already scaled); it is fixed at fit time so serving inputs get the
    same arithmetic whatever their dtype. Mean and std are computed on the scaled training
    pixels; a constant channel (std ~0) keeps std 1 so it maps to 0 instead of NaN.

    Example:
        >>> pre = ImagePreprocessor(ImagePreprocess()).fit(train_x)  # doctest: +SKIP
        >>> pre.transform(val_x).dtype  # doctest: +SKIP
        dtype('float32')
    """

    kind = "image"
    config_type = ImagePreprocess

    def __init__(self, cfg: ImagePreprocess) -> None:
        super().__init__(cfg)
        self.sample_shape: tuple[int, ...] = ()
        self.divisor = 1.0
        self.mean: list[float] = []
        self.std: list[float] = []

    def fit(self, x_raw: Any) -> ImagePreprocessor:
        """Fix the divisor and the per-channel mean/std from the training images.

        Raises:
            DataError: `x_raw` is not a non-empty (N, C, H, W) array.
        """
        x = np.asarray(x_raw)
        if x.ndim != 4 or len(x) == 0:
            raise DataError(f"input: expected a non-empty image array of shape (N, C, H, W), "
                            f"got shape {x.shape}")
        return self.fit_chunks(x[start:start + CHUNK] for start in range(0, len(x), CHUNK))

    def fit_chunks(self, chunks: Iterable[np.ndarray]) -> ImagePreprocessor:
        """`fit` from consecutive pieces of the training images (a streaming pass): the same
        float64 sums, so the same statistics as `fit` on the whole array."""
        sums = None
        for part in chunks:
            if sums is None:
                self.sample_shape = tuple(int(s) for s in part.shape[1:])
                self.divisor = 255.0 if self.cfg.scale and part.dtype == np.uint8 else 1.0
                sums = np.zeros((3, self.sample_shape[0]))
            scaled = part.astype(np.float64) / self.divisor
            sums += [np.full(len(sums[0]), scaled[:, 0].size), scaled.sum(axis=(0, 2, 3)),
                     np.square(scaled).sum(axis=(0, 2, 3))]
        if sums is None:
            raise DataError("input: expected a non-empty image array of shape (N, C, H, W), got none")
        channels = self.sample_shape[0]
        if self.cfg.standardize:
            mean = sums[1] / sums[0]
            # Pixel values are bounded, so E[x^2] - E[x]^2 loses nothing that matters at float64.
            std = np.sqrt(np.maximum(sums[2] / sums[0] - np.square(mean), 0.0))
            self.mean = [float(m) for m in mean]
            self.std = [float(s) if s > 1e-8 else 1.0 for s in std]
        else:
            self.mean, self.std = [0.0] * channels, [1.0] * channels
        self.fitted = True
        return self

    def transform(self, x_raw: Any) -> np.ndarray:
        """Scale and standardize `x_raw` (N, C, H, W) with the training statistics.

        Raises:
            DataError: a sample's shape differs from the training images'.
        """
        self._check_fitted()
        x = np.asarray(x_raw)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.sample_shape:
            got = tuple(x.shape[1:]) if x.ndim == 4 else tuple(x.shape)
            raise DataError(f"input: expected images of shape {self.sample_shape}, got {got}")
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        out = x.astype(np.float32) / np.float32(self.divisor)
        return np.ascontiguousarray((out - mean) / std, dtype=np.float32)

    @property
    def output_shape(self) -> tuple[int, ...]:
        self._check_fitted()
        return self.sample_shape

    def _state(self) -> dict[str, Any]:
        return {"sample_shape": list(self.sample_shape), "divisor": self.divisor,
                "mean": self.mean, "std": self.std}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.sample_shape = tuple(int(s) for s in state["sample_shape"])
        self.divisor = float(state["divisor"])
        self.mean = [float(m) for m in state["mean"]]
        self.std = [float(s) for s in state["std"]]
