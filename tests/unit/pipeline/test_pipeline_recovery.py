"""Resuming runs that died at any point: refusals, one version, one alias move, heartbeats.

The crash is simulated in-process here (an exception at a fault point); tests/e2e/
test_fault_injection.py kills real processes with SIGKILL at the same points.
"""

from __future__ import annotations

import logging
import time

import pytest

import dlforge.pipeline.register as register_module
import dlforge.train.loop as loop_module
from dlforge.errors import ConfigError, StoreError
from dlforge.pipeline import run
from dlforge.pipeline.recovery import heartbeat
from dlforge.registry import Store

TINY = {
    "name": "tiny",
    "data": {"source": "builtin", "name": "breast_cancer"},
    "model": {"type": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 64},
    "evaluate": {"baseline": False},
    "registry": {"alias": "production"},
}


class _Died(BaseException):
    """Stands for SIGKILL: nothing below the fault point runs."""


def _die_at(point):
    def fault_point(name):
        if name == point:
            raise _Died(name)
    return fault_point


def _timeless(history):
    return [{k: v for k, v in row.items() if k not in ("epoch_time_s", "samples_per_s")}
            for row in history]


@pytest.mark.parametrize("point", ["bundle-saved", "registered", "alias-moved"])
def test_a_run_that_died_while_publishing_resumes_to_one_version_and_one_alias_move(
        tmp_path, monkeypatch, point):
    monkeypatch.setattr(register_module, "fault_point", _die_at(point))
    with pytest.raises(_Died):
        run(TINY, workspace=tmp_path, progress=False)
    monkeypatch.undo()
    store = Store.open(tmp_path)
    (died,) = store.list_runs()
    resumed = run(workspace=tmp_path, resume=died.id, progress=False)
    assert resumed.model_ref == "tiny@1"
    assert [v.version for v in store.list_versions("tiny")] == [1]
    assert [(e.event, e.version) for e in store.history("tiny")] == [("registered", 1), ("alias_set", 1)]
    assert store.get_run(died.id).status == "completed"
    assert not (tmp_path / "artifacts" / "runs" / died.id / "bundle").exists()


def test_a_run_that_died_before_its_first_checkpoint_trains_again_from_the_start(tmp_path, monkeypatch):
    whole = run(TINY, workspace=tmp_path / "a", progress=False)
    monkeypatch.setattr(loop_module, "fault_point", _die_at("mid-epoch"))
    with pytest.raises(_Died):
        run(TINY, workspace=tmp_path / "b", progress=False)
    monkeypatch.undo()
    (died,) = Store.open(tmp_path / "b").list_runs()
    assert not (tmp_path / "b" / "artifacts" / "runs" / died.id / "checkpoints" / "last.pt").exists()
    resumed = run(workspace=tmp_path / "b", resume=died.id, progress=False)
    assert _timeless(resumed.history) == _timeless(whole.history)
    assert resumed.headline == whole.headline


def test_resume_refuses_a_completed_run_and_registers_nothing_more(tmp_path):
    done = run(TINY, workspace=tmp_path, progress=False)
    with pytest.raises(ConfigError) as info:
        run(workspace=tmp_path, resume=done.run_id[:6], progress=False)
    assert str(info.value) == (f"resume: run {done.run_id} already completed and registered "
                               "tiny@1; there is nothing to resume; start a new run with "
                               "`dlforge run CONFIG`")
    assert [v.version for v in Store.open(tmp_path).list_versions("tiny")] == [1]


def test_resume_refuses_a_run_whose_process_is_alive(tmp_path):
    import os

    from dlforge.registry.liveness import this_host

    store = Store.open(tmp_path)
    alive = store.create_run("tiny", {}, None, None, 0)  # owned by this (live) process
    with pytest.raises(ConfigError) as info:
        run(workspace=tmp_path, resume=alive.id, progress=False)
    assert str(info.value) == (f"resume: run {alive.id} is still running (pid {os.getpid()} on "
                               f"{this_host()}); two processes must not write one run: wait for "
                               "it to end or stop it, then resume")
    assert store.get_run(alive.id).status == "running"


def test_heartbeat_beats_until_the_block_ends_and_survives_a_failing_store(tmp_path, caplog):
    store = Store.open(tmp_path)
    record = store.create_run("tiny", {}, None, None, 0)
    with heartbeat(store, record.id, every=0.02):
        time.sleep(0.1)
        first = store.get_run(record.id).heartbeat_at
        time.sleep(0.1)
        assert store.get_run(record.id).heartbeat_at > first
    last = store.get_run(record.id).heartbeat_at
    time.sleep(0.1)
    assert store.get_run(record.id).heartbeat_at == last

    class Down:
        calls = 0

        def heartbeat(self, run_id):
            Down.calls += 1
            raise StoreError("store: database is locked")

    with caplog.at_level(logging.WARNING), heartbeat(Down(), "abc", every=0.02):
        time.sleep(0.1)
    assert Down.calls >= 2
    assert "heartbeat of run abc failed: store: database is locked" in caplog.text
