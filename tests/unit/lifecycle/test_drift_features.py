"""The drift features of preprocessed inputs: what each modality is measured on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlforge.config.schema import TablePreprocess, TextPreprocess
from dlforge.data.preprocess import TablePreprocessor, TextPreprocessor
from dlforge.lifecycle.drift_features import UNSEEN, input_features


def test_texts_are_measured_by_length_and_vocabulary_coverage():
    pre = TextPreprocessor(TextPreprocess(maxlen=8, num_words=10)).fit(
        np.array(["good film", "bad film"], dtype=object))
    x = pre.transform(np.array(["good film", "good unknown words here", ""], dtype=object))
    features = input_features(x, pre)
    assert features["length"].values.tolist() == [2.0, 4.0, 0.0]
    assert features["vocab_coverage"].values.tolist() == [1.0, 0.25, 1.0]


def test_categorical_columns_are_read_back_from_their_one_hot_block():
    train = pd.DataFrame({"a": [0.0, 1.0, 2.0], "color": ["red", "blue", "red"]})
    pre = TablePreprocessor(TablePreprocess()).fit(train)
    x = pre.transform(pd.DataFrame({"a": [5.0, 1.0], "color": ["blue", "green"]}))
    features = input_features(x, pre)
    assert features["color"].kind == "categorical"
    assert features["color"].values.tolist() == ["blue", UNSEEN]
    assert features["a"].kind == "numeric" and np.allclose(features["a"].values, x[:, 0])
