"""predict_scores: link function per task, batching, eval mode; labels_from_scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlforge.data.dataset import TaskSpec
from dlforge.errors import DataError
from dlforge.models.scores import labels_from_scores, predict_scores


class Fixed(nn.Module):
    """Returns preset logits row by row; a dropout layer shows whether eval mode is on."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.drop = nn.Dropout(p=0.9)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.drop(self.logits[index.long()])


def test_multiclass_softmax_in_small_batches_and_eval_mode():
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    model = Fixed(logits).train()
    scores = predict_scores(model, torch.arange(3), TaskSpec("multiclass", ("a", "b", "c")),
                            batch_size=2)
    np.testing.assert_allclose(scores, torch.softmax(logits, 1).numpy(), rtol=1e-6)
    assert scores.dtype == np.float32
    assert model.training  # given back in the mode it came in


def test_a_model_already_in_eval_mode_on_the_device_is_left_alone(monkeypatch):
    model = nn.Linear(2, 1).eval()
    calls = []
    monkeypatch.setattr(model, "train", lambda mode=True: calls.append(("train", mode)))
    monkeypatch.setattr(model, "to", lambda *a, **k: calls.append(("to", a)))
    scores = predict_scores(model, torch.zeros(3, 2), TaskSpec("regression", ("y",)))
    assert scores.shape == (3,)
    assert calls == []  # a service calls this per request: no walk over every module


def test_binary_sigmoid_is_flat():
    model = Fixed(torch.tensor([[0.0], [2.0]]))
    scores = predict_scores(model, torch.arange(2), TaskSpec("binary", ("ok", "ng")))
    assert scores.shape == (2,)
    np.testing.assert_allclose(scores, [0.5, 1 / (1 + np.exp(-2))], rtol=1e-6)


def test_multilabel_sigmoid_per_label_and_regression_values():
    logits = torch.tensor([[0.0, 100.0], [-100.0, 0.0]])
    ml = predict_scores(Fixed(logits), torch.arange(2), TaskSpec("multilabel", ("x", "y")))
    np.testing.assert_allclose(ml, [[0.5, 1.0], [0.0, 0.5]], atol=1e-7)
    reg = predict_scores(Fixed(torch.tensor([[1.5], [-2.0]])), torch.arange(2),
                         TaskSpec("regression", ("y",)))
    assert reg.tolist() == [1.5, -2.0]


def test_empty_input_gives_empty_scores_of_the_right_width():
    task = TaskSpec("multiclass", ("a", "b", "c"))
    scores = predict_scores(Fixed(torch.zeros(1, 3)), torch.arange(0), task)
    assert scores.shape == (0, 3)


def test_labels_from_scores_per_task():
    assert labels_from_scores(TaskSpec("binary", ("ok", "ng")), np.array([0.2, 0.3, 0.9]),
                              0.3).tolist() == [0, 1, 1]
    assert labels_from_scores(TaskSpec("binary", ("ok", "ng")), np.array([0.49, 0.5])).tolist() == [0, 1]
    assert labels_from_scores(TaskSpec("multiclass", ("a", "b", "c")),
                              np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])).tolist() == [1, 0]
    ml = TaskSpec("multilabel", ("x", "y"))
    assert labels_from_scores(ml, np.array([[0.4, 0.4]]), [0.3, 0.5]).tolist() == [[1, 0]]


def test_labels_from_scores_rejects_wrong_number_of_thresholds():
    ml = TaskSpec("multilabel", ("x", "y"))
    with pytest.raises(DataError, match=r"^threshold: got 3 per-label thresholds for 2 labels "
                                        r"\(x, y\); give one per label or a single number$"):
        labels_from_scores(ml, np.zeros((1, 2)), [0.5, 0.5, 0.5])
