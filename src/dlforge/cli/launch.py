"""`--nproc N [--nnodes M --node-rank R --rdzv-endpoint HOST:PORT]` of `dlforge train` and
`dlforge run`: start this node's N processes with torchrun (`torch.distributed.run`), each
running the same command; the fit loop then trains data-parallel (train/distributed.py).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dlforge.errors import first_line

if TYPE_CHECKING:
    from dlforge.config import RunConfig

# when one process failed (or the launcher was stopped), the others get SIGTERM (or SIGINT),
# then SIGKILL after this: short, as it ends a hung rank too; rank 0 writing its run's final
# state to a store locked longer than this is killed mid-write (pipeline/hold_signals.py)
SHUTDOWN_S = 5
DEFAULT_TIMEOUT_S = 300.0  # torch is imported only when processes start: the CLI starts fast

NprocOpt = Annotated[int, typer.Option(
    "--nproc", min=1, help="Data-parallel processes on this node (torchrun, DDP).")]
NnodesOpt = Annotated[int, typer.Option("--nnodes", min=1, help="Machines taking part.")]
NodeRankOpt = Annotated[int | None, typer.Option(
    "--node-rank", min=0, help="This machine's rank, from 0: static rendezvous (node 0 hosts it at "
    "--rdzv-endpoint); without it, c10d assigns the ranks.")]
EndpointOpt = Annotated[str | None, typer.Option(
    "--rdzv-endpoint", help="HOST:PORT of the c10d rendezvous (needed with --nnodes > 1).")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=1, help="Seconds a collective or the rendezvous waits before failing.")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=1, help="Torch threads per process; default this node's cores / --nproc.")]


@dataclass(frozen=True)
class Launch:
    """The launch options of one command line."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int | None = None
    endpoint: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    threads: int | None = None

    def holds_store(self, store_url: str | None) -> bool:
        """True when this node's parent process may read the store: only global rank 0 uses
        the workspace, so a node other than 0 (or one whose rank c10d assigns) reads it only
        through an explicit store URL."""
        return store_url is not None or self.nnodes == 1 or self.node_rank == 0

    @property
    def wanted(self) -> bool:
        """True when the command must start processes (more than one in all)."""
        return self.nproc * self.nnodes > 1

    def check(self) -> None:
        """Raise `typer.BadParameter` for options that cannot work together."""
        if self.nnodes > 1 and not self.endpoint:
            raise typer.BadParameter("needs --rdzv-endpoint HOST:PORT with --nnodes > 1",
                                     param_hint="--nnodes")
        if self.node_rank is not None and self.node_rank >= self.nnodes:
            raise typer.BadParameter(f"must be below --nnodes {self.nnodes} (got {self.node_rank})",
                                     param_hint="--node-rank")

    def torchrun_args(self, command: list[str]) -> list[str]:
        """torchrun's arguments running `python -m dlforge COMMAND...` in each process."""
        waits = f"join_timeout={int(self.timeout)},read_timeout={int(self.timeout)}"
        if self.nnodes == 1 and not self.endpoint:
            where = ["--standalone"]
        elif self.node_rank is None:
            where = ["--rdzv-backend", "c10d", "--rdzv-endpoint", str(self.endpoint), "--rdzv-conf", waits]
        else:  # static reads `timeout` (its TCPStore's connect and wait), not c10d's keys
            where = ["--rdzv-backend", "static", "--rdzv-endpoint", str(self.endpoint),
                     "--rdzv-conf", f"{waits},timeout={int(self.timeout)}",
                     "--node-rank", str(self.node_rank)]
        return ["--nnodes", str(self.nnodes), "--nproc-per-node", str(self.nproc), *where,
                "--max-restarts", "0", "--shutdown-timeout", str(SHUTDOWN_S), "-m", "dlforge",
                *command]


