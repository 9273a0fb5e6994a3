"""Models that freeze parameters during training: the per-epoch hook is found inside wrappers,
and DDP is told to expect the frozen parameters' missing gradients (else its next step fails
waiting for their all-reduce)."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn

from dlforge.config.schema import AirbenchConfig
from dlforge.models import build_model
from dlforge.train.distributed import changes_trainable
from dlforge.train.loop import _epoch_started


def airbench(**kwargs):
    torch.manual_seed(0)
    return build_model(AirbenchConfig(widths=[4], **kwargs), input_shape=(3, 8, 8),
                       num_outputs=3)


def test_airbench_declares_a_change_only_with_whiten_bias_epochs():
    assert changes_trainable(airbench()) is False
    assert changes_trainable(airbench(whiten_bias_epochs=1)) is True
    assert changes_trainable(nn.Sequential(airbench(whiten_bias_epochs=1))) is True


def test_the_epoch_hook_reaches_a_wrapped_model():
    wrapped = nn.Sequential(airbench(whiten_bias_epochs=2))
    _epoch_started(wrapped, 1)
    assert wrapped[0].stem.bias.requires_grad is True
    _epoch_started(wrapped, 2)
    assert wrapped[0].stem.bias.requires_grad is False


@pytest.fixture
def one_process_group():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def steps_with_a_freeze(find_unused: bool) -> None:
    model = airbench(whiten_bias_epochs=1)
    ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=find_unused)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    for epoch in range(3):
        _epoch_started(model, epoch)
        nn.functional.cross_entropy(ddp(x), y).backward()
        model.zero_grad(set_to_none=True)


def test_ddp_trains_on_after_the_freeze_only_when_told(one_process_group):
    steps_with_a_freeze(find_unused=True)
    with pytest.raises(RuntimeError, match="finished reduction"):
        steps_with_a_freeze(find_unused=False)
