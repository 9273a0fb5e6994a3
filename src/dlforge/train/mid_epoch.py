"""Checkpoints inside an epoch (`train.checkpoint.every_steps`), and resuming from them.

Every `every_steps` optimizer steps, `last.pt` is rewritten with the loop state of an epoch
end plus a `position`: the epoch in progress, the training loader's `state_dict()` (batches
delivered, augmentation stream), torch's global RNG state (dropout) and the epoch's meter so
far. A run resumed from it (`fit(resume_from=...)`, `dlforge run --resume`) trains exactly the
batches the interrupted epoch had left and ends with the uninterrupted run's weights.

With the option off the loop iterates the loader itself: no per-step work is added.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from dlforge.train.callbacks import ModelCheckpoint
from dlforge.train.checkpoint_io import encode_checkpoint, write_bytes

if TYPE_CHECKING:
    from dlforge.train.state import LoopState
    from dlforge.train.steps import Meter

_PLAIN = (int, float, bool, str, type(None), torch.Tensor)


def epoch_batches(state: LoopState, loader: Any, meter: Meter) -> Any:
    """What `train_one_epoch` iterates: `loader` itself, or, with `every_steps` and a
    checkpoint folder, the same batches with a mid-epoch checkpoint after every N-th step.
    A position restored from a checkpoint (`state.position`) is applied first.

    Example:
        >>> batches = epoch_batches(state, loaders.train, meter)  # doctest: +SKIP
    """
    position, state.position = state.position, None
    if position is not None:
        loader.load_state_dict(position["loader"])
        torch.set_rng_state(position["rng"])
        load_meter_state(meter, position["meter"])
    every = state.cfg.checkpoint.every_steps
    writer = next((cb for cb in state.callbacks if isinstance(cb, ModelCheckpoint)), None)
    if every is None or writer is None or not writer.save_last:
        return loader
    return _checkpointing(state, loader, meter, every, writer)


def _checkpointing(state: LoopState, loader: Any, meter: Meter, every: int,
                   writer: ModelCheckpoint) -> Iterator[Any]:
    """`loader`'s batches; after the loop's step on a batch (control comes back here), write
    `last.pt` when the run's step count is a multiple of `every`, unless the epoch is over."""
    total = len(loader)
    for batch in loader:
        yield batch
        if len(state.lr_history) % every:
            continue
        delivered = loader.state_dict()
        if delivered["batch"] < total:  # at the epoch's end the epoch-end checkpoint follows
            position = {"epoch": delivered["epoch"], "loader": delivered,
                        "rng": torch.get_rng_state(), "meter": meter_state(meter)}
            write_bytes(writer.dir / "last.pt", encode_checkpoint(state, position))


def meter_state(meter: Meter) -> dict[str, Any]:
    """A meter's running figures: its numbers, tensors, lists of tensors and generators'
    states (callables such as a quality score are the step's, rebuilt with it).

    Example:
        >>> from dlforge.train.steps import ReconstructionMeter
        >>> meter = ReconstructionMeter(); meter.samples = 3
        >>> meter_state(meter)
        {'samples': 3, 'sums': None}
    """
    state: dict[str, Any] = {}
    for name, value in vars(meter).items():
        if isinstance(value, torch.Generator):
            state[name] = {"generator": value.get_state()}
        elif isinstance(value, _PLAIN) or (
                isinstance(value, list) and all(isinstance(v, torch.Tensor) for v in value)):
            state[name] = value
    return state


def load_meter_state(meter: Meter, state: dict[str, Any]) -> None:
    """Put back what `meter_state` recorded."""
    for name, value in state.items():
        if isinstance(value, dict) and "generator" in value:
            getattr(meter, name).set_state(value["generator"])
        else:
            setattr(meter, name, value)
