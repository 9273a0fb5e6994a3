"""`dlforge train --nproc 2` end to end (torchrun, gloo, CPU): one run and one version written
by rank 0; a killed rank or a hung one ends the job with one line naming a rank (no hang), and
the run resumes in one process; two "nodes" meet at a c10d rendezvous; bad launches fail
before anything is written, a problem rank 0 finds with the data in its one line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_fault_injection import CONFIG as TINY

from dlforge.registry import Store

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CONFIG = {**TINY, "name": "dp"}  # breast_cancer, an MLP, 3 epochs


def _dlforge(workspace: Path, *args: str, env: dict | None = None,
             timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlforge", "-w", str(workspace), *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "dp.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_killed_rank_stops_the_job_and_the_run_resumes_in_one_process(tmp_path, config):
    ws = tmp_path / "ws"
    killed = _dlforge(ws, "train", str(config), "--nproc", "2", "--timeout", "30", "--quiet",
                      env={"DLFORGE_FAULT_AT": "mid-epoch@2", "DLFORGE_FAULT_RANK": "1"})
    assert killed.returncode == 1
    store = Store.open(ws)
    (run,) = store.list_runs()
    # the launcher names the run rank 0 noted (it said RUN_ID literally)
    assert re.fullmatch(rf"error: distributed: rank 1 \(pid \d+\) was killed by SIGKILL; the job "
                        rf"stopped \(`dlforge run --resume {run.id}` continues from the last "
                        rf"checkpoint, with any --nproc\)", killed.stderr.splitlines()[-1])
    # rank 0 saw the collective fail (or torchrun's SIGTERM came first) and recorded it: a
    # failed run, resumable
    assert (run.status, store.list_models()) == ("failed", [])
    assert re.match(r"DistributedError: distributed: rank 0 (failed reducing the epoch's|was "
                    r"stopped by SIGTERM \(another rank failed, or the launching process was stopped\))",
                    run.error), run.error
    assert sorted(p.name for p in (ws / "artifacts" / "runs" / run.id / "checkpoints").iterdir()) == [
        "epoch000.pt", "last.pt"]  # written by rank 0 after the first epoch only

    resumed = _dlforge(ws, "run", "--resume", run.id, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    done = store.get_run(run.id)
    assert (done.status, [row["epoch"] for row in done.history]) == ("completed", [0, 1, 2])
    assert [(v.version, v.run_id) for v in store.list_versions("dp")] == [(1, run.id)]


def test_a_hung_rank_ends_the_job_after_the_timeout(tmp_path, config):
    start = time.monotonic()
    hung = _dlforge(tmp_path / "ws", "train", str(config), "--nproc", "2", "--timeout", "5",
                    "--quiet", env={"DLFORGE_FAULT_AT": "mid-epoch@2", "DLFORGE_FAULT_RANK": "1",
                                    "DLFORGE_FAULT_SIGNAL": "SIGSTOP"})
    assert hung.returncode == 1
    lines = hung.stderr.splitlines()
    assert lines[-2].startswith("error: distributed: rank 0 failed reducing the epoch's metrics: "
                                "Timed out waiting 5000ms")
    assert re.fullmatch(r"error: distributed: rank 0 \(pid \d+\) exited with code 1 \(its error "
                        r"is above\); the job stopped", lines[-1])
    assert time.monotonic() - start < 120  # 5 s timeout + 5 s shutdown + start-up on a busy machine


@pytest.mark.parametrize("nproc", ["2", "4"])
def test_a_problem_rank_0_finds_with_the_data_is_said_once(tmp_path, config, nproc):
    # the ranks waiting for rank 0's config printed "failed waiting for rank 0's config" as well,
    # then (when torchrun's SIGTERM came first) "rank N was stopped by SIGTERM"
    proc = _dlforge(tmp_path / "ws", "train", str(config), "--nproc", nproc, "--set",
                    "train.schedule={type: cosine, warmup_steps: 10000}", "--quiet")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: train.schedule.warmup_steps: must be less than the run's ")
    assert re.fullmatch(r"error: distributed: rank 0 \(pid \d+\) exited with code 2 \(its error "
                        r"is above\); the job stopped", lines[1])
    assert Store.open(tmp_path / "ws").list_runs() == []


@pytest.mark.parametrize(("signum", "code", "status", "rank_0", "launcher"), [
    (signal.SIGINT, 130, "interrupted", "error: interrupted",
     "error: interrupted: this node's 2 processes stopped"),
    (signal.SIGTERM, 1, "failed", "error: distributed: rank 0 was stopped by SIGTERM (another "
     "rank failed, or the launching process was stopped)",
     "error: distributed: SIGTERM stopped this node's 2 processes (`dlforge run --resume` with "
     "the run id rank 0 printed continues from the last checkpoint, with any --nproc)"),
])
def test_a_signal_to_the_launcher_is_rank_0s_line_and_its_own(tmp_path, signum, code, status,
                                                              rank_0, launcher):
    # Ctrl-C printed a bare "error: interrupted" per rank other than 0; SIGTERM a line per rank,
    # none naming the run (the launcher's said RUN_ID)
    ws, config = tmp_path / "ws", tmp_path / "long.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "train": {
        **CONFIG["train"], "epochs": 2000, "batch_size": 16, "early_stopping": False}}))
    proc = subprocess.Popen([sys.executable, "-m", "dlforge", "-w", str(ws), "train", str(config),
                             "--nproc", "2", "--quiet"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not list(ws.glob("artifacts/runs/*/checkpoints/last.pt")):  # both ranks are training
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    (run,) = Store.open(ws).list_runs()
    assert run.status == status
    assert (proc.returncode, err.splitlines()) == (code, [
        f"{rank_0}: run {run.id} stopped; resume it with `dlforge run --resume {run.id}`",
        launcher])


def test_two_nodes_meet_at_a_c10d_rendezvous(tmp_path, config):
    ws, endpoint = tmp_path / "ws", f"127.0.0.1:{_free_port()}"
    args = [sys.executable, "-m", "dlforge", "-w", str(ws), "train", str(config), "--nnodes", "2",
            "--rdzv-endpoint", endpoint, "--timeout", "60", "--quiet"]
    nodes = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [node.communicate(timeout=240) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outs
    assert [v.version for v in Store.open(ws).list_versions("dp")] == [1]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["run", "{tuned}", "--nproc", "2"], 2,
     "error: tune: a search cannot run with --nproc (each trial is one process); use `dlforge "
     "train` (which ignores tune), or remove the tune section"),
    (["train", "{config}", "--nproc", "2", "--set", "update.source=dp@1"], 2,
     "error: update.source: 'dp@1' cannot train with --nproc (only one process would build its "
     "data); run it without --nproc"),
    (["train", "{config}", "--nnodes", "2"], 2, "error: Invalid value for '--nnodes': needs "
     "--rdzv-endpoint HOST:PORT with --nnodes > 1 (see 'dlforge train -h')"),
    (["train", "{config}", "--nnodes", "2", "--rdzv-endpoint", "127.0.0.1:{port}", "--timeout",
      "3"], 1, "error: --rdzv-endpoint: the rendezvous at 127.0.0.1:{port} with --nnodes 2 "
     "failed: RendezvousTimeoutError (check that every node can reach it and that --nnodes "
     "matches)"),
])
def test_bad_launches_fail_in_one_line_and_write_nothing(tmp_path, config, args, code, message):
    port, ws, tuned = str(_free_port()), tmp_path / "ws", tmp_path / "tuned.yaml"
    tuned.write_text(yaml.safe_dump({**CONFIG, "tune": {
        "n_trials": 2, "space": {"train.lr": {"choice": [0.01, 0.02]}}}}))
    proc = _dlforge(ws, *[a.format(config=config, port=port, tuned=tuned) for a in args])
    assert proc.returncode == code
    assert proc.stderr.splitlines()[-1] == message.format(port=port)
    assert not ws.exists()


@pytest.mark.parametrize(("where", "reason"), [
    (["run", "--resume", "abc123", "--node-rank", "1"],  # the node without the store, alone
     "The client socket has timed out after 3000ms while trying to connect to (127.0.0.1, {port})"),
    (["train", "{config}", "--node-rank", "0"], "Timed out after 4 seconds waiting for clients. "
                                                 "1/2 clients joined"),
])
def test_a_static_rendezvous_missing_a_node_ends_after_the_timeout(tmp_path, config, where, reason):
    port = str(_free_port())
    start = time.monotonic()
    proc = _dlforge(tmp_path / "ws", *[a.format(config=config) for a in where], "--nnodes", "2",
                    "--rdzv-endpoint", f"127.0.0.1:{port}", "--timeout", "3", timeout=90)
    assert proc.returncode == 1 and time.monotonic() - start < 60  # it waited 600 s before
    assert proc.stderr.splitlines()[-1] == (
        f"error: --timeout: the static rendezvous at 127.0.0.1:{port} (node 0 hosts it) was not "
        f"complete within 3s: {reason.format(port=port)}; start all --nnodes 2 nodes within the "
        f"timeout, or raise --timeout")


@pytest.mark.parametrize(("where", "nnodes"), [
    (["--nnodes", "2", "--node-rank", "1"], 2),  # static
    (["--nnodes", "2"], 2),  # c10d
    (["--nproc", "2"], 1),  # c10d too: one node, but at the endpoint given
])
def test_an_endpoint_that_is_no_rendezvous_store_ends_after_the_deadline(tmp_path, config, where,
                                                                         nnodes):
    with socket.socket() as listener:  # accepts connections, never answers torch's handshake
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        start = time.monotonic()
        proc = _dlforge(tmp_path / "ws", "train", str(config), *where,
                        "--rdzv-endpoint", f"127.0.0.1:{port}", "--timeout", "1", timeout=90)
    assert proc.returncode == 1 and time.monotonic() - start < 60  # it hung for ever before
    assert proc.stderr.splitlines()[-1] == (
        f"error: --rdzv-endpoint: the rendezvous at 127.0.0.1:{port} with --nnodes {nnodes} did not "
        f"complete within 7s (2 x --timeout + 5s): no rendezvous store answered there; check that "
        f"HOST:PORT is node 0's rendezvous and not another service (pick another port), or raise "
        f"--timeout")
    assert not (tmp_path / "ws").exists()
