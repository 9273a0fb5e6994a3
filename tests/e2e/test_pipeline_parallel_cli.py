"""`dlforge train --nproc 2` of a config with `model.parallel` (2 pipeline stages; torchrun,
gloo, CPU): rank 0 registers the assembled model, which predicts and serves what the same
config trained whole in one process predicts; bad launches fail in one line, writing nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from fastapi.testclient import TestClient
from sklearn.datasets import load_breast_cancer
from test_data_parallel_cli import CONFIG as DP_CONFIG
from test_data_parallel_cli import _dlforge

from dlforge.config.schema import ServeConfig
from dlforge.registry import Store
from dlforge.registry.predictor import load
from dlforge.serve.app import create_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SPLIT = {"stages": 2, "microbatches": 4}
CONFIG = {**DP_CONFIG, "name": "pp", "model": {"type": "mlp", "hidden": [16, 8]}}


def _config(tmp_path, name: str, parallel: dict | None) -> str:
    path = tmp_path / f"{name}.yaml"
    model = {**CONFIG["model"], **({"parallel": parallel} if parallel else {})}
    path.write_text(yaml.safe_dump({**CONFIG, "model": model}))
    return str(path)


ROWS = load_breast_cancer(as_frame=True).data.iloc[:40]


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> np.ndarray:
    """The scores of the model the same config trains whole, in one process."""
    tmp = tmp_path_factory.mktemp("whole")
    done = _dlforge(tmp / "ws", "train", _config(tmp, "whole", None), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    return load("pp", workspace=tmp / "ws").predict_scores(ROWS)


def test_a_two_stage_run_registers_and_serves_the_model_one_process_trains(tmp_path, whole):
    split = _dlforge(tmp_path / "split", "train", _config(tmp_path, "split", SPLIT), "--nproc",
                     "2", "--quiet")
    assert split.returncode == 0, split.stderr[-3000:]
    rows = ROWS
    got = load("pp", workspace=tmp_path / "split").predict_scores(rows)
    want = whole
    assert got.shape == (40,) and np.abs(got - want).max() < 1e-5
    with Store.open(tmp_path / "split") as store:
        (run,) = store.list_runs()
        assert (run.status, [row["epoch"] for row in run.history]) == ("completed", [0, 1, 2])
        assert [v.version for v in store.list_versions("pp")] == [1]
        with TestClient(create_app(store, ServeConfig())) as client:
            reply = client.post("/v1/models/pp/predict", json={"inputs": rows.iloc[:3].to_dict("records")})
    assert reply.status_code == 200
    assert [row["score"] for row in reply.json()["predictions"]] == pytest.approx(got[:3], abs=1e-6)


def test_a_killed_two_stage_run_resumes_through_the_cli_to_the_same_model(tmp_path, whole):
    """Stage 1's process is killed in epoch 2 of 3 (after rank 0 checkpointed epoch 1);
    `dlforge run --resume RUN --nproc 2` sends each stage its share of that checkpoint and
    ends with the model an uninterrupted run registers, as one version."""
    ws = tmp_path / "ws"
    killed = _dlforge(ws, "train", _config(tmp_path, "split", SPLIT), "--nproc", "2",
                      "--timeout", "30", "--quiet",
                      env={"DLFORGE_FAULT_AT": "mid-epoch@2", "DLFORGE_FAULT_RANK": "1"})
    assert killed.returncode == 1
    assert "rank 1 (pid" in killed.stderr.splitlines()[-1]
    with Store.open(ws) as store:
        (run,) = store.list_runs()
        assert (run.status, store.list_models()) == ("failed", [])
    (last,) = ws.rglob("last.pt")
    saved = torch.load(last, weights_only=True)
    assert (saved["epoch"], len(saved["model"])) == (0, 6)  # the whole model, after epoch 1
    resumed = _dlforge(ws, "run", "--resume", run.id, "--nproc", "2", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    with Store.open(ws) as store:
        (run,) = store.list_runs()
        assert (run.status, [row["epoch"] for row in run.history]) == ("completed", [0, 1, 2])
        assert run.history[0] == saved["history"][0]  # epoch 1 was not trained again
        assert [v.version for v in store.list_versions("pp")] == [1]
    got = load("pp", workspace=ws).predict_scores(ROWS)
    assert np.abs(got - whole).max() < 1e-5


@pytest.mark.parametrize(("args", "message"), [
    (["--nproc", "3"], "error: model.parallel.stages: 2 stages need 2 processes, one per stage "
     "(got --nproc x --nnodes = 3); launch 2 (data and pipeline parallelism do not combine)"),
    ([], "error: model.parallel.stages: 2 stages need 2 processes (got 1); run with --nproc 2"),
])
def test_a_process_count_other_than_the_stages_is_refused_in_one_line(tmp_path, args, message):
    ws = tmp_path / "ws"
    proc = _dlforge(ws, "train", _config(tmp_path, "bad", SPLIT), *args, "--quiet")
    assert (proc.returncode, proc.stderr.splitlines()[-1:]) == (2, [message])
    assert not ws.exists() or Store.open(ws).list_runs() == []
