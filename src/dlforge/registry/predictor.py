"""Raw inputs in, predictions out: a loaded bundle's preprocessing, model and decision rule.

Serving applies the very preprocessor fitted on the training split (no training/serving
skew) and the threshold chosen on validation.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from dlforge.data.images import SizeLimit, decode_image
from dlforge.errors import DataError, clipped
from dlforge.models.dcgan import GAN
from dlforge.models.scores import DEFAULT_THRESHOLD, labels_from_scores, predict_scores
from dlforge.registry.bundle import Bundle, load_bundle
from dlforge.registry.model_kind import check_model_kind

if TYPE_CHECKING:
    from dlforge.registry.records import ModelVersion

_ENCODED = (str, Path, bytes)
# The pixel values a model was trained on, by its input spec's `pixels` (see
# pipeline/register.py); for "other" the range is unknown, so only float32's own bounds hold.
_FLOAT32_MAX = float(np.finfo(np.float32).max)
PIXEL_RANGES = {"uint8": (0.0, 255.0), "unit": (0.0, 1.0), "other": (-_FLOAT32_MAX, _FLOAT32_MAX)}


def is_top_k(value: Any) -> bool:
    """Whether `value` is a count of classes: None (all of them) or an integer of at least 1;
    a bool is not one (True is not 1), nor 2.0 or "2".

    Example:
        >>> is_top_k(3), is_top_k(None), is_top_k(True), is_top_k(0), is_top_k(2.0)
        (True, True, False, False, False)
    """
    return value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                             and value >= 1)


class Predictor:
    """Predictions from one bundle, for raw inputs of the bundle's modality.

    Inputs by modality:
        image: file paths or encoded bytes (decoded with the training colour and size), or
            arrays ``(N, C, H, W)`` / ``(N, H, W)`` (one channel) of uint8 or float pixels;
        text: a list (or array) of strings;
        table: a DataFrame, a list of row dicts, or a 2-D array in the training column order.
    A single path, text or row dict counts as a batch of one.

    Example:
        >>> p = load("digits@production")                        # doctest: +SKIP
        >>> p.predict(["three.png"], top_k=2)                    # doctest: +SKIP
        [{'label': '3', 'scores': {'3': 0.97, '8': 0.02}}]
    """

    def __init__(self, bundle: Bundle, *, version: ModelVersion | None = None,
                 batch_size: int = 256, device: str | torch.device = "cpu") -> None:
        self.bundle = bundle
        self.version = version
        self.batch_size = batch_size
        self.device = device
        # Called with every non-empty batch of preprocessed inputs before it is scored (the
        # server's sample of served inputs, `serve/drift.py`); it must be quick.
        self.on_inputs: Callable[[np.ndarray], None] | None = None

    @property
    def task(self):
        return self.bundle.task

    @property
    def threshold(self) -> float | list[float] | None:
        return self.bundle.threshold

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.bundle.task.class_names

    @property
    def modality(self) -> str:
        """"image", "table" or "text"."""
        return self.bundle.input_spec.get("modality", self.bundle.preprocessor.kind)

    @property
    def pixels(self) -> str:
        """How the training images' pixels were scaled: "uint8" (0..255), "unit" (0..1) or
        "other" (floats of unknown range); a key of `PIXEL_RANGES`."""
        return self.bundle.input_spec.get("pixels", "uint8")

    @property
    def image_limit(self) -> SizeLimit:
        """The largest image file decoded for this model (image models), see `SizeLimit.for_input`."""
        shape = tuple(self.bundle.preprocessor.output_shape)
        return SizeLimit.for_input(shape[-2], shape[-1])

    @property
    def text_column(self) -> str:
        """The CSV column holding the texts (text models)."""
        return self.bundle.input_spec.get("text_column", "text")

    def predict_scores(self, inputs: Any) -> np.ndarray:
        """Scores for raw `inputs`: probabilities, values for regression, or reconstruction
        errors for anomaly detection.

        Returns:
            multiclass ``(N, K)``; binary ``(N,)`` (positive class); multilabel ``(N, K)``;
            regression and anomaly ``(N,)``.

        Raises:
            DataError: inputs of the wrong kind or shape, naming the expected shape.
            ConfigError: the model is a GAN (`check_predicts`).
        """
        self.check_predicts()
        x = self.preprocess(inputs)
        if self.on_inputs is not None and len(x):
            self.on_inputs(x)
        return predict_scores(self.bundle.model, torch.from_numpy(np.ascontiguousarray(x)),
                              self.task, batch_size=self.batch_size, device=self.device)

    def preprocess(self, inputs: Any) -> np.ndarray:
        """Raw `inputs` as the model takes them: the bundle's preprocessing, fitted on train.

        Raises:
            DataError: inputs of the wrong kind or shape, naming the expected shape.
        """
        if _is_empty(inputs):  # an empty batch is valid: no rows in, no rows out
            dtype = np.int64 if self.modality == "text" else np.float32
            return np.zeros((0, *self.bundle.input_shape), dtype=dtype)
        return self.bundle.preprocessor.transform(self._raw(inputs))

    def prepare(self, inputs: Any) -> torch.Tensor:
        """`preprocess` as the model's input tensor `(N, ...)`.

        Raises:
            DataError: inputs of the wrong kind or shape, naming the expected shape.
            ConfigError: the model is a GAN (it takes latent vectors, not inputs).
        """
        self.check_predicts()
        return torch.from_numpy(np.ascontiguousarray(self.preprocess(inputs)))

    def check_predicts(self) -> None:
        """Refuse a GAN, which predicts nothing: commands call it before reading any input.

        Raises:
            ConfigError: the model is a GAN (`model_kind.check_model_kind`).
        """
        name = f"{self.version.name}@{self.version.version}" if self.version else "this model"
        check_model_kind(name, isinstance(self.bundle.model, GAN))

    def predict(self, inputs: Any, top_k: int | None = None) -> list[dict[str, Any]]:
        """One prediction dict per input.

        multiclass: ``{"label", "scores": {class: prob}}`` (the `top_k` best, all if None);
        binary: ``{"label", "score" (positive class), "threshold"}``; anomaly: ``{"label"
        (normal or anomaly), "score" (reconstruction error), "threshold", "anomaly" (score >=
        threshold)}``; multilabel:
        ``{"labels", "scores", "thresholds"}``; regression: ``{"value"}``.

        Raises:
            DataError: `top_k` that is neither None nor an integer of at least 1 (0, -3,
                True, 2.5, "2"), before anything is predicted; inputs the model cannot take.
        """
        if not is_top_k(top_k):
            raise DataError(f"top_k: must be an integer of at least 1, or None for every class "
                            f"(got {clipped(repr(top_k), 40)})")
        scores = self.predict_scores(inputs)
        kind = self.task.kind
        if kind == "regression":
            return [_regression_row(s, self.class_names) for s in scores]
        labels = labels_from_scores(self.task, scores, self.threshold)
        names = list(self.class_names)
        if kind == "multiclass":
            k = len(names) if top_k is None else min(top_k, len(names))
            return [{"label": names[int(lab)], "scores": _top(row, names, k)}
                    for lab, row in zip(labels, scores, strict=True)]
        if kind in ("binary", "anomaly"):
            t = float(DEFAULT_THRESHOLD if self.threshold is None else self.threshold)
            rows = [{"label": names[int(lab)], "score": float(s), "threshold": t}
                    for lab, s in zip(labels, scores, strict=True)]
            if kind == "anomaly":
                for row, lab in zip(rows, labels, strict=True):
                    row["anomaly"] = bool(lab)
            return rows
        thresholds = _per_label(self.threshold, len(names))
        return [{"labels": [n for n, on in zip(names, row_labels, strict=True) if on],
                 "scores": {n: float(v) for n, v in zip(names, row, strict=True)},
                 "thresholds": dict(zip(names, thresholds, strict=True))}
                for row_labels, row in zip(labels, scores, strict=True)]

    # ------------------------------------------------------------------------------ raw input

    def _raw(self, inputs: Any) -> Any:
        """The inputs as the preprocessor's fit input: images array, texts list or DataFrame."""
        if self.modality == "image":
            return self._images(inputs)
        if self.modality == "text":
            if isinstance(inputs, str):
                return [inputs]
            if isinstance(inputs, pd.DataFrame):
                return self._text_column(inputs)
            return list(inputs)
        return self._table(inputs)

    def _images(self, inputs: Any) -> np.ndarray:
        spec = self.bundle.input_spec
        expected = tuple(self.bundle.preprocessor.output_shape)
        if isinstance(inputs, _ENCODED):
            inputs = [inputs]
        if isinstance(inputs, Sequence) and inputs and all(isinstance(i, _ENCODED) for i in inputs):
            # Resize only when training resized (data.image_size); otherwise a file of another
            # size is an error, not something to stretch silently.
            size = tuple(spec["size"]) if spec.get("resize") else None
            color = spec.get("color") or ("rgb" if expected[0] == 3 else "grayscale")
            limit = self.image_limit
            images = [decode_image(i, color=color, size=size, limit=limit) for i in inputs]
            for name, image in zip(inputs, images, strict=True):
                if image.shape != expected:
                    shown = name if isinstance(name, (str, Path)) else "image bytes"
                    raise DataError(f"input: {shown} is {image.shape[2]}x{image.shape[1]} pixels; "
                                    f"the model takes {expected[2]}x{expected[1]} images")
            return _as_training_pixels(np.stack(images), self.pixels)
        x = _stacked(inputs)
        if x.ndim == 3 and expected[0] == 1 and tuple(x.shape[1:]) == expected[1:]:
            x = x[:, None, :, :]  # (N, H, W) grayscale
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            alt = f" or (N, {expected[1]}, {expected[2]})" if expected[0] == 1 else ""
            raise DataError(f"input: expected images of shape (N, {', '.join(map(str, expected))})"
                            f"{alt}, image file paths or bytes; got an array of shape {tuple(x.shape)}")
        return x

    def _table(self, inputs: Any) -> pd.DataFrame | list[dict[str, Any]]:
        if isinstance(inputs, dict):
            return [inputs]
        if isinstance(inputs, (pd.DataFrame, list)):
            return inputs
        columns = self.bundle.input_spec.get("columns")
        x = np.asarray(inputs)
        if x.ndim == 1 and columns and len(x) == len(columns):
            x = x[None, :]
        if columns and x.ndim == 2 and x.shape[1] == len(columns):
            return pd.DataFrame(x, columns=columns)
        expected = f"(N, {len(columns)}) in the column order {', '.join(columns)}" if columns else "a DataFrame"
        raise DataError(f"input: expected table rows as a DataFrame, a list of row objects or an "
                        f"array {expected}; got {type(inputs).__name__} of shape {tuple(x.shape)}")

    def _text_column(self, frame: pd.DataFrame) -> list[str]:
        if self.text_column not in frame.columns:
            raise DataError(f"input: the table has no text column {self.text_column!r}; "
                            f"columns are {', '.join(map(str, frame.columns))}")
        return frame[self.text_column].tolist()


