"""Resuming: a schedule restored from its state_dict continues the exact same LR sequence."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn

from dlforge.config.schema import TrainConfig
from dlforge.errors import ConfigError
from dlforge.train.optim import build_optimizer
from dlforge.train.schedules import LRSchedule

STEPS, EPOCHS, STOP = 3, 6, 4  # interrupted after epoch STOP - 1
LOSSES = [1.0] * EPOCHS  # plateau: reduced after epochs 2 and 4, one bad epoch at the stop

SCHEDULES = [
    {"type": "constant", "warmup_steps": 4},
    {"type": "step", "step_epochs": 2, "gamma": 0.5, "warmup_steps": 2},
    {"type": "plateau", "patience": 1, "factor": 0.5, "warmup_steps": 5},
    {"type": "exponential", "decay_rate": 0.7, "decay_steps": 2, "staircase": True},
    {"type": "inverse_time", "decay_rate": 0.5, "decay_steps": 3},
    {"type": "cosine", "min_lr": 0.01, "warmup_steps": 4},
    {"type": "one_cycle", "pct_start": 0.4},
]


def _setup(schedule: dict) -> tuple[torch.optim.Optimizer, LRSchedule, nn.Module]:
    cfg = TrainConfig(lr=0.1, epochs=EPOCHS, optimizer="sgd", schedule=schedule)
    model = nn.Linear(2, 1)
    opt = build_optimizer(model, cfg)
    return opt, LRSchedule(opt, cfg, STEPS), model


def _run(opt, sched, model, epochs: range) -> list[tuple[float, ...]]:
    """The loop's order: record, optimizer step, schedule step; epoch_end after each epoch."""
    lrs = []
    for epoch in epochs:
        for _ in range(STEPS):
            lrs.append(tuple(g["lr"] for g in opt.param_groups))
            for p in model.parameters():
                p.grad = torch.zeros_like(p)
            opt.step()
            sched.step()
        sched.epoch_end(epoch, {"loss": 0.5, "val_loss": LOSSES[epoch]})
    return lrs


def _through_file(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=[s["type"] for s in SCHEDULES])
@pytest.mark.parametrize("order", ["schedule_first", "optimizer_first", "schedule_only"])
def test_resume_continues_identically(schedule, order):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stepping in the loop's order warns about nothing
        whole = _run(*_setup(schedule), range(EPOCHS))
        opt, sched, model = _setup(schedule)
        first = _run(opt, sched, model, range(STOP))
        saved_opt, saved_sched = _through_file(opt.state_dict()), _through_file(sched.state_dict())
        opt2, sched2, model2 = _setup(schedule)
        if order == "optimizer_first":
            opt2.load_state_dict(saved_opt)
        sched2.load_state_dict(saved_sched)
        if order == "schedule_first":
            opt2.load_state_dict(saved_opt)
        assert sched2.lr == sched.lr
        rest = _run(opt2, sched2, model2, range(STOP, EPOCHS))
    assert first + rest == whole
    assert len(set(whole)) > 1  # every schedule here changes the LR, or the test proves little


def test_resume_with_another_schedule_type():
    opt, sched, _ = _setup({"type": "cosine"})
    _, other, _ = _setup({"type": "step"})
    with pytest.raises(ConfigError) as err:
        other.load_state_dict(sched.state_dict())
    assert str(err.value) == ("train.schedule.type: the checkpoint was trained with 'cosine', "
                              "resume with the same schedule (got 'step')")


def test_plateau_counts_the_epochs_that_log_its_monitor():
    """`train.val_every`: epochs without validation neither count for nor raise on a plateau."""
    opt, sched, _ = _setup({"type": "plateau", "patience": 0, "factor": 0.5})
    sched.epoch_end(0, {"loss": 0.5}, validated=False)
    sched.epoch_end(1, {"loss": 0.5, "val_loss": 1.0})
    sched.epoch_end(2, {"loss": 0.5}, validated=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    sched.epoch_end(3, {"loss": 0.5, "val_loss": 1.0})  # the second validation: no better
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    with pytest.raises(ConfigError) as err:
        sched.epoch_end(4, {"loss": 0.5})
    assert str(err.value) == ("train.schedule.monitor: must be one of the epoch's logged "
                              "metrics: loss (got 'val_loss')")
