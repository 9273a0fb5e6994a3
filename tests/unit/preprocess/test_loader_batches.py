"""BatchLoader and to_tensors: target dtypes, seeded per-epoch order, weighted sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlforge.config.schema import AugmentConfig
from dlforge.data.augment import build_augmenter
from dlforge.data.dataset import TaskSpec
from dlforge.data.loader import BatchLoader, Loaders, to_tensors
from dlforge.errors import DataError

X = torch.arange(64, dtype=torch.float32).view(64, 1)
Y = torch.arange(64)


def orders(loader: BatchLoader, epoch: int) -> list[int]:
    loader.set_epoch(epoch)
    return torch.cat([yb for _, yb in loader]).tolist()


@pytest.mark.parametrize(("kind", "y", "dtype", "values"), [
    ("multiclass", np.array([2, 0, 1]), torch.int64, [2, 0, 1]),
    ("multiclass", np.eye(3)[[2, 0, 1]], torch.int64, [2, 0, 1]),
    ("binary", np.array([[1], [0], [1]]), torch.float32, [1.0, 0.0, 1.0]),
    ("multilabel", np.array([[1, 0], [0, 0], [1, 1]]), torch.float32, [[1, 0], [0, 0], [1, 1]]),
    ("regression", np.array([0.5, 1.5, -2.0]), torch.float32, [0.5, 1.5, -2.0]),
])
def test_to_tensors_target_dtype_per_task(kind, y, dtype, values):
    x = np.zeros((3, 2), np.float32)
    xt, yt = to_tensors(x, y, TaskSpec(kind, ("a", "b", "c")))
    assert xt.dtype == torch.float32 and xt.shape == (3, 2)
    assert yt.dtype == dtype and yt.tolist() == values


def test_to_tensors_keeps_token_ids_int64_and_checks_lengths():
    xt, _ = to_tensors(np.ones((2, 5), np.int64), np.array([0, 1]), "binary")
    assert xt.dtype == torch.int64
    with pytest.raises(DataError, match=r"^input: 2 samples but 3 labels; they must match$"):
        to_tensors(np.ones((2, 5)), np.array([0, 1, 0]), "binary")


def test_unshuffled_order_and_batch_sizes():
    loader = BatchLoader(X, Y, batch_size=24)
    assert len(loader) == 3 and loader.num_samples == 64
    batches = list(loader)
    assert [len(yb) for _, yb in batches] == [24, 24, 16]
    assert torch.cat([yb for _, yb in batches]).tolist() == list(range(64))
    assert all(xb.is_contiguous() for xb, _ in batches)


def test_same_seed_and_epoch_same_order_other_epochs_differ():
    a = BatchLoader(X, Y, batch_size=10, shuffle=True, seed=7)
    b = BatchLoader(X, Y, batch_size=10, shuffle=True, seed=7)
    assert orders(a, 3) == orders(b, 3)
    assert orders(a, 3) != orders(a, 4)
    assert orders(a, 3) != orders(BatchLoader(X, Y, batch_size=10, shuffle=True, seed=8), 3)
    for epoch in range(3):  # every sample exactly once per epoch
        assert sorted(orders(a, epoch)) == list(range(64))


def test_resumed_loader_sees_the_batches_of_an_uninterrupted_run():
    run = BatchLoader(X, Y, batch_size=16, shuffle=True, seed=1)
    seen = [torch.cat([yb for _, yb in run]).tolist() for _ in range(3)]  # epochs 0, 1, 2
    resumed = BatchLoader(X, Y, batch_size=16, shuffle=True, seed=1)
    assert orders(resumed, 2) == seen[2]
    assert seen[0] != seen[1]


def test_augmentation_is_deterministic_per_epoch_and_leaves_the_order_alone():
    x = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    aug = build_augmenter(AugmentConfig(noise={"std": 0.1, "p": 1.0}))
    loader = BatchLoader(x, Y, batch_size=32, shuffle=True, seed=3, augment=aug)
    plain = BatchLoader(x, Y, batch_size=32, shuffle=True, seed=3)
    loader.set_epoch(1)
    first = [xb for xb, _ in loader]
    loader.set_epoch(1)
    again = [xb for xb, _ in loader]
    assert all(torch.equal(p, q) for p, q in zip(first, again, strict=True))
    assert orders(loader, 1) == orders(plain, 1)
    plain.set_epoch(1)
    assert not torch.equal(first[0], next(iter(plain))[0])


def test_weighted_sampler_balances_classes():
    y = torch.tensor([0] * 9000 + [1] * 1000)
    counts = torch.bincount(y).double()
    weights = (1.0 / counts)[y]
    loader = BatchLoader(torch.zeros(10_000, 1), y, batch_size=1000, shuffle=True, seed=0,
                         sample_weights=weights.numpy())
    loader.set_epoch(0)
    drawn = torch.bincount(torch.cat([yb for _, yb in loader]), minlength=2).tolist()
    assert sum(drawn) == 10_000 and len(loader) == 10
    assert abs(drawn[0] - 5000) < 150  # binomial sd = 50
    assert drawn == [5035, 4965]  # exact for seed 0, epoch 0


def test_bad_sample_weights_are_data_errors():
    with pytest.raises(DataError) as err:
        BatchLoader(X, Y, batch_size=8, sample_weights=np.ones(3))
    assert str(err.value) == "sample_weights: expected one weight per sample, shape (64,), got (3,)"
    with pytest.raises(DataError, match="must be finite, non-negative and not all zero"):
        BatchLoader(X, Y, batch_size=8, sample_weights=np.zeros(64))


def test_loaders_holds_the_splits():
    train = BatchLoader(X, Y, batch_size=8)
    loaders = Loaders(train=train, val=train)
    assert loaders.test is None and loaders.class_weights is None