def load(ref: str, workspace: str | Path | None = None, url: str | None = None) -> Predictor:
    """A predictor for a registered model: ``"name"`` (latest), ``"name@3"``, ``"name@production"``.

    Args:
        ref: the model reference.
        workspace: the workspace; default $DLFORGE_WORKSPACE or ./dlforge-workspace.
        url: the store's SQLAlchemy URL; default the workspace's SQLite file.

    Raises:
        NotFoundError: unknown model, version or alias (listing the available ones), or a
            missing bundle file.
    """
    from dlforge.registry.store import Store
    from dlforge.workspace import resolve_workspace

    with Store.open(resolve_workspace(workspace), url) as store:
        version = store.resolve(ref)
    return Predictor(load_bundle(version.bundle_path), version=version)


def _stacked(inputs: Any) -> np.ndarray:
    """A list of image arrays as one array (each image must have the same shape), or `inputs`
    as an array."""
    if not (isinstance(inputs, list) and inputs):
        return np.asarray(inputs)
    try:
        return np.stack(inputs)
    except ValueError:  # arrays of several shapes
        shapes = sorted({str(np.shape(i)) for i in inputs})
        raise DataError(f"input: images of {len(shapes)} shapes ({', '.join(shapes[:3])}) in one "
                        "list; give images of one shape") from None


