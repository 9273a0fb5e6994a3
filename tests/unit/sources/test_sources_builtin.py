"""The scikit-learn bundled data sets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlforge.config.schema import DataConfig
from dlforge.data.sources import load_dataset


def test_digits_are_uint8_images_scaled_to_255():
    ds = load_dataset(DataConfig(source="builtin", name="digits"))
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == np.uint8
    assert ds.modality == "image" and int(ds.x.max()) == 255
    # sklearn's level 16 -> 255, level 1 -> round(15.9375) = 16
    assert sorted(np.unique(ds.x).tolist())[:3] == [0, 16, 32]
    assert ds.task.class_names == tuple("0123456789") and ds.task.kind == "multiclass"
    assert ds.provenance.source == "builtin:digits" and ds.provenance.files == {}
    assert ds.split is None


def test_breast_cancer_is_binary_with_malignant_positive():
    ds = load_dataset(DataConfig(source="builtin", name="breast_cancer"))
    assert isinstance(ds.x, pd.DataFrame) and ds.x.shape == (569, 30)
    assert ds.x.columns[0] == "mean radius"
    assert ds.task.kind == "binary" and ds.task.class_names == ("benign", "malignant")
    assert int(ds.y.sum()) == 212  # 212 malignant, 357 benign


def test_wine_is_multiclass_and_diabetes_regression():
    wine = load_dataset(DataConfig(source="builtin", name="wine"))
    assert wine.task.class_names == ("class_0", "class_1", "class_2")
    assert np.bincount(wine.y).tolist() == [59, 71, 48]
    diabetes = load_dataset(DataConfig(source="builtin", name="diabetes"))
    assert diabetes.task.kind == "regression" and diabetes.task.class_names == ("target",)
    assert diabetes.y.dtype == np.float32 and diabetes.y[:2].tolist() == [151.0, 75.0]
    assert list(diabetes.x.columns) == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
