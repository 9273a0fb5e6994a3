"""Data parallelism through the one fit loop, with real processes (torchrun, gloo, CPU):
2 processes at batch 16 train what 1 process trains at batch 32 (same samples in each global
batch, gradients averaged), and a checkpoint of either resumes in the other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parent
SEEDS = "0,1,2"
EPOCHS = 4  # ddp_worker.EPOCHS


def _worker(tmp_path: Path, name: str, batch: int, *args: str, nproc: int = 1,
            env: dict | None = None) -> subprocess.CompletedProcess:
    out = tmp_path / f"{name}.json"
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "--max-restarts=0"] if nproc > 1 else [sys.executable])
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([*launch, str(HERE / "ddp_worker.py"), str(out), str(batch), *args],
                          env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)


def _read(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / f"{name}.json").read_text())


def _max_diff(a: dict, b: dict) -> float:
    return float((torch.tensor(a["weights"]) - torch.tensor(b["weights"])).abs().max())


def test_two_processes_train_what_one_process_trains_at_equal_effective_batch(tmp_path):
    assert _worker(tmp_path, "one", 32, SEEDS).returncode == 0
    two = _worker(tmp_path, "two", 16, SEEDS, nproc=2)
    assert two.returncode == 0, two.stderr[-2000:]
    one, two = _read(tmp_path, "one"), _read(tmp_path, "two")
    for seed in SEEDS.split(","):
        # Validation is sharded (51 + 50 of 101 samples) and reduced: the same figures.
        assert two[seed]["val_accuracy"] == pytest.approx(one[seed]["val_accuracy"], abs=1e-6)
        assert two[seed]["val_loss"] == pytest.approx(one[seed]["val_loss"], abs=1e-4)
        assert _max_diff(one[seed], two[seed]) < 1e-4  # float sums in another order only
        assert (one[seed]["lr_steps"], two[seed]["lr_steps"]) == (4 * 7, 4 * 7)
    assert one["0"]["val_accuracy"][-1] > 0.8  # it learned something


def test_every_rank_validates_the_epochs_rank_0_validates(tmp_path):
    """`train.val_every` 2 with a time budget used up on rank 1 only: rank 0's answer holds."""
    two = _worker(tmp_path, "skewed", 16, "0", nproc=2, env={"SKEWED_BUDGET": "1"})
    assert two.returncode == 0, two.stderr[-2000:]
    run = _read(tmp_path, "skewed")["0"]
    assert [v is not None for v in run["val_loss"]] == [False, True, False, True]
    assert run["lr_steps"] == 7 * EPOCHS  # 100 samples a rank, batch 16: 7 steps; no stop


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> dict:
    """One process, seed 0, uninterrupted."""
    tmp_path = tmp_path_factory.mktemp("whole")
    assert _worker(tmp_path, "whole", 32, "0").returncode == 0
    return _read(tmp_path, "whole")["0"]


@pytest.mark.parametrize(("first", "then"), [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_with_another_process_count(tmp_path, whole, first, then):
    """Killed in epoch 2 of 4 (after epoch 1's checkpoint), resumed with the other process
    count: it ends with the weights of an uninterrupted run."""
    batch = {1: "32", 2: "16"}
    ckpt = tmp_path / "checkpoints"
    killed = _worker(tmp_path, "killed", batch[first], "0", str(ckpt), nproc=first,
                     env={"DLFORGE_FAULT_AT": "mid-epoch@2"})
    assert killed.returncode != 0 and (ckpt / "last.pt").is_file()
    assert torch.load(ckpt / "last.pt", weights_only=True)["epoch"] == 0
    resumed = _worker(tmp_path, "resumed", batch[then], "0", str(tmp_path / "more"),
                      str(ckpt / "last.pt"), nproc=then)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    resumed = _read(tmp_path, "resumed")["0"]
    assert resumed["val_accuracy"] == pytest.approx(whole["val_accuracy"], abs=1e-6)
    assert _max_diff(whole, resumed) < 1e-4
