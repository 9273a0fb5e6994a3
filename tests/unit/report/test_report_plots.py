"""Each plot function returns a PNG of the expected size; image scaling for the grid."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dlforge.report import plots


def _size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        return image.size


def test_line_plots_are_small_pngs():
    history = [{"epoch": i, "loss": 1 / (i + 1), "val_loss": 1.0, "mae": 0.5} for i in range(3)]
    assert _size(plots.learning_curves_png(history, "mae")) == (720, 270)  # 8 x 3 in at 90 dpi
    assert _size(plots.lr_png([0.1, 0.01, 0.001])) == (720, 225)
    assert _size(plots.roc_png([0.0, 0.5, 1.0], [0.0, 0.9, 1.0], 0.9)) == (360, 324)
    assert _size(plots.pr_png([1.0, 0.5], [0.0, 1.0], None, prevalence=0.1)) == (360, 324)


def test_confusion_matrix_scales_with_classes_up_to_a_cap():
    two = plots.confusion_matrix_png([[3, 1], [0, 2]], [[0.75, 0.25], [0.0, 1.0]], ["a", "b"])
    assert _size(two) == (int(4.9 * 90), int(3.9 * 90))
    k = 40  # no labels, no numbers, capped at 11 x 10 in
    many = plots.confusion_matrix_png(np.eye(k, dtype=int), np.eye(k), [str(i) for i in range(k)])
    assert _size(many) == (990, 900)


def test_image_grid_lays_out_rows_of_eight():
    images = np.zeros((10, 1, 8, 8), dtype=np.uint8)
    assert _size(plots.image_grid_png(images, ["t"] * 10)) == (int(1.3 * 8 * 90), int(1.6 * 2 * 90))
    rgb = np.random.default_rng(0).normal(size=(3, 3, 8, 8))
    assert _size(plots.image_grid_png(rgb, ["a", "b", "c"])) == (int(1.3 * 3 * 90), int(1.6 * 90))


@pytest.mark.parametrize(("image", "expected"), [
    (np.array([[[0, 255], [51, 102]]], dtype=np.uint8), [[0.0, 1.0], [0.2, 0.4]]),
    (np.array([[[0.0, 0.5], [0.25, 1.0]]]), [[0.0, 0.5], [0.25, 1.0]]),
    (np.array([[[-1.0, 1.0], [0.0, 3.0]]]), [[0.0, 0.5], [0.25, 1.0]]),  # standardized
    (np.full((1, 2, 2), -2.0), [[0.0, 0.0], [0.0, 0.0]]),
])
def test_grid_scales_pixels_for_display(image, expected):
    np.testing.assert_allclose(plots._displayable(image), expected)


def test_rgb_images_become_height_width_channels():
    assert plots._displayable(np.zeros((3, 4, 5), dtype=np.uint8)).shape == (4, 5, 3)


def test_filters_and_feature_maps_are_stretched_per_tile():
    weight = np.arange(2 * 1 * 2 * 2, dtype=float).reshape(2, 1, 2, 2) - 3  # both kernels cross 0
    np.testing.assert_allclose(plots._stretch(weight)[1, 0], [[0, 1 / 3], [2 / 3, 1]])
    assert _size(plots.filters_png(weight)) == (int(1.3 * 2 * 90), int(1.6 * 90))
    maps = np.random.default_rng(0).random((40, 4, 4))
    assert _size(plots.feature_maps_png(maps)) == (int(1.3 * 8 * 90), int(1.6 * 4 * 90))  # 32 shown


def test_learning_curves_count_epochs_from_one(monkeypatch):
    from matplotlib.axes import Axes

    xs = []
    original = Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, x, *a, **k: xs.append(list(x)) or original(self, x, *a, **k))
    plots.learning_curves_png([{"epoch": 0, "loss": 1.0, "val_loss": 1.1},
                               {"epoch": 1, "loss": 0.5, "val_loss": 0.8}], "accuracy")
    assert xs == [[1, 2], [1, 2]]