def run_processes(launch: Launch, command: list[str]) -> None:
    """Start this node's processes, each running `dlforge COMMAND...`, and wait for them.

    Raises:
        DistributedError: a process failed (one line naming its rank, its exit code or signal),
            the rendezvous failed, or --rdzv-endpoint's host does not resolve.
    """
    from torch.distributed import DistNetworkError, DistStoreError
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    from dlforge.errors import ConfigError
    from dlforge.runtime import THREADS_ENV, physical_cores
    from dlforge.train.distributed import RUN_ID_FILE_ENV, TIMEOUT_ENV, DistributedError

    if launch.endpoint is not None:
        _resolve(launch)  # before any wait: a host that does not resolve fails at once
    threads = launch.threads or max(1, physical_cores() // launch.nproc)
    os.environ.update({TIMEOUT_ENV: f"{launch.timeout:g}", THREADS_ENV: str(threads),
                       "OMP_NUM_THREADS": str(threads)})
    _quiet_torchrun_logs()
    notes = _notes_folder()  # before the deadline starts, which then is always cancelled
    run_id_file = Path(notes.name) / "run_id"
    os.environ[RUN_ID_FILE_ENV] = str(run_id_file)  # rank 0 writes its run's id there
    deadline = None
    try:
        # any rendezvous at a user-given endpoint (c10d or static, --nnodes 1 too) can hang
        deadline = _watch(launch) if launch.endpoint is not None else None
        torchrun(get_args_parser().parse_args(launch.torchrun_args(command)))
    except ChildFailedError as exc:
        _, failure = exc.get_first_failure()
        error = ConfigError if failure.exitcode == 2 else DistributedError  # exit 2 stays 2
        raise error(failure_line(exc, _noted_run(run_id_file, command))) from None
    except RendezvousError as exc:
        raise DistributedError(f"--rdzv-endpoint: the rendezvous at {launch.endpoint} with "
                               f"--nnodes {launch.nnodes} failed: {_first_line(exc)} (check that "
                               f"every node can reach it and that --nnodes matches)") from None
    except (DistNetworkError, DistStoreError) as exc:  # the static rendezvous's TCPStore
        raise DistributedError(_static_line(launch, exc, timed_out=isinstance(
            exc, DistStoreError) or "timed out" in str(exc).lower())) from None
    except SignalException as exc:  # torchrun passed the signal on to the processes, then raised
        raise stopped(exc.sigval, launch.nproc, finished=in_exit_barrier(exc)) from None
    finally:
        os.environ.pop(RUN_ID_FILE_ENV, None)
        notes.cleanup()
        if deadline is not None:
            deadline.cancel()


def _notes_folder() -> tempfile.TemporaryDirectory:
    """A temporary folder where rank 0 notes its run's id for the launcher's lines.

    Raises:
        DistributedError: it cannot be created (a TMPDIR that is missing or not writable).
    """
    from dlforge.train.distributed import DistributedError

    try:
        return tempfile.TemporaryDirectory(prefix="dlforge-launch-")
    except OSError as exc:
        raise DistributedError(f"distributed: cannot create a temporary folder in "
                               f"{tempfile.gettempdir()} ({exc.strerror or exc}); set TMPDIR to "
                               f"a writable folder") from None


def _quiet_torchrun_logs() -> None:
    """Silence torchrun's log lines: our errors say it once. Its modules set their loggers'
    levels themselves when imported (`LOGLEVEL`, default WARNING), so the parent's level is not
    enough: "Received 2 death signal, shutting down workers" came through."""
    import torch.distributed.run  # noqa: F401 - imports the modules that make the loggers

    for name in ["torch.distributed.elastic", *logging.root.manager.loggerDict]:
        if name.startswith(("torch.distributed.elastic", "torch.distributed.run")):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def stopped(signum: int, nproc: int, *, finished: bool = False) -> BaseException:
    """What a signal to the launching process (torchrun stops the processes, then raises) ends
    the command with: Ctrl-C is an interrupt (exit 130, as without --nproc); SIGTERM and the
    others a one-line `DistributedError` (exit 1). Rank 0 has already said which run to resume
    (the launcher does not know its id). `finished`: the processes had finished, and torchrun
    was waiting for the other nodes' (its exit barrier): nothing is left to resume here.

    Example:
        >>> import signal
        >>> stopped(signal.SIGINT, 2)
        KeyboardInterrupt("this node's 2 processes stopped")
        >>> print(stopped(signal.SIGTERM, 2))
        distributed: SIGTERM stopped this node's 2 processes (`dlforge run --resume` with the run id rank 0 printed continues from the last checkpoint, with any --nproc)
        >>> stopped(signal.SIGINT, 2, finished=True)
        KeyboardInterrupt("this node's 2 processes had finished; stopped while waiting for the other nodes to finish")
    """
    import signal

    from dlforge.train.distributed import DistributedError

    processes = f"this node's {nproc} process{'es' if nproc != 1 else ''}"
    name = signal.Signals(signum).name
    if finished:
        what = f"{processes} had finished; stopped while waiting for the other nodes to finish"
        return KeyboardInterrupt(what) if signum == signal.SIGINT else DistributedError(
            f"distributed: {name}: {what}")
    if signum == signal.SIGINT:
        return KeyboardInterrupt(f"{processes} stopped")
    return DistributedError(f"distributed: {name} stopped {processes} (`dlforge run --resume` "
                            f"with the run id rank 0 printed continues from the last checkpoint, "
                            f"with any --nproc)")


def in_exit_barrier(exc: BaseException) -> bool:
    """True when torchrun raised `exc` (a signal) in its exit barrier: this node's processes had
    finished and it waited for the other nodes' (`SimpleElasticAgent._exit_barrier`)."""
    import traceback

    return any(frame.f_code.co_name == "_exit_barrier"
               for frame, _ in traceback.walk_tb(exc.__traceback__))


def _resolve(launch: Launch) -> None:
    """Refuse an --rdzv-endpoint whose host does not resolve, at once (torch would retry it
    until --timeout, then name --timeout).

    Raises:
        DistributedError: one line naming the host and the fix.

    Example:
        >>> _resolve(Launch(nnodes=2, endpoint="127.0.0.1:29400"))
        >>> try:
        ...     _resolve(Launch(nnodes=2, endpoint="nohost.invalid:29400"))
        ... except RuntimeError as exc:  # DistributedError
        ...     print(str(exc).split(" (")[0])
        --rdzv-endpoint: the host 'nohost.invalid' of nohost.invalid:29400 does not resolve
    """
    import socket

    from dlforge.train.distributed import DistributedError

    endpoint = str(launch.endpoint)
    host = endpoint.rpartition(":")[0] if ":" in endpoint else endpoint
    host = host.removeprefix("[").removesuffix("]")  # [IPv6]:PORT
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or _first_line(exc)
        raise DistributedError(f"--rdzv-endpoint: the host {host!r} of {endpoint} does not "
                               f"resolve ({reason}); give node 0's host name or IP address as "
                               f"HOST:PORT") from None


def _static_line(launch: Launch, exc: BaseException, *, timed_out: bool) -> str:
    """The one line of a failed static rendezvous: a timeout names --timeout, anything else
    (node 0 cannot listen on the port) --rdzv-endpoint; a host that does not resolve is
    refused before, by `_resolve`."""
    where = f"the static rendezvous at {launch.endpoint} (node 0 hosts it)"
    if timed_out:
        return (f"--timeout: {where} was not complete within {launch.timeout:g}s: "
                f"{_first_line(exc)}; start all --nnodes {launch.nnodes} nodes within the "
                f"timeout, or raise --timeout")
    return (f"--rdzv-endpoint: {where} failed: {_first_line(exc)} (node 0 must be able to listen "
            f"on HOST:PORT and every node to reach it: free the port or pick another)")


def _watch(launch: Launch):
    """A `RendezvousDeadline` of 2 x --timeout + a margin: the rendezvous's own timeouts cannot
    end a handshake with something at the endpoint that is not a rendezvous store."""
    from dlforge.cli.rendezvous_deadline import MARGIN_S, watch_rendezvous

    seconds = 2 * launch.timeout + MARGIN_S
    return watch_rendezvous(seconds, (
        f"--rdzv-endpoint: the rendezvous at {launch.endpoint} with --nnodes {launch.nnodes} did "
        f"not complete within {seconds:g}s (2 x --timeout + {MARGIN_S:g}s): no rendezvous store "
        f"answered there; check that HOST:PORT is node 0's rendezvous and not another service "
        f"(pick another port), or raise --timeout"))


def start_ranks(ctx: typer.Context, launch: Launch, cfg: RunConfig | None, config: Path | None,
                overrides: list[str], quiet: bool, search: bool, resume: str | None) -> None:
    """Check the launch, then run the same command (`train`, or `run`/`run --resume`) in each
    of this node's processes.

    Raises:
        typer.BadParameter: options that cannot work together.
        ConfigError: a config `check_launch` refuses (a resumed run's too, read here when
            this node holds the store: see `Launch.holds_store`).
        NotFoundError: `--resume` names no run, or this node's workspace has no store.
        DistributedError: a process failed.
    """
    # torch's C++ log would print a stack per connection retry; our errors say it in one line.
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")  # before torch is imported
    from dlforge.pipeline.distributed_run import check_launch
    from dlforge.pipeline.runner import resumed_config

    launch.check()
    world, store_url = launch.nproc * launch.nnodes, ctx.obj["store_url"]
    if cfg is not None:
        check_launch(cfg, world)
    elif resume is not None and launch.holds_store(store_url):  # the run's own config decides
        check_launch(resumed_config(resume, workspace=ctx.obj["workspace"], store_url=store_url),
                     world, resumed=True)  # rank 0 checks it again (run_rank), on any node
    head = []
    if ctx.obj["workspace"] is not None:
        head += ["--workspace", str(Path(ctx.obj["workspace"]).resolve())]
    if ctx.obj["store_url"] is not None:
        head += ["--store-url", ctx.obj["store_url"]]
    if resume is not None:
        args = ["run", "--resume", resume]
    else:
        args = ["run" if search else "train", *([str(config)] if config else [])]
        args += [part for item in overrides for part in ("--set", item)]
    run_processes(launch, [*head, *args, *(["--quiet"] if quiet else [])])


def _first_line(exc: BaseException) -> str:
    return first_line(exc).rstrip(".")  # it ends a clause of our line


def _noted_run(run_id_file: Path, command: list[str]) -> str | None:
    """The run rank 0 noted on this node (`train.distributed.note_run`), else the one
    `--resume` names; None when neither: rank 0 runs on another node, or recorded no run."""
    if "--resume" in command:
        return command[command.index("--resume") + 1]
    try:
        return run_id_file.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def failure_line(exc, run_id: str | None) -> str:
    """The one line of a rank that failed: its rank, pid and exit code, or the signal that
    killed it and the run to resume (by id when `run_id` is known).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> killed = NS(exitcode=-9, pid=77, signal_name=lambda: "SIGKILL")
        >>> print(failure_line(NS(get_first_failure=lambda: (1, killed)), "ab12"))
        distributed: rank 1 (pid 77) was killed by SIGKILL; the job stopped (`dlforge run --resume ab12` continues from the last checkpoint, with any --nproc)
        >>> print(failure_line(NS(get_first_failure=lambda: (1, killed)), None))
        distributed: rank 1 (pid 77) was killed by SIGKILL; the job stopped; its run's id is unknown here (rank 0 recorded none on this node: it runs on another node, or died before recording its run); `dlforge runs list` shows a run to continue with `dlforge run --resume RUN`, with any --nproc
    """
    rank, failure = exc.get_first_failure()
    if failure.exitcode < 0:
        killed = f"distributed: rank {rank} (pid {failure.pid}) was killed by {failure.signal_name()}"
        if run_id is None:
            return (f"{killed}; the job stopped; its run's id is unknown here (rank 0 recorded "
                    f"none on this node: it runs on another node, or died before recording its "
                    f"run); `dlforge runs list` shows a run to continue with `dlforge run "
                    f"--resume RUN`, with any --nproc")
        return (f"{killed}; the job stopped (`dlforge run --resume {run_id}` continues from the "
                f"last checkpoint, with any --nproc)")
    return (f"distributed: rank {rank} (pid {failure.pid}) exited with code {failure.exitcode} "
            f"(its error is above); the job stopped")
