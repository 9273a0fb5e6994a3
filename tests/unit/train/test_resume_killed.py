"""A run killed with SIGKILL and resumed from its last checkpoint ends bit-identical to an
uninterrupted run with the same seed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from dlforge.config.schema import TrainConfig
from dlforge.data.dataset import TaskSpec
from dlforge.data.loader import BatchLoader, Loaders
from dlforge.train.callbacks import Callback
from dlforge.train.loop import TrainResult, fit

ES_KEY = "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"


class KillAt(Callback):
    """SIGKILL this process in epoch 3, after epoch 2's checkpoint was written."""

    def on_epoch_end(self, epoch, logs, state):
        if epoch == 3:
            os.kill(os.getpid(), signal.SIGKILL)


def train(ckpt_dir: Path, *, kill: bool = False, resume: bool = False) -> TrainResult:
    """Dropout, a cosine schedule, Adam state and an early-stopping counter all have to resume."""
    g = torch.Generator().manual_seed(0)
    x, xv = torch.randn(64, 8, generator=g), torch.randn(32, 8, generator=g)
    y, yv = ((t[:, 0] + t[:, 1] * t[:, 2] > 0).float() for t in (x, xv))
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 1))
    loaders = Loaders(train=BatchLoader(x, y, batch_size=16, shuffle=True, seed=5),
                      val=BatchLoader(xv, yv, batch_size=64))
    cfg = TrainConfig(epochs=8, batch_size=16, lr=0.05, optimizer="adam",
                      schedule={"type": "cosine"}, early_stopping={"patience": 4, "restore_best": False},
                      checkpoint={"top_k": 2},
                      dropout_kernel="aten")  # the scripted trajectory is torch's masks' on any CPU
    return fit(model, loaders, cfg, TaskSpec("binary", ("no", "yes")), seed=5, device="cpu",
               progress=False, checkpoint_dir=ckpt_dir, callbacks=[KillAt()] if kill else [],
               resume_from=ckpt_dir / "last.pt" if resume else None)


def _untimed(history):
    return [{k: v for k, v in row.items() if k not in ("epoch_time_s", "samples_per_s")}
            for row in history]


def killed_beside(module: str, ckpt: Path, uninterrupted: Callable[[], TrainResult]) -> TrainResult:
    """Run `module.train(ckpt, kill=True)` (a test module of this folder) in a child process
    and `uninterrupted()` meanwhile; return the latter once the child died of SIGKILL."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"from pathlib import Path; from {module} import train; "
            f"train(Path({str(ckpt)!r}), kill=True)")
    killed = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    reference = uninterrupted()
    assert killed.wait(timeout=120) == -signal.SIGKILL, killed.stderr.read()
    return reference


def test_killed_run_resumes_to_identical_weights(tmp_path):
    ckpt = tmp_path / "ckpt_killed"
    reference = killed_beside("test_resume_killed", ckpt, lambda: train(tmp_path / "ckpt_full"))
    saved = torch.load(ckpt / "last.pt", weights_only=True)
    assert (saved["epoch"], saved["callbacks"][ES_KEY]["wait"]) == (2, 1)

    resumed = train(ckpt, resume=True)

    # The resumed part trained epochs 3-5 and stopped on the patience counter it restored.
    assert [row["epoch"] for row in reference.history] == [0, 1, 2, 3, 4, 5]
    assert reference.stop_reason == "val_loss did not improve for 4 epochs; best 0.5993 at epoch 1"
    assert _untimed(resumed.history) == _untimed(reference.history)
    assert resumed.lr_history == reference.lr_history
    assert (resumed.stop_reason, resumed.best_epoch) == (reference.stop_reason, 1)
    # restore_best is off, so these are the weights after the last epoch trained
    want, got = reference.model.state_dict(), resumed.model.state_dict()
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key
