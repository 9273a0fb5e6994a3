"""Data parallelism for the one fit loop: DistributedDataParallel in processes started by
torchrun (`dlforge train CONFIG --nproc N`), gloo on CPU, nccl on CUDA.

The loop calls five hooks of a `Parallel` (`parallel()` picks it): one process gets `SINGLE`,
whose hooks do nothing, so its path and speed are those of plain `fit`. Under torchrun,
`DataParallel`:

- `prepare`: each rank trains on its own share of every epoch's seeded order
  (`data.loader.ShardedLoader`: disjoint, padded to equal counts so no all-reduce ever waits
  for a rank that ran out) and validates on a disjoint share; `train.batch_size` is per process
  and the learning rate follows `train.lr_scaling`;
- `start`: rank 0's state (its resumed checkpoint, if any) goes to every rank, then the model
  is wrapped in DDP, whose backward all-reduces (averages) the gradients;
- `training`: the epoch's training steps run through the DDP wrapper; validation, callbacks
  and checkpoints see the plain model, so a checkpoint of N ranks loads in one process;
- `reduce`: the epoch's loss and metrics become sample-weighted means over all ranks;
- `agree`: every rank takes rank 0's stop decision (a time budget is measured per process).

Only rank 0 writes (the pipeline gives the other ranks no checkpoint folder, no progress and
no store). Every collective has the launcher's timeout (`--timeout`, $DLFORGE_DIST_TIMEOUT):
a rank that dies or hangs ends the job with a one-line `DistributedError` naming the rank.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import math
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

from dlforge.data.loader import ShardedLoader
from dlforge.errors import DataError, DlforgeError
from dlforge.train.checkpoint_io import encode_checkpoint, restore_payload

if TYPE_CHECKING:
    from dlforge.config.schema import TrainConfig
    from dlforge.train.state import LoopState

TIMEOUT_ENV = "DLFORGE_DIST_TIMEOUT"
RUN_ID_FILE_ENV = "DLFORGE_RUN_ID_FILE"  # where rank 0 notes its run's id for the launcher
DEFAULT_TIMEOUT_S = 300.0
LR_FACTORS = {"none": lambda world: 1.0, "linear": float, "sqrt": math.sqrt}


class DistributedError(DlforgeError, RuntimeError):
    """A collective failed or timed out: another rank died or hangs."""


class Stopped(DistributedError):
    """A signal (torchrun's SIGTERM) stopped rank 0: its run is recorded failed, resumable."""


def launched() -> bool:
    """True in a process started by torchrun (it sets RANK, WORLD_SIZE and LOCAL_RANK)."""
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def node_rank() -> int | None:
    """This node's rank among the nodes torchrun joined ($GROUP_RANK); None outside torchrun."""
    value = os.environ.get("GROUP_RANK")
    return None if value is None else int(value)


def note_run(run_id: str) -> None:
    """Write `run_id` to $DLFORGE_RUN_ID_FILE when the launcher set it (`dlforge train --nproc`),
    so that its line for a killed rank names the run to resume; nothing without it."""
    path = os.environ.get(RUN_ID_FILE_ENV)
    if path:
        with contextlib.suppress(OSError):  # a note for a message: never a reason to fail
            with open(path, "w", encoding="utf-8") as file:
                file.write(run_id)


def timeout_s() -> float:
    """The collectives' timeout: $DLFORGE_DIST_TIMEOUT seconds, default 300."""
    return float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)


def init_process_group() -> int:
    """Join the process group torchrun set up (gloo on CPU, nccl when CUDA is present, each
    local rank on its own GPU), with `timeout_s()` on every collective. Returns the rank."""
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    with failing("joining the process group"):
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s()))
    return dist.get_rank()


def close() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # a DDP wrapper left in a reference cycle must go first (else: SIGABRT at exit)
        dist.destroy_process_group()


