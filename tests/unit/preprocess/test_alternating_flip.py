"""Alternating flip (`augment.hflip.alternate`): one coin per sample for the run, flipped on
even epochs iff heads and on odd epochs iff tails, whatever loader, batch size, order, rank or
resume point brings the sample; runs without it keep their batches."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from dlforge.cli import main
from dlforge.config import load_config
from dlforge.config.schema import AugmentConfig
from dlforge.data.augment import Augmenter, build_augmenter, flip_coins
from dlforge.data.dataset import Dataset, Provenance, Splits, TaskSpec
from dlforge.data.loader import BatchLoader, ShardedLoader
from dlforge.data.shards import ShardSet, write_shards
from dlforge.data.streaming import StreamingLoader
from dlforge.errors import ConfigError, DataError

N, SEED = 23, 0
ALTERNATE = build_augmenter(AugmentConfig(hflip={"p": 0.5, "alternate": True}))
# Sample k is the 1 x 2 image [2k, 2k + 1]: flipped iff its first pixel is odd.
X = torch.stack([torch.arange(N) * 2, torch.arange(N) * 2 + 1], 1).float().view(N, 1, 1, 2)
COINS = [True, False, False, True, True, True, True, False, True, False, False, False, True,
         False, False, False, True, False, True, True, True, False, False]  # flip_coins(0, 0..22)


def expected(epoch: int) -> dict[int, bool]:
    return {k: coin != bool(epoch % 2) for k, coin in enumerate(COINS)}


def flips(batches) -> dict[int, bool]:
    """{sample: flipped} over `batches` (a sample seen twice must agree with itself)."""
    seen: dict[int, bool] = {}
    for xb, _ in batches:
        for first in xb[:, 0, 0, 0].long().tolist():
            assert seen.setdefault(first // 2, bool(first % 2)) == bool(first % 2)
    return seen


def memory(batch_size: int = 4, shuffle: bool = True) -> BatchLoader:
    return BatchLoader(X, torch.zeros(N), batch_size=batch_size, shuffle=shuffle, seed=SEED,
                       augment=ALTERNATE)


def epoch_of(loader, epoch: int) -> dict[int, bool]:
    loader.set_epoch(epoch)
    return flips(loader)


def test_the_coins_of_a_seed():
    assert flip_coins(SEED, torch.arange(N)).tolist() == COINS
    assert flip_coins(SEED, torch.tensor([[5, 3], [0, 22]])).tolist() == [[True, True], [True, False]]
    assert flip_coins(SEED + 1, torch.arange(N)).tolist() != COINS


def test_roughly_half_the_coins_of_a_cifar_sized_split_are_heads():
    assert int(flip_coins(0, torch.arange(50_000)).sum()) == 24_820
    assert int(flip_coins(1, torch.arange(50_000)).sum()) == 24_988


def test_even_epochs_flip_the_heads_odd_epochs_the_tails():
    loader = memory(shuffle=False)
    seen = [epoch_of(loader, epoch) for epoch in range(4)]
    assert seen[0] == expected(0) and seen[1] == expected(1)
    assert seen[2] == seen[0] and seen[3] == seen[1]
    assert all(seen[0][k] != seen[1][k] for k in range(N))  # both ways in every two epochs


@pytest.mark.parametrize(("batch_size", "shuffle"), [(3, False), (3, True), (7, False), (7, True)])
def test_the_decision_is_the_samples_whatever_the_batch_size_and_order(batch_size, shuffle):
    loader = memory(batch_size, shuffle)
    assert [epoch_of(loader, epoch) for epoch in (0, 1, 2)] == [expected(0), expected(1), expected(0)]


def test_each_data_parallel_rank_flips_its_samples_by_their_coins():
    inner = memory(batch_size=3)
    for epoch in (0, 1):
        shares = [epoch_of(ShardedLoader(inner, rank, 2, pad=True), epoch) for rank in (0, 1)]
        assert len(shares[0]) + len(shares[1]) == N + 1  # the padded sample is on both lists
        assert shares[0] | shares[1] == expected(epoch)


def test_a_mid_epoch_resume_keeps_the_decisions():
    cut = memory(batch_size=3)
    cut.set_epoch(5)
    batches = iter(cut)
    before = flips([next(batches), next(batches)])
    again = memory(batch_size=3)
    again.load_state_dict(cut.state_dict())
    after = flips(again)
    assert len(before) == 6 and len(after) == N - 6
    assert before | after == expected(5)


@pytest.fixture
def shards(tmp_path):
    task = TaskSpec("multiclass", ("a", "b"))

    def part(n: int) -> Dataset:
        x = X[:n].numpy().astype(np.uint8)
        return Dataset(x=x, y=np.arange(n) % 2, task=task, modality="image", provenance=Provenance("test"))

    write_shards(Splits(train=part(N), val=part(4), test=part(4)), tmp_path / "s", shard_size=5)
    return ShardSet.open(tmp_path / "s").split("train")


def streaming(split, batch_size: int = 4) -> StreamingLoader:
    return StreamingLoader(split, lambda x: np.asarray(x, np.float32), "multiclass",
                           batch_size=batch_size, shuffle=True, seed=SEED, augment=ALTERNATE)


def test_the_streaming_loader_and_its_ranks_flip_by_the_coins(shards):
    assert epoch_of(streaming(shards), 0) == expected(0)
    assert epoch_of(streaming(shards, batch_size=7), 1) == expected(1)
    shares = [epoch_of(ShardedLoader(streaming(shards), rank, 2, pad=True), 1) for rank in (0, 1)]
    assert shares[0] | shares[1] == expected(1)
    cut = streaming(shards)
    cut.set_epoch(2)
    batches = iter(cut)
    before = flips([next(batches)])
    again = streaming(shards)
    again.load_state_dict(cut.state_dict())
    assert len(before) == 4 and before | flips(again) == expected(2)


def test_alternating_leaves_the_other_ops_their_draws():
    """The same brightness shift per sample with and without alternate (its hflip draw is made)."""
    ops = {"brightness": {"amount": 0.5, "p": 1.0}}
    x = torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(0))

    def shifts(hflip: dict) -> torch.Tensor:
        out = Augmenter(AugmentConfig(hflip=hflip, **ops))(
            x, torch.Generator().manual_seed(1), index=torch.arange(8), epoch=0)
        return (out - x).mean(dim=(1, 2, 3))  # a flip keeps the mean

    assert torch.allclose(shifts({"p": 0.5, "alternate": True}), shifts({"p": 0.5}), atol=1e-6)


def test_without_positions_an_alternating_flip_is_refused():
    x = torch.zeros(3, 1, 2, 2)
    with pytest.raises(DataError, match=r"^augment\.hflip\.alternate: needs each image's position "
                       r"in its split \(got none\); call augment\(x, generator, index=positions, "
                       r"epoch=epoch, seed=seed\) as the loaders do, or set alternate: false$"):
        ALTERNATE(x, torch.Generator())
    with pytest.raises(DataError, match=r"\(got 2 positions for 3 images\)"):
        ALTERNATE(x, torch.Generator(), index=torch.arange(2))


def test_alternate_needs_p_one_half():
    with pytest.raises(ConfigError, match=r"^augment\.hflip\.p: alternate: true flips every image "
                       r"in one of each two epochs, i\.e\. with p 0\.5 \(got 0\.3\); set "
                       r"augment\.hflip\.p: 0\.5 or alternate: false$"):
        load_config({"augment": {"hflip": {"p": 0.3, "alternate": True}}})
    assert load_config({"augment": {"hflip": {"alternate": True}}}).augment.hflip.alternate is True
    assert load_config({"augment": {"hflip": {"p": 0.3}}}).augment.hflip.alternate is False


def digest(loader, epochs) -> str:
    h = hashlib.sha256()
    for epoch in epochs:
        loader.set_epoch(epoch)
        for xb, _ in loader:
            h.update(np.round(xb.numpy(), 4).tobytes())
    return h.hexdigest()[:16]


def test_runs_without_alternate_keep_the_batches_they_had_before_it():
    """Digests of two epochs' batches recorded before the alternating flip existed."""
    aug = build_augmenter(AugmentConfig(hflip={"p": 0.5}, crop={"padding": 1, "p": 1.0},
                                        brightness={"amount": 0.5, "p": 0.5}))
    x = torch.arange(7 * 9, dtype=torch.float32).view(7, 1, 3, 3)
    inner = BatchLoader(x, torch.arange(7), batch_size=3, shuffle=True, seed=4, augment=aug)
    assert digest(inner, (0, 1)) == "ceb93897d87ad43b"
    assert digest(ShardedLoader(inner, 1, 2, pad=True), (0, 1)) == "0ffab0a815bf2979"


def test_a_search_may_not_move_p_away_from_one_half_under_alternate():
    space = {"augment.hflip.p": {"uniform": [0.2, 0.8]}}
    with pytest.raises(ConfigError, match=r"^tune\.space\.augment\.hflip\.p: the value 0\.2 is not "
                       r"allowed: .*\(got 0\.2\); set augment\.hflip\.p: 0\.5 or alternate: false"):
        load_config({"augment": {"hflip": {"alternate": True}}, "tune": {"space": space}})


def test_the_cli_refuses_the_recipe_with_another_p_and_writes_nothing(tmp_path, capsys):
    recipe = Path(__file__).resolve().parents[3] / "examples" / "cifar10.yaml"
    code = main(["-w", str(tmp_path / "ws"), "run", str(recipe), "--set", "augment.hflip.p=0.4"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: augment.hflip.p: alternate: true flips every image in one of each two epochs, "
        "i.e. with p 0.5 (got 0.4); set augment.hflip.p: 0.5 or alternate: false")
    assert not (tmp_path / "ws").exists()