def _is_empty(inputs: Any) -> bool:
    if isinstance(inputs, (str, bytes, dict)):
        return False
    try:
        return len(inputs) == 0
    except TypeError:
        return False


def _top(row: np.ndarray, names: list[str], k: int) -> dict[str, float]:
    order = np.argsort(-row, kind="stable")[:k]
    return {names[i]: float(row[i]) for i in order}


def _per_label(threshold: Any, n: int) -> list[float]:
    if threshold is None:
        return [DEFAULT_THRESHOLD] * n
    if isinstance(threshold, (int, float)):
        return [float(threshold)] * n
    return [float(t) for t in threshold]


def _regression_row(value: Any, names: Sequence[str]) -> dict[str, Any]:
    value = np.asarray(value)
    if value.ndim == 0:
        return {"value": float(value)}
    return {"values": {str(n): float(v) for n, v in zip(names, value, strict=True)}}


def _as_training_pixels(images: np.ndarray, kind: str) -> np.ndarray:
    """Decoded files are uint8; give them the pixel scale the model was trained on."""
    if kind == "unit":
        return images.astype(np.float32) / 255.0
    if kind == "other":
        raise DataError("input: this model was trained on float arrays of unknown pixel scale, "
                        "so image files cannot be matched to it; pass arrays of that scale instead")
    return images
