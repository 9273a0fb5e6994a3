"""Checkpoint files: everything needed to resume a run, as plain tensors and dicts.

Written atomically (a crash never leaves half a file) and read with
`torch.load(weights_only=True)`, which never unpickles arbitrary objects.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dlforge.atomic import atomic_path, remove_leftovers
from dlforge.errors import ConfigError, DataError, NotFoundError, first_line
from dlforge.faults import fault_point

if TYPE_CHECKING:
    from dlforge.train.state import LoopState

FORMAT = "dlforge-checkpoint"
VERSION = 1


def encode_checkpoint(state: LoopState, position: dict[str, Any] | None = None) -> bytes:
    """Serialize the loop state after `state.epoch` (the last completed epoch) and, inside
    the next epoch, its `position` (train/mid_epoch.py; default a restored one not yet used)."""
    buffer = io.BytesIO()
    torch.save(checkpoint_payload(state, position=position), buffer)
    return buffer.getvalue()


def checkpoint_payload(state: LoopState, *, model: bool = True,
                       position: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a checkpoint holds, as references to the live tensors (nothing copied); without
    the model's weights when `model` is False (a pipeline stage gets them tensor by tensor)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "epoch": state.epoch,
        "seed": state.seed,
        "model": state.model.state_dict() if model else {},
        "optimizer": state.optimizer.state_dict(),
        "schedule": state.schedule.state_dict(),
        "step": state.step.state_dict() if state.step is not None else {},
        "ema": state.ema.state_dict() if state.ema is not None else {},
        "callbacks": {cb.state_key: cb.state_dict() for cb in state.callbacks},
        "history": state.history,
        "lr_history": state.lr_history,
        "stop_reason": state.stop_reason,
        "rng": {"torch": torch.get_rng_state()},
        "config": state.cfg.model_dump(mode="json"),
        "position": position if position is not None else state.position,
    }


def write_bytes(path: Path, blob: bytes) -> Path:
    """Write `blob` to `path` atomically (temp file in the same directory, fsync, rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
        fault_point("checkpoint-write")
    return path


def remove_partial_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that a killed process left in
    `checkpoint_dir` (`last.pt` and the kept epochs are whole: they are written by rename)."""
    return remove_leftovers(checkpoint_dir) if Path(checkpoint_dir).is_dir() else []


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `ModelCheckpoint`, on the CPU.

    Raises:
        NotFoundError: the file does not exist.
        DataError: the file is not a dlforge checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"resume_from: checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        raise DataError(f"resume_from: {str(path)!r} is not a readable checkpoint "
                        f"({first_line(exc).split('. ')[0]}); the file is damaged: put back a "
                        f"copy, or remove it, and a resumed run trains from the start") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"resume_from: {str(path)!r} is not a dlforge checkpoint")
    return payload


def restore_checkpoint(path: str | Path, state: LoopState) -> None:
    """Put model, optimizer, schedule, callbacks, history and epoch back as saved at `path`.

    Raises:
        ConfigError: the checkpoint's weights do not fit the model.
    """
    restore_payload(load_checkpoint(path), state)


def restore_payload(payload: dict[str, Any], state: LoopState, *, strict: bool = True) -> None:
    """`restore_checkpoint` of a checkpoint already read (data parallelism sends rank 0's;
    a pipeline stage gets one with its own stage's weights only, `strict=False`).

    Raises:
        ConfigError: the checkpoint's weights do not fit the model.
    """
    try:
        state.model.load_state_dict(payload["model"], strict=strict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"resume_from: the checkpoint does not fit the model ({first})") from exc
    state.optimizer.load_state_dict(payload["optimizer"])
    state.schedule.load_state_dict(payload["schedule"])
    if state.step is not None:
        state.step.load_state_dict(payload.get("step", {}))  # older checkpoints have none
    if state.ema is not None and payload.get("ema"):
        state.ema.load_state_dict(payload["ema"])
    saved = payload["callbacks"]
    for cb in state.callbacks:
        if cb.state_key in saved:
            cb.load_state_dict(saved[cb.state_key])
    state.epoch = int(payload["epoch"])
    state.history = list(payload["history"])
    state.lr_history = list(payload["lr_history"])
    state.stop_reason = payload["stop_reason"]
    torch.set_rng_state(payload["rng"]["torch"])
    state.position = payload.get("position")  # None at epoch ends and in older checkpoints
