"""The pieces of a data review: curating the training split, confident learning, margins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlforge.config import load_config
from dlforge.data.curate import curate, exclude, flip_labels, fold_indices
from dlforge.data.dataset import Dataset, Provenance, Splits, TaskSpec
from dlforge.errors import DataError
from dlforge.evaluate.label_issues import (
    class_probabilities,
    confident_learning,
    margin_issues,
    precision_recall,
)
from dlforge.train.margins import MarginTracker, margins


def _dataset(n: int = 12, k: int = 3) -> Dataset:
    return Dataset(x=np.arange(n, dtype=np.float32)[:, None], y=np.arange(n) % k,
                   task=TaskSpec("multiclass", tuple("abc"[:k])), modality="table",
                   provenance=Provenance("test"), ids=np.array([str(i) for i in range(n)], dtype=object))


def test_exclude_drops_training_ids_and_records_them():
    ds = _dataset()
    train = ds.subset(np.arange(8))
    kept, record = exclude(train, ds, ["3", "5", "10"])  # 10 is not a training sample
    assert kept.ids.tolist() == ["0", "1", "2", "4", "6", "7"]
    assert kept.y.tolist() == [0, 1, 2, 1, 0, 1]
    assert record == {"requested": 3, "from_train": 2, "ids": ["3", "5"]}


def test_exclude_refuses_unknown_ids():
    ds = _dataset()
    with pytest.raises(DataError, match=r"^data\.exclude: 2 ids name no sample of this data "
                                        r"\(99, x\); ids are file paths under data\.path, or row "
                                        r"numbers from 0$"):
        exclude(ds, ds, ["1", "x", "99"])


def test_exclude_file_is_read_and_recorded(tmp_path):
    ds = _dataset()
    ids = tmp_path / "drop.txt"
    ids.write_text("# from a review\n4\n\n7\n")
    cfg = load_config({"data": {"exclude": ["1"], "exclude_file": str(ids)}})
    splits = curate(Splits(ds.subset(np.arange(9)), ds.subset([9, 10]), ds.subset([11])), ds, cfg.data, 0)
    assert splits.train.ids.tolist() == ["0", "2", "3", "5", "6", "8"]
    assert splits.info["excluded"]["ids"] == ["1", "4", "7"]
    assert splits.test.ids.tolist() == ["11"]


def test_missing_exclude_file_is_one_line(tmp_path):
    ds = _dataset()
    cfg = load_config({"data": {"exclude_file": str(tmp_path / "none.txt")}})
    with pytest.raises(DataError, match=r"^data\.exclude_file: no file '.*none\.txt'; give a file"):
        curate(Splits(ds, ds, ds), ds, cfg.data, 0)


def test_an_exclude_file_that_is_not_utf8_is_one_line(tmp_path):
    ds = _dataset()
    (tmp_path / "ids.txt").write_bytes(b"1\n2\xff\n")
    cfg = load_config({"data": {"exclude_file": str(tmp_path / "ids.txt")}})
    with pytest.raises(DataError) as info:
        curate(Splits(ds, ds, ds), ds, cfg.data, 0)
    assert str(info.value) == (f"data.exclude_file: {str(tmp_path / 'ids.txt')!r} is not UTF-8 text "
                               "(byte 0xff); give sample ids, one per line, saved as UTF-8")


def test_flip_labels_changes_the_chosen_share_to_other_classes():
    ds = _dataset(n=40)
    flipped, ids = flip_labels(ds, 0.1, seed=3)
    changed = np.flatnonzero(flipped.y != ds.y)
    assert len(ids) == 4 and ds.ids[changed].tolist() == ids
    assert flip_labels(ds, 0.1, seed=3)[1] == ids  # seeded


def test_folds_are_stratified_and_cover_everything():
    y = np.array([0, 1, 2] * 5)
    folds = fold_indices(y, ("a", "b", "c"), 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(15))
    assert [np.bincount(y[f]).tolist() for f in folds] == [[1, 1, 1]] * 5


def test_more_folds_than_the_smallest_class_is_one_line():
    y = np.array([0, 0, 0, 0, 0, 1, 1])
    with pytest.raises(DataError, match=r"^review\.folds: 5 folds need at least 5 training samples "
                                        r"of every class; class 'b' has 2\. Lower review\.folds to "
                                        r"2 or less, or add samples of that class$"):
        fold_indices(y, ("a", "b"), 5, seed=0)


def test_a_class_of_one_sample_is_not_told_to_lower_the_folds_below_2():
    # said "Lower review.folds to 1 or less", which the schema refuses (review.folds >= 2)
    with pytest.raises(DataError, match=r"^review\.folds: 2 folds need at least 2 training samples "
                                        r"of every class; class 'b' has 1\. Add samples of that "
                                        r"class$"):
        fold_indices(np.array([0, 0, 0, 1]), ("a", "b"), 2, seed=0)


def test_confident_learning_flags_the_confidently_other_and_the_outlier():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8], [.3, .7], [.6, .4]])
    issues = confident_learning(labels, probs)
    assert issues.thresholds.round(4).tolist() == [0.6, 0.6333]
    assert issues.flagged.tolist() == [False, False, True, False, False, True]  # .6 >= t0
    assert issues.kind.tolist() == ["", "", "label", "", "", "label"]
    assert issues.suggested.tolist() == [0, 0, 1, 1, 1, 0]
    # no class reaches its threshold and the own class is not the most probable: an outlier
    odd = confident_learning(np.array([0, 0, 1, 1]), np.array([[.9, .1], [.9, .1], [.5, .5], [.4, .6]]))
    assert odd.kind.tolist() == ["", "", "outlier", ""]


def test_binary_scores_become_two_columns():
    assert class_probabilities(np.array([0.25, 1.0])).tolist() == [[0.75, 0.25], [0.0, 1.0]]


def test_margins_and_margin_issues():
    logits = torch.tensor([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0]])
    assert margins(logits, torch.tensor([0, 2])).tolist() == [1.0, -2.0]
    issues = margin_issues(np.array([0, 2]), np.array([1.0, -2.0]), logits.numpy())
    assert issues.flagged.tolist() == [False, True] and issues.suggested.tolist() == [0, 1]


def test_precision_recall_counts_hits():
    assert precision_recall([], ["a"]) == {"flagged": 0, "true": 1, "hits": 0, "precision": 0.0, "recall": 0.0}


class _Fixed(nn.Module):
    """Logits that move by epoch: the tracker must average them, in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(()))
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return torch.cat([x, -x], dim=1) + self.shift


