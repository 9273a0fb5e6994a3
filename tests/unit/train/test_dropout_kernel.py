"""`train.dropout_kernel`: the auto decision per vendor and device; fit applies it; a run with
PCG dropout masks resumes mid-epoch to the uninterrupted run's weights."""

from __future__ import annotations

import pytest
import torch
from test_mid_epoch_resume import TASK, Crash, CrashAt, in_memory, untimed
from torch import nn

from dlforge.config.schema import TrainConfig
from dlforge.train.checkpoint_io import load_checkpoint
from dlforge.train.dropout_kernel import apply_dropout_kernel, wants_pcg_dropout
from dlforge.train.loop import fit

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(("vendor", "device", "expected"), [
    ("AuthenticAMD", CPU, True),   # torch's bernoulli is serial off Intel: measured faster
    ("HygonGenuine", CPU, True),
    ("GenuineIntel", CPU, False),  # torch uses MKL's generator there: unmeasured, keep it
    ("", CPU, False),              # unknown vendor (not x86 Linux): unmeasured
    ("AuthenticAMD", CUDA, False),
])
def test_auto_decides_per_vendor_and_device(vendor, device, expected):
    assert wants_pcg_dropout("auto", device, vendor=vendor) is expected


@pytest.mark.parametrize(("setting", "expected"), [("aten", False), ("pcg", True)])
def test_explicit_settings_override_auto(setting, expected):
    for vendor in ("AuthenticAMD", "GenuineIntel"):
        assert wants_pcg_dropout(setting, CPU, vendor=vendor) is expected


def test_apply_switches_both_ways():
    model = nn.Sequential(nn.Dropout(0.2))
    assert apply_dropout_kernel(model, "pcg", CPU) is True
    assert type(model[0]).__name__ == "PCGDropout"
    assert apply_dropout_kernel(model, "aten", CPU) is False
    assert type(model[0]) is nn.Dropout


def train(tmp, ckpt, kernel, *, step=None, resume=False):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(32, 3))
    cfg = TrainConfig(epochs=3, batch_size=4, lr=0.02, early_stopping=False,
                      checkpoint={"every_steps": 3}, dropout_kernel=kernel)
    return fit(model, in_memory(tmp), cfg, TASK, seed=5, device="cpu", progress=False,
               checkpoint_dir=ckpt, step=step, resume_from=ckpt / "last.pt" if resume else None)


def test_a_pcg_run_stopped_mid_epoch_resumes_to_the_same_weights(tmp_path):
    whole = train(tmp_path, tmp_path / "whole", "pcg")
    assert type(whole.model[3]).__name__ == "PCGDropout"
    with pytest.raises(Crash):
        train(tmp_path, tmp_path / "cut", "pcg", step=CrashAt(11))
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["position"]["epoch"] == 1
    resumed = train(tmp_path, tmp_path / "cut", "pcg", resume=True)
    assert untimed(resumed.history) == untimed(whole.history)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_the_kernels_train_differently_only_through_the_masks(tmp_path):
    pcg, aten = (train(tmp_path, tmp_path / k, k) for k in ("pcg", "aten"))
    assert type(aten.model[3]) is nn.Dropout
    assert pcg.history[0]["loss"] != aten.history[0]["loss"]  # other masks, another trajectory
    no_dropout = TrainConfig(epochs=1, batch_size=4, early_stopping=False)
    runs = []
    for kernel in ("pcg", "aten"):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.Dropout(0.0))
        runs.append(fit(model, in_memory(tmp_path), no_dropout.model_copy(
            update={"dropout_kernel": kernel}), TASK, seed=5, device="cpu", progress=False))
    assert untimed(runs[0].history) == untimed(runs[1].history)
