"""Small data sets shipped with scikit-learn: digits (images), breast_cancer, wine, diabetes.

They need no download, so they are the default source and what quick runs and tests use.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from sklearn import datasets as skdatasets

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.data.sources.infer import label_task
from dlforge.errors import DataError

_LOADERS = {
    "digits": skdatasets.load_digits,
    "breast_cancer": skdatasets.load_breast_cancer,
    "wine": skdatasets.load_wine,
    "diabetes": skdatasets.load_diabetes,
}


def load(cfg: DataConfig) -> Dataset:
    """Load `data.name` from scikit-learn's bundled copies.

    digits become (N, 1, 8, 8) uint8 images (scikit-learn's 0..16 levels scaled to 0..255, so
    every image source is uint8); the others are tables with scikit-learn's feature names.
    diabetes is a regression task.
    """
    name = str(cfg.name)
    if name not in _LOADERS:
        raise DataError(f"data.name: {name!r} is not a builtin data set; use one of "
                        f"{', '.join(_LOADERS)}")
    bunch = _LOADERS[name]()
    if name == "digits":
        x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
        modality = "image"
    else:
        x = pd.DataFrame(np.asarray(bunch.data), columns=list(bunch.feature_names))
        modality = "table"
    if name == "diabetes":
        y, task = label_task(np.asarray(bunch.target), cfg, where="the diabetes target",
                             default_kind="regression", target_name="target")
    else:
        labels = np.asarray(bunch.target_names)[bunch.target] if name != "digits" else bunch.target
        y, task = label_task(labels, cfg, where=f"the labels of {name}")
    details = {
        "x_sha256": hashlib.sha256(np.ascontiguousarray(np.asarray(x)).tobytes()).hexdigest(),
        "y_sha256": hashlib.sha256(np.ascontiguousarray(bunch.target).tobytes()).hexdigest(),
    }
    return Dataset(x=x, y=y, task=task, modality=modality,
                   provenance=Provenance(source=f"builtin:{name}", files={}, details=details))
