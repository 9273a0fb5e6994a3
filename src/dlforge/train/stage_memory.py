"""What each process of a pipeline-parallel run holds (docs/distributed.md, "What each rank
holds").

A stage's process holds only its own stage's parameters, buffers, gradients and optimizer
state; every other stage's tensors are emptied in place (`t.data = empty(0)`: the Parameter
objects, and so the optimizer's references and the state-dict keys, stay; their memory goes).
Rank 0 also gathers the whole model (weights, buffers and, when it writes checkpoints, the
optimizer state) after each epoch's training, for validation, callbacks, checkpoints and the
registered bundle, and empties the other stages again when the next epoch's training starts.

Processes other than rank 0 never build the whole model: `materialized` turns a model built on
the `meta` device into one holding only a stage's tensors (zeros), and `scatter` sends each
rank its stage's weights (and, when resuming, its optimizer state and the loop's state) from
rank 0, which built or restored the whole model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dlforge.train.checkpoint_io import checkpoint_payload, restore_payload

if TYPE_CHECKING:
    from dlforge.train.state import LoopState


def stage_keys(model: nn.Module, stages: list[list[nn.Module]]) -> list[list[str]]:
    """The state-dict keys each stage's process holds: its layers' parameters and buffers,
    and the tensors of no stage's layers (a `TargetScale`'s mean and std: every stage).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        >>> stage_keys(model, [[model[0], model[1]], [model[2]]])
        [['0.weight', '0.bias'], ['2.weight', '2.bias']]
    """
    owner = {id(t): i for i, layers in enumerate(stages) for layer in layers
             for t in (*layer.parameters(), *layer.buffers())}
    named = model.state_dict(keep_vars=True)
    return [[k for k, t in named.items() if owner.get(id(t), i) == i] for i in range(len(stages))]


def materialized(model: nn.Module, others: Iterable[nn.Module]) -> nn.Module:
    """`model` (built on the `meta` device) with the tensors of the layers `others` (the other
    stages') empty and every other tensor allocated on the CPU (zeros, until `scatter` fills
    them).

    Example:
        >>> with torch.device("meta"):
        ...     model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
        >>> model = materialized(model, [model[0]])
        >>> [tuple(p.shape) for p in model.parameters()]
        [(0,), (0,), (1, 3), (1,)]
    """
    dropped = {id(t) for layer in others for t in (*layer.parameters(), *layer.buffers())}
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                data = torch.zeros((0,) if id(p) in dropped else p.shape, dtype=p.dtype)
                module._parameters[name] = nn.Parameter(data, requires_grad=p.requires_grad)
        for name, b in list(module._buffers.items()):
            if b is not None:
                module._buffers[name] = torch.zeros((0,) if id(b) in dropped else b.shape,
                                                    dtype=b.dtype)
    return model


def empty_others(state: LoopState, keep: list[str]) -> None:
    """Empty every tensor of `state.model` outside the keys `keep`, and the optimizer state of
    those parameters (a no-op for tensors already empty)."""
    for key, t in state.model.state_dict(keep_vars=True).items():
        if key not in keep and t.numel():
            state.optimizer.state.pop(t, None)
            t.data = torch.empty(0, dtype=t.dtype, device=t.device)


def held_numel(state: LoopState) -> tuple[int, int]:
    """(parameter elements, optimizer-state elements) this process holds."""
    params = sum(p.numel() for p in state.model.parameters())
    moments = sum(v.numel() for s in state.optimizer.state.values() for v in s.values()
                  if isinstance(v, Tensor) and v.ndim)
    return params, moments


def scatter(state: LoopState, stages: list[list[str]], rank: int) -> None:
    """Rank 0's loop state (as built, or as resumed) to every rank: rank r receives stage r's
    weights tensor by tensor (no copy but the one it receives into), then its parameters'
    optimizer state and everything else a checkpoint holds but the model."""
    named = state.model.state_dict(keep_vars=True)
    for r in range(1, len(stages)):
        for key in stages[r]:
            if rank == 0:
                dist.send(named[key].detach().contiguous(), dst=r)
            elif rank == r:
                dist.recv(named[key].data, src=0)
    payloads = None
    if rank == 0:
        payload = checkpoint_payload(state, model=False)
        payloads = [_for_stage(payload, state, keys) for keys in stages]
    box: list[Any] = [None]
    dist.scatter_object_list(box, payloads, src=0)
    if rank != 0:
        restore_payload(box[0], state, strict=False)


def _for_stage(payload: dict[str, Any], state: LoopState, keys: list[str]) -> dict[str, Any]:
    """A checkpoint payload without weights cut to one stage: its parameters' optimizer
    state; no early-stopping copy of the whole model (only rank 0 restores one)."""
    index = _optimizer_index(state)
    named = state.model.state_dict(keep_vars=True)
    wanted = {index[id(named[k])] for k in keys if id(named[k]) in index}
    optimizer = {**payload["optimizer"],
                 "state": {i: s for i, s in payload["optimizer"]["state"].items() if i in wanted}}
    callbacks = {k: {**v, "best_weights": None} if "best_weights" in v else v
                 for k, v in payload["callbacks"].items()}
    return {**payload, "optimizer": optimizer, "callbacks": callbacks}


def gather(state: LoopState, stages: list[list[str]], shapes: dict[str, torch.Size], rank: int,
           optimizer: bool) -> None:
    """Every stage's weights and buffers to rank 0, tensor by tensor into tensors of their
    `shapes` (and, when `optimizer`, their optimizer state), so rank 0 holds the whole model;
    the other ranks keep holding their stage only."""
    named = state.model.state_dict(keep_vars=True)
    for r in range(1, len(stages)):
        for key in (k for k in stages[r] if k not in stages[0]):
            if rank == r:
                dist.send(named[key].detach().contiguous(), dst=0)
            elif rank == 0:
                named[key].data = torch.empty(shapes[key], dtype=named[key].dtype,
                                              device=named[key].device)
                dist.recv(named[key].data, src=r)
    if not optimizer:
        return
    mine = {k: state.optimizer.state[named[k]] for k in stages[rank]
            if named[k] in state.optimizer.state}
    boxes: list[Any] | None = [None] * len(stages) if rank == 0 else None
    dist.gather_object(mine, boxes, dst=0)
    for moments in boxes[1:] if rank == 0 else ():
        for k, s in moments.items():
            state.optimizer.state[named[k]] = s


def _optimizer_index(state: LoopState) -> dict[int, int]:
    """Parameter id -> its index in the optimizer's state dict."""
    params = (p for group in state.optimizer.param_groups for p in group["params"])
    return {id(p): i for i, p in enumerate(params)}
