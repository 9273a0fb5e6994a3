"""Preprocessing fitted on the TRAINING split only and saved as JSON inside the model bundle.

    pre = build_preprocessor(cfg.preprocess, dataset.modality).fit(splits.train.x)
    x_val = pre.transform(splits.val.x)
    bundle_state = pre.to_dict()                  # JSON: lists, numbers, strings; no pickle
    same = preprocessor_from_dict(bundle_state)   # transforms exactly as `pre` does

One module per modality: `image` (scale, standardize), `table` (impute, scale, one-hot, PCA),
`text` (tokenize, vocabulary, pad/truncate).
"""

from __future__ import annotations

from typing import Any

from dlforge.config.schema import PreprocessConfig
from dlforge.data.preprocess.base import Preprocessor
from dlforge.data.preprocess.image import ImagePreprocessor
from dlforge.data.preprocess.table import TablePreprocessor
from dlforge.data.preprocess.text import TextPreprocessor
from dlforge.errors import DataError

__all__ = ["ImagePreprocessor", "Preprocessor", "TablePreprocessor", "TextPreprocessor",
           "build_preprocessor", "preprocessor_from_dict"]

_KINDS: dict[str, type[Preprocessor]] = {
    "image": ImagePreprocessor, "table": TablePreprocessor, "text": TextPreprocessor}


def build_preprocessor(cfg: PreprocessConfig, modality: str) -> Preprocessor:
    """An unfitted preprocessor for `modality`, configured by the matching section of `cfg`.

    Args:
        cfg: the run's `preprocess` section; only `cfg.<modality>` is used.
        modality: "image", "table" or "text" (`Dataset.modality`).

    Returns:
        A preprocessor to `fit` on the training split.

    Raises:
        DataError: unknown modality.

    Example:
        >>> pre = build_preprocessor(PreprocessConfig(), "text")
        >>> pre.fit(np.array(["a b"])).transform(np.array(["b"])).shape  # doctest: +SKIP
        (1, 200)
    """
    if modality not in _KINDS:
        raise DataError(f"modality: must be one of {', '.join(_KINDS)} (got {modality!r})")
    return _KINDS[modality](getattr(cfg, modality))


def preprocessor_from_dict(d: dict[str, Any]) -> Preprocessor:
    """Rebuild a fitted preprocessor from `Preprocessor.to_dict()` (e.g. a bundle's JSON).

    Raises:
        DataError: the dict names an unknown kind or lacks a field.
    """
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind not in _KINDS:
        raise DataError(f"preprocessor.kind: must be one of {', '.join(_KINDS)} (got {kind!r})")
    try:
        return _KINDS[kind].from_dict(d)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"preprocessor: the saved {kind} state is incomplete or corrupt ({exc!r}); "
                        f"re-save the bundle") from exc