def test_margin_tracker_averages_over_epochs_in_eval_mode():
    x, y = torch.tensor([[1.0], [-2.0], [0.5]]), torch.tensor([0, 0, 1])
    model = _Fixed().train()
    state = type("S", (), {"model": model, "device": torch.device("cpu"), "channels_last": False})()
    tracker = MarginTracker(x, y, batch_size=2)
    for epoch in range(2):
        tracker.on_epoch_end(epoch, {}, state)
    assert tracker.epochs == 2 and model.training and model.modes == [False] * 4
    assert tracker.mean_margin().tolist() == [2.0, -4.0, -1.0]
    assert tracker.mean_logits().tolist() == [[1.0, -1.0], [-2.0, 2.0], [0.5, -0.5]]
    restored = MarginTracker(x, y)
    restored.load_state_dict(tracker.state_dict())
    assert restored.mean_margin().tolist() == [2.0, -4.0, -1.0]


class _Layout(nn.Module):
    """Records each input's memory layout and whether autograd was off; logits from pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((x.is_contiguous(memory_format=torch.channels_last), torch.is_inference_mode_enabled()))
        return x.flatten(1)[:, :2] * torch.tensor([1.0, 2.0])


def test_margin_tracker_scores_images_in_the_runs_layout_in_inference_mode():
    x = torch.arange(3 * 2 * 2 * 2, dtype=torch.float32).reshape(3, 2, 2, 2)
    y = torch.tensor([0, 1, 0])
    margins_of = {}
    for channels_last in (False, True):
        model = _Layout()
        state = type("S", (), {"model": model, "device": torch.device("cpu"), "channels_last": channels_last})()
        tracker = MarginTracker(x, y, batch_size=2)
        tracker.on_epoch_end(0, {}, state)
        assert model.seen == [(channels_last, True)] * 2
        margins_of[channels_last] = tracker.mean_margin().tolist()
    assert margins_of[False] == margins_of[True] == [-2.0, 10.0, -18.0]


def test_binary_margins_read_one_logit_as_zero_and_z():
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.zero_()
    state = type("S", (), {"model": model, "device": torch.device("cpu"), "channels_last": False})()
    tracker = MarginTracker(torch.tensor([[2.0], [2.0]]), torch.tensor([1, 0]))
    tracker.on_epoch_end(0, {}, state)
    assert tracker.mean_margin().tolist() == [2.0, -2.0]


def test_lineage_names_the_excluded_samples():
    from dlforge.candidate.train import _trained_on
    from dlforge.data.prepare import prepare_data

    data = prepare_data(load_config({"data": {"source": "builtin", "name": "wine", "exclude": ["5", "0"]}}))
    record = _trained_on(data)
    assert record["excluded"] == ["5"]  # sample 0 is a test sample and stays there
    assert "0" in data.splits.test.ids and "5" not in data.splits.train.ids
    assert record["samples"] == len(data.splits.train) == data.splits.info["counts"]["train"] - 1 == 123


def test_lineage_of_a_streamed_split_counts_the_whole_split_not_the_sample_in_memory():
    from types import SimpleNamespace

    from dlforge.candidate.train import _trained_on

    splits = SimpleNamespace(train=[0] * 5, info={"streamed": {"train": 23, "in_memory": 5}})
    assert _trained_on(SimpleNamespace(splits=splits)) == {"splits": "train", "samples": 23}


def test_write_review_into_an_existing_folder_is_file_exists_and_writes_nothing(tmp_path):
    """It wrote review-2 and raised 'was created by another process while this one worked',
    which was false: the folder was there before the call (only `keep`, for a caller that
    checked first, says that)."""
    from dlforge.atomic import TargetTaken
    from dlforge.review.findings import Findings
    from dlforge.review.output import write_review

    findings = Findings(ids=np.array(["0"]), labels=np.array([0]), class_names=("a",), signals={})
    (tmp_path / "review").mkdir()
    with pytest.raises(FileExistsError, match="review already exists") as info:
        write_review(tmp_path / "review", findings, top=1)
    assert not isinstance(info.value, TargetTaken)
    assert [p.name for p in tmp_path.iterdir()] == ["review"]
    with pytest.raises(TargetTaken) as info:  # the CLI's: found absent first, so made meanwhile
        write_review(tmp_path / "review", findings, top=1, keep=True)
    assert [p.name for p in info.value.kept.iterdir()] == ["review.json"]