def world_size() -> int:
    """The number of processes; 1 without a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank; 0 without a process group."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def scaled_lr(cfg: TrainConfig, world: int) -> float:
    """`train.lr` under `train.lr_scaling` for `world` processes.

    Example:
        >>> from dlforge.config.schema import TrainConfig
        >>> scaled_lr(TrainConfig(lr=0.01, lr_scaling="linear"), 4)
        0.04
    """
    return cfg.lr * LR_FACTORS[cfg.lr_scaling](world)


def describe(cfg: TrainConfig, world: int) -> str:
    """The line printed when a data-parallel run starts: effective batch and learning rate.

    Example:
        >>> from dlforge.config.schema import TrainConfig
        >>> describe(TrainConfig(batch_size=32, lr=0.01, lr_scaling="sqrt"), 4)
        'data parallel: 4 processes x batch 32 = effective batch 128; lr 0.01 -> 0.02 (train.lr_scaling: sqrt)'
    """
    return (f"data parallel: {world} processes x batch {cfg.batch_size} = effective batch "
            f"{world * cfg.batch_size}; lr {cfg.lr:g} -> {scaled_lr(cfg, world):g} "
            f"(train.lr_scaling: {cfg.lr_scaling})")


def share_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rank 0 sends the config it trains (its dict) to every rank; the others pass nothing and
    get it. Without a process group, returns `config` as is."""
    if not (dist.is_available() and dist.is_initialized()):
        return config or {}
    box = [config]
    with failing("waiting for rank 0's config (if rank 0 stopped, its error says why)"):
        dist.broadcast_object_list(box, src=0)
    return box[0]


class Parallel:
    """The fit loop's hooks for one process: they change nothing."""

    def prepare(self, loaders: Any, cfg: TrainConfig) -> tuple[Any, TrainConfig]:
        """The loaders and train config this process trains with."""
        return loaders, cfg

    def start(self, state: LoopState) -> None:
        """Called once the state is set up (and restored, when resuming)."""

    def training(self, state: LoopState) -> contextlib.AbstractContextManager:
        """The context of an epoch's training steps."""
        return contextlib.nullcontext()

    def reduce(self, logs: dict[str, float]) -> dict[str, float]:
        """An epoch's logs (`_samples`: this process's sample count) over all processes."""
        return logs

    def agree(self, state: LoopState) -> None:
        """Make every process take the same stop decision after an epoch."""

    def decide(self, flag: bool) -> bool:
        """Every process takes rank 0's answer to a question each measures on its own (whether
        a time budget ends the run after this epoch, so it is validated)."""
        return flag


SINGLE = Parallel()


def parallel() -> Parallel:
    """`DataParallel` in a process group of more than one process, else `SINGLE`."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DataParallel(dist.get_rank(), dist.get_world_size())
    return SINGLE


class DataParallel(Parallel):
    """The hooks of one rank among `world` (module docstring)."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world
        self.ddp: torch.nn.Module | None = None

    def prepare(self, loaders: Any, cfg: TrainConfig) -> tuple[Any, TrainConfig]:
        """Shard the loaders; scale the learning rate.

        Raises:
            DataError: fewer training samples than processes.
        """
        n = loaders.train.num_samples
        if n < self.world:
            raise DataError(f"--nproc: {self.world} processes but only {n} training samples; "
                            f"use at most {n} processes")
        val = loaders.val and ShardedLoader(loaders.val, self.rank, self.world, pad=False)
        loaders = dataclasses.replace(
            loaders, train=ShardedLoader(loaders.train, self.rank, self.world, pad=True), val=val)
        return loaders, cfg.model_copy(update={"lr": scaled_lr(cfg, self.world)})

    def start(self, state: LoopState) -> None:
        send_resumed_state(self.rank, state)
        ids = [state.device.index] if state.device.type == "cuda" else None
        with failing("wrapping the model in DistributedDataParallel"):
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                state.model, device_ids=ids,
                find_unused_parameters=changes_trainable(state.model))

    @contextlib.contextmanager
    def training(self, state: LoopState) -> Iterator[None]:
        plain, state.model = state.model, self.ddp
        try:
            with failing(f"all-reducing the gradients of epoch {state.epoch + 1}"):
                yield
        finally:
            state.model = plain

    def reduce(self, logs: dict[str, float]) -> dict[str, float]:
        """Sample-weighted means of every figure; `_samples` becomes the sum over ranks."""
        samples = logs["_samples"]
        keys = [key for key in logs if not key.startswith("_")]
        weighted = [logs[key] * samples if samples else 0.0 for key in keys]
        totals = torch.tensor([*weighted, float(samples)], dtype=torch.float64)
        with failing("reducing the epoch's metrics"):
            dist.all_reduce(totals)
        count = float(totals[-1])
        out = {key: float(total) / count if count else float("nan")
               for key, total in zip(keys, totals[:-1].tolist(), strict=True)}
        return {**out, "_samples": int(count)}

    def agree(self, state: LoopState) -> None:
        agree_on_stop(state)

    def decide(self, flag: bool) -> bool:
        return rank_zero_flag(flag)


