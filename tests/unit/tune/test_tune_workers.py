"""Two `dlforge tune --worker` processes share one study: on SQLite, and on PostgreSQL when
DLFORGE_TEST_POSTGRES_URL names a server (scripts/start_postgres.sh starts one). Every trial
of the budget runs exactly once, in one of the workers, and is one run in the registry."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import yaml

from dlforge.config import load_config
from dlforge.config.auto import resolve_auto
from dlforge.data.prepare import prepare_data
from dlforge.registry import Store
from dlforge.tune.study import open_study

POSTGRES_URL = os.environ.get("DLFORGE_TEST_POSTGRES_URL")
N_TRIALS = 4


def resolved(cfg):
    """`cfg` with its `auto` choices made, as `search` names its study (tune/study.py)."""
    return resolve_auto(cfg, prepare_data(cfg).facts)


def _config(tmp_path) -> tuple[str, dict]:
    raw = {"name": f"w{uuid.uuid4().hex[:8]}", "data": {"limit": 200},
           "model": {"type": "mlp", "hidden": [8]},
           "train": {"epochs": 2, "batch_size": 32, "num_threads": 1},
           "evaluate": {"baseline": False},
           "tune": {"n_trials": N_TRIALS, "pruner": "none", "metric": "val_accuracy",
                    "space": {"train.lr": {"log_uniform": [0.001, 0.1]}}}}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path), raw


def _two_workers(workspace, config: str, url: str | None) -> list[subprocess.CompletedProcess]:
    args = [sys.executable, "-m", "dlforge", "-w", str(workspace)]
    args += ["--store-url", url] if url else []
    procs = [subprocess.Popen([*args, "tune", config, "--worker"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


@pytest.mark.slow
@pytest.mark.parametrize("backend", [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not POSTGRES_URL, reason="set DLFORGE_TEST_POSTGRES_URL to run the PostgreSQL backend")),
])
def test_two_workers_share_one_study_no_trial_lost_none_run_twice(tmp_path, backend):
    url = POSTGRES_URL if backend == "postgresql" else None
    config, raw = _config(tmp_path)
    workers = _two_workers(tmp_path / "ws", config, url)
    assert [w.returncode for w in workers] == [0, 0], [w.stderr for w in workers]
    with Store.open(tmp_path / "ws", url) as store:
        study = open_study(resolved(load_config(raw)), store.sqlalchemy_url, data_fingerprint=None)
        runs = [r for r in store.list_runs(limit=500) if r.name.startswith(raw["name"] + "-trial-")]
    trials = [t for t in study.get_trials() if "surplus" not in t.user_attrs]
    assert sorted(t.number for t in trials) == list(range(N_TRIALS))
    assert [t.state.name for t in trials] == ["COMPLETE"] * N_TRIALS
    # one run per trial, each trial trained once: names and ids match one to one
    assert sorted(r.name for r in runs) == sorted(f"{raw['name']}-trial-{n}" for n in range(N_TRIALS))
    assert {r.id for r in runs} == {t.user_attrs["run_id"] for t in trials}
    assert all(r.status == "completed" and len(r.history) == 2 for r in runs)
    # the workers drew their own values: no two trials share a learning rate
    assert len({t.params["train.lr"] for t in trials}) == N_TRIALS
