"""Text preprocessing: vocabulary from train, exact ids, padding and truncation, round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlforge.config.schema import PreprocessConfig, TextPreprocess
from dlforge.data.preprocess import TextPreprocessor, build_preprocessor, preprocessor_from_dict
from dlforge.errors import DataError

TRAIN = np.array(["The cat sat.", "the DOG sat on the mat", "a cat!"], dtype=object)


def fit(**kw) -> TextPreprocessor:
    return TextPreprocessor(TextPreprocess(**kw)).fit(TRAIN)


def test_vocabulary_by_count_then_first_appearance():
    pre = fit(num_words=10)
    # the x3; cat x2, sat x2 (cat seen first); then dog, on, mat, a in order of appearance.
    assert list(pre.vocab) == ["<PAD>", "<START>", "<UNK>", "the", "cat", "sat", "dog", "on",
                               "mat", "a"]
    assert pre.vocab_size == 10


def test_num_words_keeps_the_most_frequent_only():
    small = TextPreprocessor(TextPreprocess(num_words=10)).fit(
        np.array([" ".join(f"w{i}" for i in range(12)) + " w5 w11"]))
    assert list(small.vocab)[3:] == ["w5", "w11", "w0", "w1", "w2", "w3", "w4", "w6", "w7", "w8"]


def test_ids_padding_and_unknown_tokens():
    pre = fit(num_words=10, maxlen=6)
    out = pre.transform(np.array(["The zebra sat", "", None], dtype=object))
    assert out.dtype == np.int64
    assert out.tolist() == [[1, 3, 2, 5, 0, 0], [1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]]
    assert pre.output_shape == (6,)


def test_truncate_post_and_pre():
    text = np.array(["the cat sat on the mat"])
    assert fit(maxlen=4, truncate="post").transform(text).tolist() == [[1, 3, 4, 5]]
    assert fit(maxlen=4, truncate="pre").transform(text).tolist() == [[5, 7, 3, 8]]


def test_lowercase_off_keeps_case_apart():
    pre = fit(lowercase=False)
    assert pre.vocab["The"] != pre.vocab["the"]
    assert "DOG" in pre.vocab and "dog" not in pre.vocab


def test_non_string_sample_is_a_data_error():
    with pytest.raises(DataError) as err:
        fit().transform(np.array(["ok", 3], dtype=object))
    assert str(err.value) == "input: text 1 is int 3, expected a string"


def test_json_round_trip_transforms_identically():
    pre = build_preprocessor(PreprocessConfig(text={"maxlen": 5, "num_words": 10}), "text").fit(TRAIN)
    again = preprocessor_from_dict(json.loads(json.dumps(pre.to_dict())))
    new = np.array(["the mat sat on a dog and a cat", "unknown words only"])
    np.testing.assert_array_equal(again.transform(new), pre.transform(new))
    assert again.vocab == pre.vocab and again.cfg == pre.cfg
