"""A rank other than 0 whose rank 0 left before sending the config: quiet when rank 0 is on
its node (rank 0's own line says why), an error otherwise."""

from __future__ import annotations

import pytest

from dlforge.pipeline import distributed_run
from dlforge.train import distributed
from dlforge.train.distributed import DistributedError


def _config_never_comes(reason: str):
    def share_config(config=None):
        with distributed.failing("waiting for rank 0's config (if rank 0 stopped, its error says why)"):
            raise RuntimeError(reason)

    return share_config


@pytest.fixture
def trained(monkeypatch):
    calls = []
    monkeypatch.setattr(distributed_run, "train_candidate", lambda *a, **k: calls.append(a))
    return calls


def test_rank_0_gone_on_this_node_ends_the_rank_quietly(monkeypatch, trained):
    # `--nproc 2` with a config rule rank 0 finds only with the data printed 3 lines: rank 0's,
    # rank 1's "failed waiting for rank 0's config ... Connection closed by peer", the launcher's
    monkeypatch.setenv("GROUP_RANK", "0")
    monkeypatch.setattr(distributed, "share_config",
                        _config_never_comes("Connection closed by peer [127.0.0.1]:46494"))
    assert distributed_run._follow() is None
    assert trained == []


@pytest.mark.parametrize(("group_rank", "reason"), [
    ("1", "Connection closed by peer [10.0.0.1]:46494"),  # rank 0 on another node: say it here
    ("0", "Socket Timeout"),  # rank 0 hangs: the timeout is news
])
def test_otherwise_the_rank_says_what_it_waited_for(monkeypatch, trained, group_rank, reason):
    monkeypatch.setenv("GROUP_RANK", group_rank)
    monkeypatch.setattr(distributed, "share_config", _config_never_comes(reason))
    with pytest.raises(DistributedError, match=r"^distributed: rank 0 failed waiting for rank 0's "
                                               rf"config \(if rank 0 stopped, its error says why\): "
                                               rf"{reason.split(' [')[0]}"):
        distributed_run._follow()
    assert trained == []
