"""NumPy .npz archives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlforge.config.schema import DataConfig
from dlforge.data.sources import load_dataset
from dlforge.errors import DataError


def save(tmp_path, **arrays) -> str:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return str(path)


def test_nhwc_images_become_nchw_and_splits_are_marked(tmp_path):
    x = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    path = save(tmp_path, x_train=x[:2], y_train=np.array([0, 1]), x_val=x[2:3],
                y_val=np.array([2]), x_test=x[3:], y_test=np.array([1]))
    ds = load_dataset(DataConfig(source="npz", path=path))
    assert ds.x.shape == (4, 3, 2, 2) and ds.modality == "image"
    assert ds.x[0, :, 0, 0].tolist() == [0, 1, 2]
    assert ds.split.tolist() == ["train", "train", "val", "test"]
    assert ds.task.class_names == ("0", "1", "2") and ds.y.tolist() == [0, 1, 2, 1]


def test_three_dims_gain_a_channel_and_train_only_has_no_split(tmp_path):
    path = save(tmp_path, x_train=np.zeros((3, 5, 4), np.uint8), y_train=np.array([0, 1, 0]))
    ds = load_dataset(DataConfig(source="npz", path=path))
    assert ds.x.shape == (3, 1, 5, 4) and ds.split is None
    assert ds.task.kind == "binary"


def test_two_dims_are_a_table(tmp_path):
    path = save(tmp_path, x_train=np.ones((2, 3)), y_train=np.array([0.5, 1.5]))
    ds = load_dataset(DataConfig(source="npz", path=path))
    assert isinstance(ds.x, pd.DataFrame) and list(ds.x.columns) == ["x0", "x1", "x2"]
    assert ds.task.kind == "regression"


def test_missing_arrays_are_listed(tmp_path):
    path = save(tmp_path, x_train=np.ones((2, 3)), labels=np.array([0, 1]))
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="npz", path=path))
    assert str(exc.value) == (
        "data.path: d.npz needs arrays x_train and y_train (and x_val/y_val, x_test/y_test in "
        "pairs); it has: labels, x_train"
    )


def test_unsupported_shape(tmp_path):
    path = save(tmp_path, x_train=np.ones((2, 5, 5, 5)), y_train=np.array([0, 1]))
    with pytest.raises(DataError, match=r"^data\.path: x in d\.npz has shape \(2, 5, 5, 5\); "):
        load_dataset(DataConfig(source="npz", path=path))


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x_test": np.zeros((2, 9, 9), np.uint8)},
     "data.path: d.npz: the splits' x arrays differ in shape (x_train (N, 8, 8), x_test (N, 9, 9)); "
     "every x_* must have the same shape after the first axis"),
    ({"y_train": np.zeros((4, 3), np.int64)},
     "data.path: d.npz: the splits' y arrays differ in shape (y_train (N, 3), y_test (N,)); "
     "every y_* must have the same shape after the first axis"),
])
def test_splits_of_different_shapes_are_one_line_not_a_crash(tmp_path, arrays, message):
    base = {"x_train": np.zeros((4, 8, 8), np.uint8), "y_train": np.array([0, 1, 0, 1]),
            "x_test": np.zeros((2, 8, 8), np.uint8), "y_test": np.array([0, 1])}
    path = save(tmp_path, **{**base, **arrays})
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="npz", path=path))
    assert str(exc.value) == message


@pytest.mark.parametrize("write", ["npy", "text"])
def test_a_file_that_is_not_an_npz_archive_says_so(tmp_path, write):
    path = tmp_path / "d.npz"
    with path.open("wb") as f:  # a .npy array (np.load returns it bare) or any other bytes
        np.save(f, np.zeros(3)) if write == "npy" else f.write(b"hi")
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="npz", path=str(path)))
    assert str(exc.value) == (f"data.path: {str(path)!r} is not an .npz archive (the zip of arrays "
                              "numpy.savez writes, with x_train and y_train)")
