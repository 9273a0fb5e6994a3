"""The launcher's one-line errors without processes: a static rendezvous that fails (a
timeout names --timeout, anything else --rdzv-endpoint) and the parent's own deadline for a
rendezvous that never answers."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
import torch.distributed
import torch.distributed.run

from dlforge.cli import main
from dlforge.cli.launch import Launch, run_processes
from dlforge.cli.rendezvous_deadline import RendezvousDeadline

ROOT = Path(__file__).resolve().parents[3]
IN_USE = ("The server socket has failed to listen on any local network address. port: 29400, "
          "useIpv6: false, code: -98, name: EADDRINUSE, message: address already in use")


@pytest.mark.parametrize(("error", "line"), [
    (torch.distributed.DistNetworkError(IN_USE),
     f"error: --rdzv-endpoint: the static rendezvous at 127.0.0.1:29400 (node 0 hosts it) failed: "
     f"{IN_USE} (node 0 must be able to listen on HOST:PORT and every node to reach it: free the "
     f"port or pick another)"),
    (torch.distributed.DistStoreError("Timed out after 4 seconds waiting for clients. 1/2 clients "
                                      "joined."),
     "error: --timeout: the static rendezvous at 127.0.0.1:29400 (node 0 hosts it) was not "
     "complete within 3s: Timed out after 4 seconds waiting for clients. 1/2 clients joined; start "
     "all --nnodes 2 nodes within the timeout, or raise --timeout"),
])
def test_a_failed_static_rendezvous_names_the_option_to_change(tmp_path, monkeypatch, capsys,
                                                               error, line):
    def fail(args):
        raise error

    monkeypatch.setattr(torch.distributed.run, "run", fail)
    ws = tmp_path / "ws"
    code = main(["-w", str(ws), "train", str(ROOT / "examples/breast_cancer.yaml"), "--nnodes", "2",
                 "--node-rank", "0", "--rdzv-endpoint", "127.0.0.1:29400", "--timeout", "3"])
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == line
    assert not ws.exists()


@pytest.mark.parametrize("where", [["--node-rank", "0"], []])  # static, c10d
def test_an_endpoint_whose_host_does_not_resolve_is_refused_at_once(tmp_path, monkeypatch, capsys,
                                                                    where):
    started = []
    monkeypatch.setattr(torch.distributed.run, "run", started.append)
    ws = tmp_path / "ws"
    code = main(["-w", str(ws), "train", str(ROOT / "examples/breast_cancer.yaml"), "--nnodes", "2",
                 *where, "--rdzv-endpoint", "nohost.invalid:29477", "--timeout", "3"])
    assert code == 1 and started == []
    assert re.fullmatch(r"error: --rdzv-endpoint: the host 'nohost\.invalid' of nohost\.invalid:"
                        r"29477 does not resolve \([^()]+\); give node 0's host name or IP "
                        r"address as HOST:PORT", capsys.readouterr().err.splitlines()[-1])
    assert not ws.exists()


@pytest.mark.parametrize(("launch", "watched"), [
    (Launch(nproc=2), False),  # --standalone: torchrun's own store, nothing to hang on
    (Launch(nproc=2, endpoint="127.0.0.1:29400", timeout=3), True),  # c10d with --nnodes 1 too
    (Launch(nnodes=2, node_rank=1, endpoint="127.0.0.1:29400", timeout=3), True),
])
def test_the_deadline_watches_every_rendezvous_at_a_given_endpoint(monkeypatch, launch_env,
                                                                   launch, watched):
    from dlforge.cli import launch as launch_module

    calls = []
    monkeypatch.setattr(launch_module, "_watch", lambda launch: calls.append(launch))
    monkeypatch.setattr(torch.distributed.run, "run", lambda args: None)
    before = dict(os.environ)
    run_processes(launch, ["train"])
    assert calls == ([launch] if watched else [])
    assert os.environ["DLFORGE_DIST_TIMEOUT"] == f"{launch.timeout:g}"
    # the variables the launcher sets are those tests/conftest.py restores after each test
    assert {k for k in {*before, *os.environ} if before.get(k) != os.environ.get(k)} <= set(launch_env)


def test_the_deadline_fires_once_with_its_line_unless_the_rendezvous_completed():
    fired: list[str] = []
    done = threading.Event()
    late = RendezvousDeadline(0.05, "late", on_expiry=lambda m: (fired.append(m), done.set()))
    late.start()
    assert done.wait(5) and fired == ["late"]
    joined = RendezvousDeadline(0.05, "joined", on_expiry=fired.append).start()
    joined.emit(type("Metric", (), {"name": "SimpleElasticAgent._rendezvous.duration.ms"}))
    assert not joined.joined  # only success counts
    joined.emit(type("Metric", (), {"name": "SimpleElasticAgent._rendezvous.success"}))
    joined.expire()  # as the timer would, had it not been cancelled
    assert joined.joined and fired == ["late"]


def test_torch_reports_the_agents_rendezvous_as_the_metric_the_deadline_waits_for():
    import inspect

    from torch.distributed.elastic import metrics
    from torch.distributed.elastic.agent.server.api import SimpleElasticAgent

    from dlforge.cli.rendezvous_deadline import watch_rendezvous

    assert inspect.unwrap(SimpleElasticAgent._rendezvous) is not SimpleElasticAgent._rendezvous

    class SimpleElasticAgent:  # noqa: F811 - the same qualified name, decorated as torch's is
        @metrics.prof
        def _rendezvous(self) -> None:
            pass

    fired: list[str] = []
    deadline = watch_rendezvous(60, "late", on_expiry=fired.append)
    try:
        SimpleElasticAgent()._rendezvous()
        assert deadline.joined
    finally:
        deadline.cancel()
        metrics.configure(metrics.NullMetricHandler(), group="torchelastic")


@pytest.mark.parametrize(("signum", "code", "line"), [
    (2, 130, "error: interrupted: this node's 2 processes stopped"),  # Ctrl-C, as without --nproc
    (15, 1, "error: distributed: SIGTERM stopped this node's 2 processes (`dlforge run --resume` "
            "with the run id rank 0 printed continues from the last checkpoint, with any --nproc)"),
])
def test_a_signal_to_the_launcher_is_one_line_not_an_internal_error(tmp_path, monkeypatch, capsys,
                                                                    signum, code, line):
    # torchrun stops the processes on a death signal, then raises SignalException: that was
    # "error: internal error: SignalException: Process N got signal: 2 (rerun with --debug ...)"
    import signal

    from torch.distributed.elastic.multiprocessing.api import SignalException

    def killed(args):
        raise SignalException(f"Process 4242 got signal: {signum}", sigval=signal.Signals(signum))

    monkeypatch.setattr(torch.distributed.run, "run", killed)
    ws = tmp_path / "ws"
    assert main(["-w", str(ws), "train", str(ROOT / "examples/breast_cancer.yaml"), "--nproc", "2"]) == code
    assert capsys.readouterr().err.splitlines() == [line]


@pytest.mark.parametrize(("signum", "code", "line"), [
    (2, 130, "error: interrupted: this node's 2 processes had finished; stopped while waiting for "
             "the other nodes to finish"),
    (15, 1, "error: distributed: SIGTERM: this node's 2 processes had finished; stopped while "
            "waiting for the other nodes to finish"),
])
def test_a_signal_in_torchruns_exit_barrier_does_not_ask_to_resume(tmp_path, monkeypatch, capsys,
                                                                   signum, code, line):
    # with --nnodes 2, torchrun waits for the other nodes once its processes finished: a signal
    # then said "this node's 2 processes stopped" and "--resume" though they had completed
    import signal

    from torch.distributed.elastic.multiprocessing.api import SignalException

    def _exit_barrier():  # named as torchrun's SimpleElasticAgent._exit_barrier
        raise SignalException(f"Process 4242 got signal: {signum}", sigval=signal.Signals(signum))

    monkeypatch.setattr(torch.distributed.run, "run", lambda args: _exit_barrier())
    ws = tmp_path / "ws"
    assert main(["-w", str(ws), "train", str(ROOT / "examples/breast_cancer.yaml"), "--nproc", "2"]) == code
    assert capsys.readouterr().err.splitlines() == [line]


def test_torchruns_own_log_lines_are_silenced(monkeypatch, launch_env):
    import logging

    monkeypatch.setattr(torch.distributed.run, "run", lambda args: None)
    run_processes(Launch(nproc=2), ["train"])
    # it logged "Received 2 death signal, shutting down workers" at WARNING, set by torch itself
    agent = logging.getLogger("torch.distributed.elastic.agent.server.api")
    assert agent.getEffectiveLevel() == logging.CRITICAL


def _rank_1_killed(note: str | None):
    """torchrun's run: rank 0 notes `note` as its run's id (None: nothing), then rank 1 dies
    of SIGKILL."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    from dlforge.train.distributed import note_run

    def run(args):
        if note is not None:
            note_run(note)
        failure = ProcessFailure(local_rank=1, pid=4242, exitcode=-9, error_file="<N/A>")
        raise ChildFailedError("dlforge", {1: failure})

    return run