def send_resumed_state(rank: int, state: LoopState) -> None:
    """Rank 0's state (its resumed checkpoint, if it resumed) goes to every rank."""
    blob = [encode_checkpoint(state) if rank == 0 and (state.epoch >= 0 or state.position) else None]
    with failing("sending rank 0's resumed state"):
        dist.broadcast_object_list(blob, src=0)
    if blob[0] is not None and rank != 0:
        restore_payload(torch.load(io.BytesIO(blob[0]), map_location="cpu", weights_only=True),
                        state)


def agree_on_stop(state: LoopState) -> None:
    """Every rank takes rank 0's stop decision (a time budget is measured per process)."""
    box = [state.stop_reason]
    with failing("agreeing on the stop decision"):
        dist.broadcast_object_list(box, src=0)
    state.stop_reason = box[0]


def rank_zero_flag(flag: bool) -> bool:
    """Rank 0's `flag`, on every rank (`Parallel.decide`)."""
    box = [flag]
    with failing("agreeing on whether to validate the epoch"):
        dist.broadcast_object_list(box, src=0)
    return bool(box[0])


@contextlib.contextmanager
def failing(what: str) -> Iterator[None]:
    """Turn a collective's failure (a rank died, hangs past the timeout, or a peer closed the
    connection) into one `DistributedError` line naming this rank."""
    try:
        yield
    except (RuntimeError, ValueError) as exc:
        if isinstance(exc, DlforgeError) or not _is_collective_error(exc):
            raise
        raise DistributedError(f"distributed: rank {rank()} failed {what}: {_brief(exc)} "
                               f"(another rank died, or hangs past --timeout {timeout_s():g} s)"
                               ) from exc


def peer_left(exc: BaseException) -> bool:
    """True when `exc` (raised by `failing`) says the other end closed the connection: that
    process has gone, rather than hanging past the timeout."""
    text = str(exc.__cause__ or exc).lower()
    return "closed by peer" in text or "reset by peer" in text


def _brief(exc: BaseException) -> str:
    """The gist of a backend's error: its first line without the source path in brackets and
    the advice that follows it."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    first = re.sub(r"^\[[^\]]*\]\s*", "", first)
    return first.split(". This is typically")[0].rstrip(".")


def _is_collective_error(exc: BaseException) -> bool:
    backend_error = getattr(dist, "DistBackendError", ())
    text = str(exc).lower()
    return isinstance(exc, backend_error) or any(
        word in text for word in ("gloo", "nccl", "timed out", "connection", "peer", "socket",
                                  "rendezvous", "store"))


def changes_trainable(model: nn.Module) -> bool:
    """True when a module of `model` freezes parameters during training (`changes_trainable`,
    e.g. airbench's `whiten_bias_epochs`): DDP must then look for parameters without a
    gradient in each step, or its next step fails waiting for their all-reduce.

    Example:
        >>> changes_trainable(nn.Linear(2, 2))
        False
    """
    return any(getattr(module, "changes_trainable", False) for module in model.modules())
