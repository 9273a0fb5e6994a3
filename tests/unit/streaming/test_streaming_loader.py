"""The streaming loader: the in-memory loader's batches whatever the worker count, resuming
mid-epoch, and one share per data-parallel rank."""

from __future__ import annotations

import pytest
import torch
from tests.unit.streaming.shard_data import as_float, image_splits

from dlforge.config.schema import AugmentConfig, TrainConfig
from dlforge.data.augment import build_augmenter
from dlforge.data.loader import BatchLoader, Loaders, ShardedLoader
from dlforge.data.shards import ShardSet, write_shards
from dlforge.data.streaming import StreamingLoader
from dlforge.train.distributed import DataParallel

AUGMENT = build_augmenter(AugmentConfig(hflip={"p": 0.5}, noise={"std": 0.1, "p": 0.5}))


@pytest.fixture
def train(tmp_path):
    write_shards(image_splits(), tmp_path / "s", shard_size=5)
    return ShardSet.open(tmp_path / "s").split("train")


def streaming(split, workers=0, augment=None, batch_size=4):
    return StreamingLoader(split, as_float, "multiclass", batch_size=batch_size, shuffle=True,
                           seed=7, augment=augment, workers=workers)


def in_memory(augment=None, batch_size=4):
    part = image_splits().train
    return BatchLoader(torch.from_numpy(as_float(part.x)), torch.from_numpy(part.y),
                       batch_size=batch_size, shuffle=True, seed=7, augment=augment)


def epoch(loader, number):
    loader.set_epoch(number)
    return [(xb.clone(), yb.clone()) for xb, yb in loader]


def assert_same(got, want):
    assert len(got) == len(want) > 0
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        assert torch.equal(gx, wx) and torch.equal(gy, wy)


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_the_batches_are_the_in_memory_loaders_whatever_the_worker_count(train, workers):
    loader = streaming(train, workers, AUGMENT)
    assert (len(loader), loader.num_samples) == (6, 23)
    for number in (0, 3):
        assert_same(epoch(loader, number), epoch(in_memory(AUGMENT), number))


def test_each_epoch_has_its_own_order(train):
    loader = streaming(train)
    first = [int(v) for xb, _ in epoch(loader, 0) for v in xb[:, 0, 0, 0]]
    second = [int(v) for xb, _ in epoch(loader, 1) for v in xb[:, 0, 0, 0]]
    assert sorted(first) == sorted(second) == list(range(23))
    assert first != second


@pytest.mark.parametrize("workers", [0, 2])
def test_resuming_mid_epoch_yields_exactly_the_remaining_batches(train, workers):
    whole = epoch(streaming(train, workers, AUGMENT), 2)
    interrupted = streaming(train, workers, AUGMENT)
    interrupted.set_epoch(2)
    batches = iter(interrupted)
    seen = [next(batches), next(batches)]
    state = interrupted.state_dict()
    assert (state["epoch"], state["batch"]) == (2, 2)
    resumed = streaming(train, workers, AUGMENT)
    resumed.load_state_dict(state)
    assert_same(seen + epoch(resumed, 2), whole)


@pytest.mark.parametrize("world", [2, 3])
def test_every_rank_gets_as_many_batches_and_every_sample_is_seen(train, world):
    loaders = [ShardedLoader(streaming(train, batch_size=3), r, world, pad=True) for r in range(world)]
    shares = [[int(v) for xb, _ in epoch(loader, 1) for v in xb[:, 0, 0, 0]] for loader in loaders]
    per_rank = -(-23 // world)  # 12 of 24 (one sample padded) or 8 of 24 (one padded)
    assert [len(s) for s in shares] == [per_rank] * world
    assert len({len(loader) for loader in loaders}) == 1
    seen = [v for share in shares for v in share]
    assert sorted(set(seen)) == list(range(23))
    assert len(seen) - 23 == per_rank * world - 23 == 1  # the padding, stated


def test_validation_shards_see_each_sample_exactly_once(train):
    shares = [[int(v) for xb, _ in epoch(ShardedLoader(streaming(train), r, 2, pad=False), 0)
               for v in xb[:, 0, 0, 0]] for r in range(2)]
    assert [len(s) for s in shares] == [12, 11]
    assert sorted(shares[0] + shares[1]) == list(range(23))


def test_data_parallel_shards_streamed_loaders_into_equal_shares(train):
    val = StreamingLoader(train, as_float, "multiclass", batch_size=4)
    shares = [DataParallel(rank, 3).prepare(Loaders(streaming(train), val), TrainConfig())[0]
              for rank in range(3)]
    assert [(s.train.num_samples, len(s.train), s.val.num_samples) for s in shares] == [
        (8, 2, 8), (8, 2, 8), (8, 2, 7)]
    assert sorted(int(v) for s in shares for xb, _ in epoch(s.val, 0) for v in xb[:, 0, 0, 0]) \
        == list(range(23))
