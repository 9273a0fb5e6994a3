"""Pipeline model parallelism through the one fit loop, with real processes (torchrun, gloo,
CPU): an MLP split into 2 stages computes the outputs, loss and gradients the whole model
computes in one process, on the same batches, within 1e-6 (float32 sums in another order);
after several epochs of Adam the weights agree within 1e-5."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parent
WORKER = HERE / "pipeline_worker.py"


def _launch(out: Path, nproc: int) -> None:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "--max-restarts=0"] if nproc > 1 else [sys.executable])
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launch, str(WORKER), str(out)], env=env, capture_output=True,
                          text=True, timeout=240, cwd=out)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pipeline")
    _launch(out, 1)
    _launch(out, 2)  # the split run checkpoints adam_epochs into out/checkpoints
    return out


@pytest.fixture(scope="module")
def runs(out) -> dict:
    return {name: json.loads((out / f"{name}.json").read_text())
            for name in ("whole0", "split0", "split1")}


def _diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


@pytest.mark.parametrize("name", ["gpipe1", "gpipe4_l2", "1f1b4", "regression2"])
def test_two_stages_compute_the_outputs_loss_and_gradients_of_the_whole_model(runs, name):
    whole, first, last = runs["whole0"][name], runs["split0"][name], runs["split1"][name]
    assert first["outputs"] is None and len(last["outputs"]) == 24  # only the last stage has them
    assert _diff(whole["outputs"], last["outputs"]) < 1e-6
    assert _diff(whole["loss"], first["loss"]) < 1e-6  # rank 0 logs the last stage's loss
    assert _diff(whole["val_loss"], first["val_loss"]) < 1e-6
    assert _diff(whole["moved"], first["moved"]) < 1e-6  # SGD at lr 1: minus the gradient
    assert max(abs(g) for g in whole["moved"]) > 0.05  # it did move


def test_stages_are_cut_where_the_parameter_counts_are_most_even(runs):
    # MLP 8 -> 16 -> 12 -> 3: [flatten, linear 144, relu, linear 204, relu, linear 39]
    assert runs["split0"]["gpipe1"]["bounds"] == [[0, 3], [3, 6]]
    assert runs["split0"]["regression2"]["bounds"] == [[0, 3], [3, 7]]  # + the rescaling


def test_epochs_of_adam_with_a_short_last_batch_train_what_one_process_trains(runs):
    whole, first, last = (runs[r]["adam_epochs"] for r in ("whole0", "split0", "split1"))
    assert len(whole["loss"]) == 3
    assert _diff(whole["loss"], first["loss"]) < 1e-5
    assert _diff(whole["val_loss"], first["val_loss"]) < 1e-5
    assert _diff(whole["weights"], first["weights"]) < 1e-5


def test_each_stage_holds_only_its_own_parameters_and_adam_moments(runs):
    """MLP 8 -> 16 -> 12 -> 3 in 2 stages: 144 parameters (stage 0) and 243 (stage 1); Adam
    keeps two moments per parameter. After every training step of all 3 epochs each process
    holds exactly its stage's share; one process holds the whole 387 and 774."""
    whole, first, last = (runs[r]["adam_epochs"]["held"] for r in ("whole0", "split0", "split1"))
    assert len(whole) == len(first) == len(last) == 12  # 4 batches x 3 epochs
    assert {tuple(h) for h in whole} == {(387, 774)}
    assert {tuple(h) for h in first} == {(144, 288)}
    assert {tuple(h) for h in last} == {(243, 486)}


def test_rank_0_ends_with_the_whole_model_and_the_last_stage_with_its_own(runs):
    first, last = runs["split0"]["adam_epochs"], runs["split1"]["adam_epochs"]
    assert len(first["stage"]) == 144 and len(last["stage"]) == 243
    assert first["weights"][144:] == last["weights"] == last["stage"]
    assert first["weights"][:144] == first["stage"] and len(first["weights"]) == 387


def test_a_checkpoint_of_the_split_run_resumes_in_one_process(out, runs, monkeypatch):
    """The split run's checkpoint after epoch 1 of 3 holds the assembled model and every
    stage's Adam moments: one process resumes it and ends where the whole run ended."""
    monkeypatch.syspath_prepend(str(HERE))
    from pipeline_worker import train

    assert sorted(p.name for p in (out / "checkpoints").glob("epoch*.pt")) == [
        "epoch000.pt", "epoch001.pt", "epoch002.pt"]
    resumed = train("adam_epochs", resume_from=str(out / "checkpoints" / "epoch000.pt"))
    assert _diff(resumed["weights"], runs["whole0"]["adam_epochs"]["weights"]) < 1e-5
    assert _diff(resumed["val_loss"], runs["whole0"]["adam_epochs"]["val_loss"]) < 1e-5


def test_a_checkpoint_of_one_process_resumes_in_two_stages(runs):
    """Rank 0 restores the whole run's checkpoint and sends each stage its weights and Adam
    moments: the split run ends where the whole run ended, each rank holding its stage."""
    whole, first, last = runs["whole0"]["adam_epochs"], runs["split0"]["resumed"], runs["split1"]["resumed"]
    assert len(first["loss"]) == 3 and first["held"][0] == [144, 288]
    assert _diff(first["weights"], whole["weights"]) < 1e-5
    assert _diff(first["val_loss"], whole["val_loss"]) < 1e-5
    assert last["weights"] == first["weights"][144:]
