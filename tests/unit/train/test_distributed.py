"""Data parallelism's pieces without processes: shards, the LR rule, the single-process hooks,
the schedule's realignment to another process count, the launcher's arguments."""

from __future__ import annotations

import re

import pytest
import torch
import typer
from test_loop_support import make_data, make_loaders, train_cfg

from dlforge.cli.launch import Launch
from dlforge.config.schema import TrainConfig
from dlforge.data.loader import BatchLoader, ShardedLoader, shard_indices
from dlforge.errors import DataError
from dlforge.train import distributed
from dlforge.train.distributed import SINGLE, DataParallel, describe, parallel, scaled_lr
from dlforge.train.schedules import LRSchedule


@pytest.mark.parametrize(("n", "world"), [(5, 2), (7, 3), (2, 3), (100, 4)])
def test_padded_shards_are_equal_and_cover_every_sample(n, world):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    shards = [shard_indices(order, r, world, pad=True) for r in range(world)]
    assert {len(s) for s in shards} == {-(-n // world)}
    assert set(torch.cat(shards).tolist()) == set(range(n))


@pytest.mark.parametrize(("n", "world"), [(5, 2), (101, 2), (7, 3)])
def test_unpadded_shards_see_every_sample_exactly_once(n, world):
    order = torch.randperm(n)
    shards = torch.cat([shard_indices(order, r, world, pad=False) for r in range(world)])
    assert sorted(shards.tolist()) == list(range(n))


def test_batch_k_of_all_ranks_is_batch_k_of_one_process_at_the_effective_batch():
    x = torch.arange(203.0)
    one = BatchLoader(x, x, batch_size=32, shuffle=True, seed=7)
    ranks = [ShardedLoader(BatchLoader(x, x, batch_size=16, shuffle=True, seed=7), r, 2, pad=True)
             for r in range(2)]
    for loader in (one, *ranks):
        loader.set_epoch(3)
    batches = [list(loader) for loader in ranks]
    assert len(batches[0]) == len(batches[1]) == len(ranks[0]) == 7  # 102 samples each
    for k, (xb, _) in enumerate(one):
        joined = torch.cat([batches[0][k][0], batches[1][k][0]])
        if k < 6:
            assert sorted(joined.tolist()) == sorted(xb.tolist())
        else:  # 11 samples, padded with the epoch's first one: 12 across the ranks
            first = x[one.order(3)[0]].item()
            assert sorted(joined.tolist()) == sorted([*xb.tolist(), first])


def test_the_shards_of_an_epoch_derive_from_seed_and_epoch_only():
    x = torch.arange(50.0)

    def epoch_of(epoch):
        loader = ShardedLoader(BatchLoader(x, x, batch_size=8, shuffle=True, seed=3), 1, 2, pad=True)
        loader.set_epoch(epoch)
        return torch.cat([xb for xb, _ in loader]).tolist()

    assert epoch_of(4) == epoch_of(4) and epoch_of(4) != epoch_of(5)


def test_more_processes_than_training_samples_is_a_data_error():
    x, y = make_data("multiclass", n=3)
    with pytest.raises(DataError) as err:
        DataParallel(0, 4).prepare(make_loaders(x, y), train_cfg())
    assert str(err.value) == "--nproc: 4 processes but only 3 training samples; use at most 3 processes"


def test_prepare_shards_both_loaders_and_scales_the_lr():
    x, y = make_data("multiclass", n=10)
    loaders, cfg = DataParallel(1, 2).prepare(make_loaders(x, y, batch_size=4), train_cfg(lr_scaling="linear"))
    assert (loaders.train.num_samples, loaders.val.num_samples, len(loaders.train)) == (5, 5, 2)
    assert cfg.lr == pytest.approx(0.02)


@pytest.mark.parametrize(("rule", "lr"), [("none", 0.01), ("linear", 0.04), ("sqrt", 0.02)])
def test_lr_scaling_rules(rule, lr):
    assert scaled_lr(TrainConfig(lr=0.01, lr_scaling=rule), 4) == pytest.approx(lr)


def test_the_start_line_states_effective_batch_and_lr():
    assert describe(TrainConfig(batch_size=64, lr=0.002, lr_scaling="linear"), 2) == (
        "data parallel: 2 processes x batch 64 = effective batch 128; lr 0.002 -> 0.004 "
        "(train.lr_scaling: linear)")


def test_one_process_gets_the_hooks_that_change_nothing():
    x, y = make_data("multiclass")
    loaders, cfg = make_loaders(x, y), train_cfg()
    assert parallel() is SINGLE and not distributed.launched()
    assert SINGLE.prepare(loaders, cfg) == (loaders, cfg)
    assert SINGLE.reduce({"loss": 1.5, "_samples": 3}) == {"loss": 1.5, "_samples": 3}
    assert distributed.share_config({"a": 1}) == {"a": 1} and distributed.world_size() == 1


def test_the_schedule_continues_at_the_same_point_with_another_process_count():
    cfg = TrainConfig(epochs=4, lr=0.1, schedule={"type": "cosine", "warmup_steps": 3})
    weights = [torch.zeros(1, requires_grad=True)]

    def schedule(steps_per_epoch):
        return LRSchedule(torch.optim.SGD(weights, lr=cfg.lr), cfg, steps_per_epoch)

    two_ranks, one = schedule(5), schedule(10)
    for _ in range(2 * 5):  # two epochs at 5 steps (each of 2 ranks)
        two_ranks.step()
    for epoch in range(2):
        two_ranks.epoch_end(epoch, {})
    resumed = schedule(10)
    resumed.load_state_dict(two_ranks.state_dict())
    for _ in range(2 * 10):
        one.step()
    for epoch in range(2):
        one.epoch_end(epoch, {})
    assert resumed.lr == pytest.approx(one.lr) and resumed.lr != pytest.approx(two_ranks.lr)


def test_launch_arguments_for_one_node_and_for_a_rendezvous():
    one = Launch(nproc=2)
    assert one.wanted and one.torchrun_args(["train", "c.yaml"]) == [
        "--nnodes", "1", "--nproc-per-node", "2", "--standalone", "--max-restarts", "0",
        "--shutdown-timeout", "5", "-m", "dlforge", "train", "c.yaml"]
    two = Launch(nproc=1, nnodes=2, node_rank=1, endpoint="10.0.0.1:29400", timeout=60)
    assert two.torchrun_args(["train"])[4:12] == [
        "--rdzv-backend", "static", "--rdzv-endpoint", "10.0.0.1:29400", "--rdzv-conf",
        "join_timeout=60,read_timeout=60,timeout=60", "--node-rank", "1"]  # static reads timeout
    c10d = Launch(nproc=1, nnodes=2, endpoint="10.0.0.1:29400", timeout=60)
    assert c10d.torchrun_args(["train"])[4:10] == [
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "10.0.0.1:29400", "--rdzv-conf",
        "join_timeout=60,read_timeout=60"]
    assert not Launch().wanted


def test_a_static_rendezvous_not_complete_in_time_is_one_line(monkeypatch):
    import torch.distributed.run

    from dlforge.cli.launch import run_processes
    from dlforge.train.distributed import DistributedError

    def no_node_0(args):
        assert args.rdzv_conf == "join_timeout=3,read_timeout=3,timeout=3"
        raise torch.distributed.DistNetworkError("The client socket has timed out after 3000ms "
                                                 "while trying to connect to (10.0.0.1, 29400).")

    monkeypatch.setattr(torch.distributed.run, "run", no_node_0)
    launch = Launch(nproc=1, nnodes=2, node_rank=1, endpoint="10.0.0.1:29400", timeout=3)
    with pytest.raises(DistributedError) as info:
        run_processes(launch, ["run", "--resume", "abc"])
    assert str(info.value) == (
        "--timeout: the static rendezvous at 10.0.0.1:29400 (node 0 hosts it) was not complete "
        "within 3s: The client socket has timed out after 3000ms while trying to connect to "
        "(10.0.0.1, 29400); start all --nnodes 2 nodes within the timeout, or raise --timeout")


@pytest.mark.parametrize(("launch", "message"), [
    (Launch(nproc=2, nnodes=2), "needs --rdzv-endpoint HOST:PORT with --nnodes > 1"),
    (Launch(nnodes=2, node_rank=2, endpoint="h:1"), "must be below --nnodes 2 (got 2)"),
])
def test_launch_options_that_cannot_work_together(launch, message):
    with pytest.raises(typer.BadParameter, match=re.escape(message)):
        launch.check()


@pytest.fixture
def one_rank_group():
    """A process group of this process alone (gloo), left afterwards."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    distributed.close()


def test_reduce_gives_sample_weighted_means_and_the_sample_sum(one_rank_group):
    dp = DataParallel(0, 1)
    assert parallel() is SINGLE  # a group of one trains as one process
    assert dp.reduce({"loss": 0.5, "accuracy": 0.75, "_samples": 4}) == {
        "loss": 0.5, "accuracy": 0.75, "_samples": 4}
    reduced = dp.reduce({"val_loss": float("nan"), "_samples": 0})  # a rank with no samples
    assert reduced["_samples"] == 0 and reduced["val_loss"] != reduced["val_loss"]
