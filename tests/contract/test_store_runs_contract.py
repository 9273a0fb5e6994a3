"""Runs and crashes, on every backend: owners and heartbeats, claiming a run to resume it,
upgrading a store made before either existed, and the integrity check."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from dlforge.errors import ConfigError
from dlforge.registry import Store
from dlforge.registry.integrity import check_store
from dlforge.registry.liveness import STALE_AFTER_S, this_host
from dlforge.registry.migrate import is_current
from dlforge.registry.records import now
from dlforge.registry.tables import RunRow


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def set_owner(store: Store, run_id: str, **values) -> None:
    with store._session(write=True) as s:
        s.execute(update(RunRow).where(RunRow.id == run_id).values(**values))


def make_bundle(root, tag):
    path = root / "staging" / tag
    path.mkdir(parents=True)
    (path / "weights.safetensors").write_text(tag)
    return path


def test_a_run_is_owned_by_its_process_and_beats(store):
    run = store.create_run("digits", {}, None, "v", 0)
    assert (run.pid, run.host, run.heartbeat_at) == (os.getpid(), this_host(), None)
    assert store.liveness(run) == "running"
    store.heartbeat(run.id)
    beat = store.get_run(run.id).heartbeat_at
    assert beat is not None and abs((now() - beat).total_seconds()) < 5


@pytest.mark.parametrize(("owner", "shown"), [
    ({"pid": "dead"}, "interrupted"),
    ({"heartbeat_at": "stale"}, "interrupted"),  # our own pid, but it stopped beating: reused pid
    ({"host": "elsewhere", "heartbeat_at": "stale"}, "interrupted"),
    ({"host": "elsewhere", "heartbeat_at": "fresh"}, "running"),
    ({"host": "elsewhere", "heartbeat_at": None}, "running"),  # never beat: nothing proves it dead
    ({"pid": None, "host": None}, "interrupted"),  # recorded before runs had owners
])
def test_a_running_run_whose_process_is_gone_shows_as_interrupted(store, owner, shown):
    run = store.create_run("digits", {}, None, "v", 0)
    made = {"dead": dead_pid, "fresh": now,
            "stale": lambda: now() - timedelta(seconds=STALE_AFTER_S + 1)}
    set_owner(store, run.id, **{k: made[v]() if v in made else v for k, v in owner.items()})
    assert store.liveness(store.get_run(run.id)) == shown
    assert store.get_run(run.id).status == "running"  # shown, never rewritten by a reader


def test_claiming_a_dead_run_makes_this_process_its_owner(store):
    run = store.create_run("digits", {}, None, "v", 0)
    store.finish_run(run.id, "failed", error="RuntimeError: boom")
    claimed = store.claim_run(run.id[:6])
    assert (claimed.id, claimed.status, claimed.error, claimed.ended_at) == (run.id, "running", None, None)
    assert (claimed.pid, claimed.host) == (os.getpid(), this_host())
    assert claimed.heartbeat_at is not None
    set_owner(store, run.id, pid=dead_pid())  # killed: still `running` in the store
    assert store.claim_run(run.id).pid == os.getpid()


def test_a_live_or_completed_run_cannot_be_claimed(store, tmp_path):
    run = store.create_run("digits", {}, None, "v", 0)
    store.heartbeat(run.id)
    with pytest.raises(ConfigError, match=(
            rf"^resume: run {run.id} is still running \(pid {os.getpid()} on {this_host()}, last "
            r"heartbeat \d+ s ago\); two processes must not write one run: wait for it to end or "
            r"stop it, then resume$")):
        store.claim_run(run.id)
    store.register("digits", run.id, make_bundle(tmp_path, "a"), {})
    store.finish_run(run.id, "completed")
    with pytest.raises(ConfigError) as info:
        store.claim_run(run.id)
    assert str(info.value) == (f"resume: run {run.id} already completed and registered digits@1; "
                               "there is nothing to resume; start a new run with `dlforge run CONFIG`")
    assert store.get_run(run.id).status == "completed"


def _make_old(store: Store) -> None:
    """Turn a fresh store into one made before runs had owners and versions a unique run."""
    with store._engine.begin() as conn:
        conn.execute(text("DROP INDEX uq_model_versions_run_id"))
        for column in ("pid", "host", "heartbeat_at"):
            conn.execute(text(f"ALTER TABLE runs DROP COLUMN {column}"))


def _reopen(store: Store) -> Store:
    store.close()
    return Store(store.sqlalchemy_url, artifacts_dir=store.artifacts_dir)


def test_an_older_store_gains_owner_columns_and_the_one_version_per_run_index(store, tmp_path):
    run = store.create_run("digits", {}, None, "v", 0)
    store.register("digits", run.id, make_bundle(tmp_path, "a"), {})
    _make_old(store)
    store = _reopen(store)
    old = store.get_run(run.id)
    assert (old.pid, old.host, old.heartbeat_at) == (None, None, None)
    assert store.liveness(old) == "interrupted"
    assert store.register("digits", run.id, make_bundle(tmp_path, "b"), {}).version == 1
    store.heartbeat(run.id)
    assert store.get_run(run.id).heartbeat_at is not None
    assert check_store(store).problems == []
    store.close()


def test_an_older_store_with_two_versions_for_one_run_still_opens(store, tmp_path, caplog):
    runs = [store.create_run("digits", {}, None, "v", 0) for _ in range(2)]
    for i, run in enumerate(runs):
        store.register("digits", run.id, make_bundle(tmp_path, f"v{i}"), {})
    _make_old(store)
    with store._engine.begin() as conn:  # what the old resume did: a second version for a run
        conn.execute(text("UPDATE model_versions SET run_id = :r"), {"r": runs[0].id})
    store = _reopen(store)
    assert f"{runs[0].id}: digits@1, digits@2" in caplog.text
    assert store.version_for_run(runs[0].id).version == 1
    assert store.register("digits", runs[0].id, make_bundle(tmp_path, "c"), {}).version == 1
    assert check_store(store).problems == [
        f"run {runs[0].id}: 2 model versions (digits@1, digits@2); a run registers one"]
    # the index cannot be added while the duplicates stay: the store is as current as it can
    # be, so reading commands open it without the write lock (was: every open upgraded again)
    with store._engine.connect() as conn:
        assert is_current(conn)
    caplog.clear()
    store = _reopen(store)
    assert caplog.text == ""
    store.close()


def test_the_integrity_check_names_missing_bundles_and_interrupted_runs(store, tmp_path):
    import shutil

    run = store.create_run("digits", {}, None, "v", 0)
    version = store.register("digits", run.id, make_bundle(tmp_path, "a"), {})
    assert check_store(store).ok
    set_owner(store, run.id, pid=dead_pid())
    shutil.rmtree(version.bundle_path)
    check = check_store(store)
    assert check.problems == [f"digits@1: bundle {version.bundle_path} is missing"]
    assert check.interrupted == [run.id]


CLAIMER = """
import sys, time
from pathlib import Path
from dlforge.errors import ConfigError
from dlforge.registry import Store

url, artifacts, run_id, go, done = sys.argv[1:6]
store = Store(url, artifacts_dir=artifacts)
while not Path(go).exists():  # every claimer starts at the same moment
    time.sleep(0.01)
try:
    store.claim_run(run_id)
    print("claimed", flush=True)
except ConfigError as exc:
    print(str(exc).split(" (")[0], flush=True)
while not Path(done).exists():  # stay alive: a finished winner would make the run claimable
    time.sleep(0.01)
"""


def test_of_processes_resuming_one_run_at_once_exactly_one_claims_it(store, tmp_path):
    import time

    run = store.create_run("digits", {}, None, "v", 0)
    set_owner(store, run.id, pid=dead_pid())
    go, done = tmp_path / "go", tmp_path / "done"
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, store.sqlalchemy_url,
                               str(store.artifacts_dir), run.id, str(go), str(done)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    time.sleep(0.5)
    go.touch()
    lines = []
    for p in procs:
        lines.append(p.stdout.readline().strip())
    done.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    assert sorted(lines) == ["claimed", *[f"resume: run {run.id} is still running"] * 2]
    assert store.get_run(run.id).pid in [p.pid for p in procs]
