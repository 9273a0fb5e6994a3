"""Every schedule's LR sequence against hand-computed values."""

from __future__ import annotations

import warnings

import pytest
import torch

from dlforge.config import load_config
from dlforge.config.schema import TrainConfig
from dlforge.errors import ConfigError
from dlforge.train.schedules import LRSchedule, lr_sequence


def _seq(schedule: dict, *, lr: float = 1.0, epochs: int = 1, steps: int = 1,
         run_epochs: int | None = None, logs=None) -> list[float]:
    cfg = TrainConfig(lr=lr, epochs=epochs, schedule=schedule)
    return lr_sequence(cfg, steps, run_epochs or epochs, logs)


def test_constant():
    assert _seq({"type": "constant"}, lr=0.1, epochs=2, steps=2) == [0.1, 0.1, 0.1, 0.1]


def test_step_multiplies_every_step_epochs():
    got = _seq({"type": "step", "step_epochs": 2, "gamma": 0.1}, epochs=5, steps=2)
    assert got == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01], rel=1e-12)


@pytest.mark.parametrize(("staircase", "expected"), [
    (True, [0.1, 0.1, 0.05, 0.05, 0.025]),
    (False, [0.1, 0.0707106781, 0.05, 0.0353553391, 0.025]),
])
def test_exponential(staircase, expected):
    got = _seq({"type": "exponential", "decay_rate": 0.5, "decay_steps": 2,
                "staircase": staircase}, lr=0.1, steps=5)
    assert got == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize(("staircase", "expected"), [
    (True, [0.1, 0.1, 0.05, 0.05, 0.0333333333]),
    (False, [0.1, 0.0666666667, 0.05, 0.04, 0.0333333333]),
])
def test_inverse_time(staircase, expected):
    got = _seq({"type": "inverse_time", "decay_rate": 1.0, "decay_steps": 2,
                "staircase": staircase}, lr=0.1, steps=5)
    assert got == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize(("min_lr", "expected"), [
    (0.0, [1.0, 0.8535533906, 0.5, 0.1464466094]),
    (0.2, [1.0, 0.8828427125, 0.6, 0.3171572875]),
])
def test_cosine_over_all_steps(min_lr, expected):
    got = _seq({"type": "cosine", "min_lr": min_lr}, epochs=2, steps=2)
    assert got == pytest.approx(expected, abs=1e-10)


def test_cosine_ends_at_min_lr_and_stays():
    cfg = TrainConfig(lr=1.0, epochs=2, schedule={"type": "cosine", "min_lr": 0.2})
    assert lr_sequence(cfg, 2, 3)[4:] == pytest.approx([0.2, 0.2], abs=1e-12)


def test_one_cycle_hand_computed():
    # start 1/10, peak 1 at step 0.3*10-1 = 2, end 0.1/100 = 0.001 at step 9, then held
    got = _seq({"type": "one_cycle", "div_factor": 10, "final_div_factor": 100},
               epochs=10, run_epochs=11)
    assert got == pytest.approx([0.1, 0.55, 1.0, 0.9505339495, 0.8119331560, 0.6116492065,
                                 0.3893507935, 0.1890668440, 0.0504660505, 0.001, 0.001],
                                abs=1e-9)


def test_one_cycle_matches_torch():
    cfg = TrainConfig(lr=0.4, epochs=3, schedule={"type": "one_cycle", "pct_start": 0.25})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.4)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.4, total_steps=12, pct_start=0.25,
                                              cycle_momentum=False)
    expected = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stand-in optimizer never steps
        for _ in range(12):
            expected.append(opt.param_groups[0]["lr"])
            ref.step()
    assert lr_sequence(cfg, 4, 3) == pytest.approx(expected, rel=1e-12)


def test_linear_one_cycle_hand_computed():
    # start 1/10, linear to 1 at step 2, then linear to 0.001 at step 9: 1 - 0.999 * (k - 2) / 7
    got = _seq({"type": "one_cycle", "anneal": "linear", "div_factor": 10,
                "final_div_factor": 100}, epochs=10)
    assert got == pytest.approx([0.1, 0.55, 1.0, 0.8572857143, 0.7145714286, 0.5718571429,
                                 0.4291428571, 0.2864285714, 0.1437142857, 0.001], abs=1e-9)


def test_linear_one_cycle_is_airbenchs_schedule_within_a_step():
    # airbench: 0.2 -> 1 over int(0.23 T) steps, then -> 0.07 at T; torch's phase ends put our
    # peak at 0.23 T - 1 instead: 440 steps differ by at most 0.0063 x lr
    cfg = TrainConfig(lr=1.0, epochs=10, schedule={
        "type": "one_cycle", "anneal": "linear", "pct_start": 0.23, "div_factor": 5,
        "final_div_factor": 0.2 / 0.07})
    total, warm = 440, int(440 * 0.23)

    def airbench(t: int) -> float:
        if t < warm:
            return 0.2 + 0.8 * t / warm
        return 1.0 - 0.93 * (t - warm) / (total - warm)

    got = lr_sequence(cfg, 44, 10)
    assert max(abs(lr - airbench(t)) for t, lr in enumerate(got)) == pytest.approx(0.0063240, abs=1e-6)
    assert (got[0], got[-1]) == (pytest.approx(0.2), pytest.approx(0.07))


def test_one_cycle_peak_on_first_step():
    """pct_start * steps == 1 puts the peak at step 0 (torch divides by zero there)."""
    got = _seq({"type": "one_cycle", "pct_start": 0.1}, epochs=10)
    assert got[0] == 1.0
    assert got[-1] == pytest.approx(1 / 25 / 1e4, rel=1e-12)


