"""The replay buffer: class-balanced reservoirs, continued by an update, bounded; plain for
regression; read back from a bundle without pickle."""

from __future__ import annotations

import numpy as np
import pytest

from dlforge.data.dataset import TaskSpec
from dlforge.errors import DataError
from dlforge.lifecycle.replay import REPLAY, Replay, read_replay, sample_replay
from dlforge.lifecycle.reservoir import Reservoir

THREE = TaskSpec("multiclass", ("a", "b", "c"))


def test_each_class_keeps_an_equal_share_and_counts_what_it_stands_for():
    y = np.array([0] * 50 + [1] * 30 + [2] * 2)
    buffer = sample_replay(np.arange(82.0)[:, None], y, THREE, size=30, seed=0)
    assert np.bincount(buffer.y).tolist() == [10, 10, 2]
    assert buffer.seen.tolist() == [50, 30, 2]
    assert set(buffer.x[buffer.y == 2, 0]) == {80.0, 81.0}  # a rare class is kept whole


def test_an_update_continues_the_reservoirs_and_stays_bounded():
    first = sample_replay(np.zeros((100, 1)), np.zeros(100, dtype=np.int64), THREE, size=30, seed=0)
    after = sample_replay(np.ones((300, 1)), np.zeros(300, dtype=np.int64), THREE, size=30, seed=1,
                          start=first)
    assert (len(first), len(after), after.seen.tolist()) == (10, 10, [400, 0, 0])
    shares = [sample_replay(np.ones((300, 1)), np.zeros(300, dtype=np.int64), THREE, size=30,
                            seed=s, start=first).x.mean() for s in range(200)]
    assert abs(np.mean(shares) - 0.75) < 0.03  # 300 of the 400 samples seen are new


def test_regression_keeps_one_plain_reservoir():
    buffer = sample_replay(np.arange(50.0)[:, None], np.linspace(0, 1, 50).astype(np.float32),
                           TaskSpec("regression", ("target",)), size=8, seed=0)
    assert (len(buffer), buffer.seen.tolist(), buffer.y.dtype) == (8, [50], np.float32)


@pytest.mark.parametrize(("fresh", "ratio", "drawn"), [(10, 0.5, 10), (30, 0.25, 10), (100, 0.5, 40),
                                                       (10, 0.0, 0)])
def test_draw_makes_replay_the_ratio_of_the_mix_at_most_the_buffer(fresh, ratio, drawn):
    buffer = Replay(np.zeros((40, 1)), np.zeros(40, dtype=np.int64), np.array([40]))
    picks = buffer.draw(fresh, ratio, seed=0)
    assert len(picks) == drawn and len(set(picks.tolist())) == drawn


def test_a_resumed_reservoir_smaller_than_its_count_stands_for_its_rows_only():
    assert Reservoir.resume(np.arange(4)[:, None], 100, size=10).seen == 4
    assert Reservoir.resume(np.arange(10)[:, None], 100, size=10).seen == 100
    assert Reservoir.resume(np.arange(20)[:, None], 100, size=10).seen == 10


def test_a_bundle_without_buffer_has_none_and_a_broken_one_is_an_error(tmp_path):
    assert read_replay(tmp_path) is None
    (tmp_path / REPLAY).write_bytes(b"not an npz")
    with pytest.raises(DataError, match=r"^replay buffer: .*replay\.npz is unreadable .*re-register"):
        read_replay(tmp_path)
