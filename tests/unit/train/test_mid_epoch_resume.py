"""`train.checkpoint.every_steps`: a run stopped inside an epoch and resumed from `last.pt`
trains exactly the batches that were left and ends with the uninterrupted run's weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests.unit.streaming.shard_data import as_float, image_splits
from torch import nn

from dlforge.config import load_config
from dlforge.config.schema import AugmentConfig, TrainConfig
from dlforge.data.augment import build_augmenter
from dlforge.data.dataset import TaskSpec
from dlforge.data.loader import BatchLoader, Loaders, ShardedLoader
from dlforge.data.shards import ShardSet, write_shards
from dlforge.data.streaming import StreamingLoader
from dlforge.errors import ConfigError
from dlforge.train.checkpoint_io import load_checkpoint
from dlforge.train.loop import fit
from dlforge.train.steps import SupervisedStep

TASK = TaskSpec("multiclass", ("a", "b", "c"))
AUGMENT = build_augmenter(AugmentConfig(hflip={"p": 0.5}, noise={"std": 0.1, "p": 0.5}))


class Crash(RuntimeError):
    """Stands for a killed process: raised before the optimizer step of step `at`."""


class CrashAt(SupervisedStep):
    def __init__(self, at: int) -> None:
        self.at, self.count = at, 0

    def train_batch(self, state, xb, yb, meter):
        self.count += 1
        if self.count == self.at:
            raise Crash(f"step {self.at}")
        super().train_batch(state, xb, yb, meter)


def in_memory(_tmp):
    g = torch.Generator().manual_seed(0)
    x, xv = torch.randn(64, 1, 4, 4, generator=g), torch.randn(16, 1, 4, 4, generator=g)
    y, yv = (t.flatten(1).sum(1).gt(0).long() + t[:, 0, 0, 0].gt(1).long() for t in (x, xv))
    return Loaders(train=BatchLoader(x, y, batch_size=10, shuffle=True, seed=5, augment=AUGMENT),
                   val=BatchLoader(xv, yv, batch_size=64))


def streamed(tmp):
    if not (tmp / "s").exists():
        write_shards(image_splits(), tmp / "s", shard_size=5)
    shards = ShardSet.open(tmp / "s")
    val_x, val_y = shards.split("val").take(torch.arange(7).numpy())
    return Loaders(train=StreamingLoader(shards.split("train"), as_float, "multiclass",
                                         batch_size=4, shuffle=True, seed=5, augment=AUGMENT,
                                         workers=2),
                   val=BatchLoader(torch.from_numpy(as_float(val_x)), torch.from_numpy(val_y),
                                   batch_size=8))


def train(tmp, make, ckpt, *, step=None, resume=False, every=3):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(32, 3))
    cfg = TrainConfig(epochs=3, batch_size=4, lr=0.02, schedule={"type": "cosine"},
                      early_stopping=False, checkpoint={"every_steps": every})
    return fit(model, make(tmp), cfg, TASK, seed=5, device="cpu", progress=False,
               checkpoint_dir=ckpt, step=step, resume_from=ckpt / "last.pt" if resume else None)


def untimed(history):
    return [{k: v for k, v in row.items() if k not in ("epoch_time_s", "samples_per_s")}
            for row in history]


@pytest.mark.parametrize(("make", "crash_at", "position"), [
    (in_memory, 11, (1, 2)),  # 7 batches an epoch: step 9 is epoch 1's 2nd batch
    (streamed, 17, (2, 3)),   # 6 batches an epoch: step 15 is epoch 2's 3rd (12 ends epoch 1)
])
def test_a_run_stopped_mid_epoch_resumes_to_the_same_weights(tmp_path, make, crash_at, position):
    whole = train(tmp_path, make, tmp_path / "whole")
    with pytest.raises(Crash):
        train(tmp_path, make, tmp_path / "cut", step=CrashAt(crash_at))
    saved = load_checkpoint(tmp_path / "cut" / "last.pt")["position"]
    assert (saved["epoch"], saved["loader"]["batch"]) == position
    resumed = train(tmp_path, make, tmp_path / "cut", resume=True)
    assert resumed.lr_history == whole.lr_history
    assert untimed(resumed.history) == untimed(whole.history)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


@pytest.mark.slow
def test_a_process_killed_while_writing_a_mid_epoch_checkpoint_resumes_from_the_one_before(tmp_path):
    # Writes: steps 3 and 6, epoch 0's epoch000.pt and last.pt, step 9, then step 12 (killed).
    repo = Path(__file__).parents[3]
    code = (f"import sys; sys.path.insert(0, {str(repo)!r}); from pathlib import Path; "
            f"from tests.unit.train.test_mid_epoch_resume import train, in_memory; "
            f"train(Path({str(tmp_path)!r}), in_memory, Path({str(tmp_path / 'cut')!r}))")
    env = {**os.environ, "DLFORGE_FAULT_AT": "checkpoint-write@6"}
    killed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    saved = load_checkpoint(tmp_path / "cut" / "last.pt")["position"]
    assert (saved["epoch"], saved["loader"]["batch"]) == (1, 2)
    whole = train(tmp_path, in_memory, tmp_path / "whole")
    resumed = train(tmp_path, in_memory, tmp_path / "cut", resume=True)
    assert untimed(resumed.history) == untimed(whole.history)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_epoch_end_checkpoints_carry_no_position(tmp_path):
    train(tmp_path, in_memory, tmp_path / "c", every=5)
    assert load_checkpoint(tmp_path / "c" / "last.pt")["position"] is None


@pytest.mark.parametrize("world", [1, 2])
def test_the_in_memory_loaders_resume_mid_epoch(world):
    x = torch.arange(23.0).reshape(23, 1, 1, 1).expand(23, 1, 2, 2).contiguous()

    def loader():
        inner = BatchLoader(x, torch.zeros(23), batch_size=3, shuffle=True, seed=2, augment=AUGMENT)
        return inner if world == 1 else ShardedLoader(inner, 1, world, pad=True)

    whole = loader()
    whole.set_epoch(4)
    want = [xb for xb, _ in whole]
    cut = loader()
    cut.set_epoch(4)
    batches = iter(cut)
    seen = [next(batches)[0], next(batches)[0]]
    state = cut.state_dict()
    assert (state["epoch"], state["batch"]) == (4, 2)
    again = loader()
    again.load_state_dict(state)
    got = seen + [xb for xb, _ in again]
    assert len(got) == len(want) == (8 if world == 1 else 4)
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))


def test_every_steps_needs_the_last_checkpoint():
    with pytest.raises(ConfigError, match=r"train\.checkpoint\.every_steps: 50 writes last\.pt, "
                                          r"but save_last is false; set save_last: true"):
        load_config({"train": {"checkpoint": {"every_steps": 50, "save_last": False}}})
    with pytest.raises(ConfigError, match=r"^train\.checkpoint\.every_steps: .*greater than or equal to 1"):
        load_config({"train": {"checkpoint": {"every_steps": 0}}})
