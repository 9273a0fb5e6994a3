"""One process's part of a data-parallel run started by torchrun (`dlforge train --nproc N`).

Rank 0 runs the whole pipeline (`pipeline.run`: the store, data checks, the preflight,
training, test evaluation, report, registration); just before training it sends the config to
the other ranks (`train.distributed.share_config`). They prepare the same data from it and
call the same `train_candidate` without a checkpoint folder, progress or store, so they write
nothing; the fit loop shards the data and all-reduces the gradients (train/distributed.py).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from dlforge.candidate import TrainingPlan, train_candidate
from dlforge.config import RunConfig, load_config
from dlforge.config.model_schema import GAN_TYPE
from dlforge.data.prepare import prepare_data
from dlforge.errors import ConfigError, DlforgeError, QuietExit
from dlforge.pipeline.runner import RunResult, resumed_config, run
from dlforge.runtime import setup_process
from dlforge.train import distributed, pipeline_step

RESEND_S = 1.0  # rank 0's SIGTERM again, if its first raise was lost


def run_rank(config: RunConfig | None, *, workspace: str | Path | None = None,
             progress: bool = True, resume: str | None = None,
             store_url: str | None = None) -> RunResult | None:
    """Join the process group and play this rank's part of `pipeline.run`.

    Args:
        config: the run's config (rank 0; the other ranks receive it); None with `resume`.
        workspace, progress, resume, store_url: as for `pipeline.run` (used by rank 0).

    Returns:
        Rank 0: the `RunResult`; the other ranks: None.

    Raises:
        ConfigError: the config (a resumed run's too) is one `check_launch` refuses: a `tune`
            section (not when resumed), `update.source` / `transfer.source`, a GAN.
        DistributedError: a rank died or hung past the timeout.
        QuietExit: a rank other than 0 that SIGTERM or Ctrl-C stopped (exit 128 + the signal,
            no line: see `_on_stop_signals`).

    Example:
        >>> run_rank(load_config("examples/digits.yaml"))  # under torchrun  # doctest: +SKIP
    """
    rank = distributed.init_process_group()
    stopping = _on_stop_signals(rank)
    try:
        if rank != 0:
            _follow()
            return None
        # a resumed run's config is read here too: the parent checks it only where its node
        # holds the store (cli/launch.py), and rank 0 may be on any node
        cfg = config if resume is None else resumed_config(resume, workspace=workspace,
                                                           store_url=store_url)
        if cfg is not None:
            check_launch(cfg, distributed.world_size(), resumed=resume is not None)
            if progress:
                print(_describe(cfg), file=sys.stderr)
        return run(config, workspace=workspace, progress=progress, resume=resume,
                   store_url=store_url)
    except BaseException:
        if stopping:  # rank 0 has gone: its line names the run, the launcher's the processes
            raise QuietExit(128 + stopping[0]) from None
        raise
    finally:
        distributed.close()


def _on_stop_signals(rank: int) -> list[int]:
    """Handle the signals that stop a run: torchrun's SIGTERM to the surviving ranks when one
    dies (or when it was stopped itself), and the SIGINT it passes on from Ctrl-C.

    Rank 0 raises `Stopped` on SIGTERM instead of dying at once, so that it records its run as
    failed (resumable) and names it, rather than leaving it running; but not while one of its
    errors is being handled (rank 0 is recording the failed collective): a raise there would
    abort the store write that records it. Ctrl-C stays a KeyboardInterrupt there.

    The other ranks note the signal and carry on: leaving at once would fail the collective
    rank 0 waits in (its line would be "Connection closed by peer", not the run to resume).
    Their next collective fails once rank 0 has gone (torchrun kills what is left after its
    shutdown timeout), and `run_rank` ends them quietly: rank 0's line and the launcher's say
    it once. Returns the list those signals are noted in (empty on rank 0)."""
    received: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        if rank != 0:
            received.append(signum)
            return
        if _recording_an_error():
            return
        _again_while_in_group(signum)  # in case the raise below is swallowed
        raise distributed.Stopped(
            f"distributed: rank 0 was stopped by {signal.Signals(signum).name} (another rank "
            f"failed, or the launching process was stopped)")

    signal.signal(signal.SIGTERM, stop)
    if rank != 0:
        signal.signal(signal.SIGINT, stop)
    return received


def _again_while_in_group(signum: int) -> None:
    """Send `signum` to this process again in `RESEND_S` if it is still in the process group: a
    raise from a signal handler that lands in a finalizer (`__del__`, a weakref callback) is
    printed as ignored and lost, and rank 0 would train on until torchrun kills it."""
    def again() -> None:
        if distributed.world_size() > 1:  # `close()` has not run: the stop did not get through
            os.kill(os.getpid(), signum)

    timer = threading.Timer(RESEND_S, again)
    timer.daemon = True
    timer.start()


def _recording_an_error() -> bool:
    """True while this process handles one of its own errors (or Ctrl-C), the runner recording
    its run as failed, perhaps inside a handler of the store's own. A library's passing
    exception (an OSError a fallback catches) is not one: a SIGTERM there must stop rank 0,
    else it trains on until torchrun kills it, its run left `running`."""
    exc = sys.exc_info()[1]
    while exc is not None:
        if isinstance(exc, (DlforgeError, KeyboardInterrupt)):
            return True
        exc = exc.__context__
    return False


def launched() -> bool:
    """True in a process started by torchrun (`dlforge train --nproc N` starts them)."""
    return distributed.launched()


def check_launch(cfg: RunConfig, world: int, *, resumed: bool = False) -> None:
    """Raise `ConfigError` for a config that cannot train in `world` processes: one with a
    search, an update or a transfer (rank 0 alone builds their data: the other ranks would
    train on other data), a GAN (rank 0 alone runs its stages), or a pipeline
    (`model.parallel`) whose stage count is not `world`.

    Args:
        cfg: the config to train (a resumed run's stored config with `resumed`).
        world: the processes in all (`--nproc` x `--nnodes`).
        resumed: `run --resume`: its `tune` section is allowed (a resume trains the search's
            best config and searches nothing).

    Raises:
        ConfigError: one line naming the key, its value and the fix.

    Example:
        >>> check_launch(load_config(None), 2) is None
        True
    """
    if cfg.tune is not None and not resumed:
        raise ConfigError("tune: a search cannot run with --nproc (each trial is one process); "
                          "use `dlforge train` (which ignores tune), or remove the tune section")
    for key, source in (("update.source", cfg.update.source), ("transfer.source", cfg.transfer.source)):
        if source is not None:
            raise ConfigError(f"{key}: {source!r} cannot train with --nproc (only one process "
                              f"would build its data); run it without --nproc")
    if cfg.model.type == GAN_TYPE:  # only rank 0 would train the classifier and the GAN
        raise ConfigError("model.type: dcgan cannot train with --nproc (a GAN run trains its "
                          "feature classifier and the GAN in one process); run it without --nproc")
    split = getattr(cfg.model, "parallel", None)
    if split is not None and split.stages != world:
        raise ConfigError(f"model.parallel.stages: {split.stages} stages need {split.stages} "
                          f"processes, one per stage (got --nproc x --nnodes = {world}); "
                          f"launch {split.stages} (data and pipeline parallelism do not combine)")


def _describe(cfg: RunConfig) -> str:
    """The line rank 0 prints at start: the pipeline's stages, or the data-parallel batch."""
    split = getattr(cfg.model, "parallel", None)
    if split is not None:
        return pipeline_step.describe(split, cfg.train)
    return distributed.describe(cfg.train, distributed.world_size())


def _follow() -> None:
    """A rank other than 0: train what rank 0 sends, writing nothing. Nothing at all when rank 0
    runs on this node and left before sending it: its own error (a config rule found with the
    data, say) or the launcher's line for a killed rank says why, once; each other rank's line
    only repeated that it had gone."""
    try:
        config = distributed.share_config()
    except distributed.DistributedError as exc:
        if distributed.node_rank() == 0 and distributed.peer_left(exc):
            return
        raise
    cfg = load_config(config)
    device = setup_process(cfg.train.num_threads, cfg.device)
    train_candidate(TrainingPlan(cfg, prepare_data(cfg)), device=device)