def test_warmup_in_front_of_constant():
    got = _seq({"type": "constant", "warmup_steps": 4}, lr=0.1, epochs=2, steps=3)
    assert got == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rel=1e-12)


def test_warmup_in_front_of_step():
    # epoch ends at steps 2 and 4 halve the LR; the third warm-up step is already at 3/3
    got = _seq({"type": "step", "step_epochs": 1, "gamma": 0.5, "warmup_steps": 3},
               lr=0.1, epochs=3, steps=2)
    assert got == pytest.approx([0.1 / 3, 0.2 / 3, 0.05, 0.05, 0.025, 0.025], rel=1e-12)


def test_warmup_in_front_of_cosine():
    # the cosine runs over the 6 - 2 = 4 steps after warm-up, from its own step 0
    got = _seq({"type": "cosine", "warmup_steps": 2}, epochs=2, steps=3)
    assert got == pytest.approx([0.5, 1.0, 1.0, 0.8535533906, 0.5, 0.1464466094], abs=1e-10)


def test_plateau_reduces_after_patience():
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    got = _seq({"type": "plateau", "patience": 1, "factor": 0.5}, epochs=7, steps=2,
               logs=[{"loss": 0.0, "val_loss": v} for v in losses])
    # 2 epochs without improvement after epoch 1 (> patience 1): reduced from epoch 4 on
    assert got == [1.0] * 8 + [0.5] * 4 + [0.25] * 2


@pytest.mark.parametrize(("mode", "expected"), [
    ("auto", [1.0, 1.0, 1.0, 1.0, 0.5]), ("max", [1.0, 1.0, 1.0, 1.0, 0.5]),
    ("min", [1.0, 1.0, 1.0, 0.5, 0.5]),
])
def test_plateau_mode(mode, expected):
    accuracies = [0.5, 0.6, 0.6, 0.6, 0.6]
    got = _seq({"type": "plateau", "monitor": "val_accuracy", "mode": mode, "patience": 1,
                "factor": 0.5}, epochs=5, logs=[{"val_accuracy": a} for a in accuracies])
    assert got == expected


def test_plateau_min_lr_floor():
    got = _seq({"type": "plateau", "patience": 0, "factor": 0.1, "min_lr": 0.05}, epochs=4,
               logs=[{"val_loss": 1.0}] * 4)
    assert got == pytest.approx([1.0, 1.0, 0.1, 0.05], rel=1e-12)


def test_plateau_without_logs_keeps_lr():
    assert _seq({"type": "plateau", "patience": 0}, epochs=3) == [1.0, 1.0, 1.0]


def test_plateau_with_warmup_multiplies():
    got = _seq({"type": "plateau", "patience": 0, "factor": 0.5, "warmup_steps": 4},
               epochs=3, steps=2, logs=[{"val_loss": 1.0}] * 3)
    # reduced after epoch 1 (step 4 on); warm-up had ended at step 3
    assert got == pytest.approx([0.25, 0.5, 0.75, 1.0, 0.5, 0.5], rel=1e-12)


def test_plateau_monitor_missing():
    cfg = TrainConfig(epochs=10, schedule={"type": "plateau", "monitor": "val_f1"})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = LRSchedule(opt, cfg, steps_per_epoch=1)
    with pytest.raises(ConfigError) as err:
        sched.epoch_end(0, {"val_loss": 0.5, "loss": 0.4})
    assert str(err.value) == ("train.schedule.monitor: must be one of the epoch's logged "
                              "metrics: loss, val_loss (got 'val_f1')")


@pytest.mark.parametrize("kind", ["cosine", "one_cycle"])
def test_warmup_must_leave_steps(kind):
    with pytest.raises(ConfigError) as err:
        _seq({"type": kind, "warmup_steps": 6}, epochs=2, steps=3)
    assert str(err.value) == (
        "train.schedule.warmup_steps: must be less than the run's 6 steps (train.epochs x "
        f"batches per epoch) for a {kind} schedule (got 6); lower it (a tenth: --set "
        "train.schedule.warmup_steps=0) or raise train.epochs (review.epochs in `dlforge data "
        "review`, whose folds train that many)")


@pytest.mark.parametrize("kind", ["cosine", "plateau"])
def test_min_lr_above_lr(kind):
    with pytest.raises(ConfigError) as err:
        load_config({"train": {"lr": 0.1, "schedule": {"type": kind, "min_lr": 0.5}}})
    assert str(err.value) == "train.schedule.min_lr: must be at most train.lr = 0.1 (got 0.5)"


def test_each_group_scales_from_its_own_lr():
    cfg = TrainConfig(epochs=10, lr=0.1, schedule={"type": "exponential", "decay_rate": 0.5,
                                                    "decay_steps": 1})
    opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": 0.1},
                           {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.01}])
    sched = LRSchedule(opt, cfg, steps_per_epoch=2)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.005], rel=1e-12)
    assert sched.lr == pytest.approx(0.05, rel=1e-12)


@pytest.mark.parametrize(("min_lr", "expected"), [(0.0, [1, 0.75, 0.5, 0.25]),
                                                  (0.2, [1, 0.8, 0.6, 0.4])])
def test_linear_decays_from_lr_towards_min_lr(min_lr, expected):
    # airbench94_muon: step s of T runs at lr x (1 - s / T)
    got = _seq({"type": "linear", "min_lr": min_lr}, epochs=2, steps=2)
    assert got == pytest.approx(expected, rel=1e-12)


def test_linear_after_warm_up_and_past_the_end():
    got = _seq({"type": "linear", "warmup_steps": 2}, epochs=3, steps=2, run_epochs=4)
    assert got == pytest.approx([0.5, 1, 1, 0.75, 0.5, 0.25, 0, 0], rel=1e-12, abs=1e-12)