@pytest.mark.parametrize(("note", "args", "tail"), [
    ("ab12cd", ["train", str(ROOT / "examples/breast_cancer.yaml")],
     " (`dlforge run --resume ab12cd` continues from the last checkpoint, with any --nproc)"),
    (None, ["run", "--resume", "ef34"],
     " (`dlforge run --resume ef34` continues from the last checkpoint, with any --nproc)"),
    (None, ["train", str(ROOT / "examples/breast_cancer.yaml")],
     "; its run's id is unknown here (rank 0 recorded none on this node: it runs on another "
     "node, or died before recording its run); `dlforge runs list` shows a run to continue "
     "with `dlforge run --resume RUN`, with any --nproc"),
])
def test_a_killed_rank_names_the_run_rank_0_noted(tmp_path, monkeypatch, capsys, note, args, tail):
    # it said `dlforge run --resume RUN_ID` literally
    from dlforge.pipeline import runner
    from dlforge.train.distributed import RUN_ID_FILE_ENV

    monkeypatch.setattr(torch.distributed.run, "run", _rank_1_killed(note))
    monkeypatch.setattr(runner, "resumed_config", lambda *a, **k: runner.load_config(None))
    assert main(["-w", str(tmp_path / "ws"), *args, "--nproc", "2"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: distributed: rank 1 (pid 4242) was killed by SIGKILL; the job stopped{tail}"]
    assert RUN_ID_FILE_ENV not in os.environ


def test_a_temporary_folder_that_cannot_be_made_is_one_line_and_starts_no_deadline(
        tmp_path, monkeypatch, capsys):
    # made outside the try, after the deadline: an internal-error traceback, the deadline
    # never cancelled
    import tempfile

    from dlforge.cli import launch

    started, watched = [], []
    monkeypatch.setattr(torch.distributed.run, "run", started.append)
    monkeypatch.setattr(launch, "_watch", watched.append)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))  # as $TMPDIR would
    ws = tmp_path / "ws"
    code = main(["-w", str(ws), "train", str(ROOT / "examples/breast_cancer.yaml"), "--nnodes", "2",
                 "--node-rank", "0", "--rdzv-endpoint", "127.0.0.1:29400", "--timeout", "3"])
    assert (code, started, watched) == (1, [], [])
    assert capsys.readouterr().err.splitlines() == [
        f"error: distributed: cannot create a temporary folder in {tmp_path / 'missing'} (No such "
        f"file or directory); set TMPDIR to a writable folder"]
    assert not ws.exists()
