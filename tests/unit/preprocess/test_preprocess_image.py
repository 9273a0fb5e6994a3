"""Image preprocessing: exact scaling/standardization, train-only statistics, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlforge.config.schema import ImagePreprocess, PreprocessConfig
from dlforge.data.preprocess import ImagePreprocessor, build_preprocessor, preprocessor_from_dict
from dlforge.errors import DataError

# Two 2-channel 1x1 images: channel 0 = [0, 255] -> [0, 1]; channel 1 = [51, 153] -> [0.2, 0.6].
TRAIN = np.array([[[[0]], [[51]]], [[[255]], [[153]]]], dtype=np.uint8)


def test_scale_and_standardize_exact():
    pre = build_preprocessor(PreprocessConfig(), "image").fit(TRAIN)
    assert pre.divisor == 255.0
    assert pre.mean == pytest.approx([0.5, 0.4], abs=1e-12)
    assert pre.std == pytest.approx([0.5, 0.2], abs=1e-12)
    out = pre.transform(TRAIN)
    assert out.dtype == np.float32 and out.shape == (2, 2, 1, 1)
    np.testing.assert_allclose(out.reshape(2, 2), [[-1, -1], [1, 1]], atol=1e-6)


def test_statistics_come_from_train_only():
    val = np.full((3, 2, 1, 1), 255, dtype=np.uint8)
    pre = ImagePreprocessor(ImagePreprocess()).fit(TRAIN)
    pre.transform(val)
    assert pre.mean == pytest.approx([0.5, 0.4], abs=1e-12)  # val (all 1.0) did not leak in
    np.testing.assert_allclose(pre.transform(val)[0].ravel(), [(1 - 0.5) / 0.5, (1 - 0.4) / 0.2],
                               atol=1e-6)


def test_scale_only_divides_uint8_but_not_float():
    cfg = ImagePreprocess(standardize=False)
    out = ImagePreprocessor(cfg).fit(TRAIN).transform(TRAIN)
    np.testing.assert_array_equal(out.reshape(2, 2), np.float32([[0, 0.2], [1, 0.6]]))
    floats = TRAIN.astype(np.float32) / 255
    pre = ImagePreprocessor(cfg).fit(floats)
    assert pre.divisor == 1.0
    np.testing.assert_array_equal(pre.transform(floats), floats)


def test_constant_channel_maps_to_zero_not_nan():
    x = np.full((4, 1, 2, 2), 7, dtype=np.uint8)
    pre = ImagePreprocessor(ImagePreprocess()).fit(x)
    assert pre.std == [1.0]
    np.testing.assert_array_equal(pre.transform(x), np.zeros((4, 1, 2, 2), np.float32))


def test_wrong_sample_shape_is_a_data_error():
    pre = ImagePreprocessor(ImagePreprocess()).fit(np.zeros((2, 1, 28, 28), np.uint8))
    with pytest.raises(DataError) as err:
        pre.transform(np.zeros((1, 3, 32, 32), np.uint8))
    assert str(err.value) == "input: expected images of shape (1, 28, 28), got (3, 32, 32)"
    assert pre.output_shape == (1, 28, 28)
    assert pre.vocab_size is None


def test_transform_before_fit_is_refused():
    with pytest.raises(DataError, match="image preprocessor is not fitted"):
        ImagePreprocessor(ImagePreprocess()).transform(TRAIN)


def test_json_round_trip_transforms_identically():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(64, 3, 4, 4), dtype=np.uint8)
    pre = build_preprocessor(PreprocessConfig(), "image").fit(x[:48])
    again = preprocessor_from_dict(json.loads(json.dumps(pre.to_dict())))
    assert isinstance(again, ImagePreprocessor)
    np.testing.assert_array_equal(again.transform(x[48:]), pre.transform(x[48:]))
    assert again.to_dict() == pre.to_dict()


def test_unknown_kind_is_refused():
    with pytest.raises(DataError) as err:
        preprocessor_from_dict({"kind": "audio"})
    assert str(err.value) == "preprocessor.kind: must be one of image, table, text (got 'audio')"
    with pytest.raises(DataError, match=r"^modality: must be one of image, table, text \(got 'video'\)$"):
        build_preprocessor(PreprocessConfig(), "video")
