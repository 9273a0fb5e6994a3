"""Pipeline model parallelism for the one fit loop (`model.parallel`, docs/distributed.md).

A sequential model's chain of layers (`model.chain()`) is cut into `stages` consecutive
stages, one per process started by torchrun (`dlforge train CONFIG --nproc STAGES`), at the
cut points that make the stages' parameter counts most even. `PipelineStep` is the step
strategy: each batch is split into micro-batches that torch.distributed.pipelining's schedule
(`ScheduleGPipe` or `Schedule1F1B`, point-to-point send/recv over gloo on CPU) passes through
the stages, forward and backward; then each process steps the optimizer on its own stage's
parameters (the others have no gradient there). Only the last stage computes the loss and
metric; `PipelineHooks.reduce` sends its figures to every rank, so rank 0 writes them.

Each process holds only its own stage's parameters, gradients and optimizer state
(train/stage_memory.py): the other ranks build the model on the `meta` device and receive their
stage's weights from rank 0; validation, callbacks, checkpoints and the registered bundle run on
rank 0, which gathers the whole model (and, when it writes checkpoints, every stage's
optimizer state) after each epoch's training, so a checkpoint of a split run loads and resumes
unsplit, and a checkpoint of any run resumes split.

Micro-batches are equal: `model.parallel.microbatches` divides `train.batch_size` (a config
rule), and an epoch's last, shorter batch of n samples is cut into the largest divisor of n up
to `microbatches` (gpipe when that is fewer than the stages under 1f1b), so the loss of a batch
is the mean of its micro-batches' losses, exactly as one process computes it.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dlforge.errors import ConfigError
from dlforge.train import distributed, stage_memory
from dlforge.train.callbacks import ModelCheckpoint
from dlforge.train.epoch_metrics import EpochMetrics
from dlforge.train.losses import l2_penalty
from dlforge.train.precision import FP32
from dlforge.train.steps import SupervisedStep

if TYPE_CHECKING:
    from dlforge.config.parallel_schema import ParallelConfig
    from dlforge.config.schema import TrainConfig
    from dlforge.train.state import LoopState

CUT_BEFORE = (nn.Linear, nn.Conv1d, nn.Conv2d)  # a stage starts with one of these


def chain_of(model: nn.Module) -> list[nn.Module]:
    """The model's layers in the order `forward` applies them.

    Raises:
        ConfigError: the model is not a chain of layers (no `chain()`).
    """
    chain = getattr(model, "chain", None)
    if chain is None:
        raise ConfigError(f"model.parallel: {type(model).__name__} is not a chain of layers; "
                          f"use model.type mlp or basic_cnn, or remove model.parallel")
    return chain()


def split_chain(layers: list[nn.Module], stages: int) -> list[tuple[int, int]]:
    """`[start, end)` of each stage in `layers`: cuts only before a dense or convolution
    layer, at the points that minimize the largest stage's parameter count (the first stage
    also takes the layers before the first cut point: flatten, pooling).

    Raises:
        ConfigError: fewer cut points than stages.

    Example:
        >>> layers = [nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 2)]
        >>> split_chain(layers, 2)
        [(0, 3), (3, 5)]
    """
    starts = [i for i, layer in enumerate(layers) if isinstance(layer, CUT_BEFORE)]
    if len(starts) < stages:
        raise ConfigError(f"model.parallel.stages: {stages} stages but the model has "
                          f"{len(starts)} dense/convolution layers to cut before; use at most "
                          f"{len(starts)}")
    bounds = [0, *starts[1:], len(layers)]  # unit i: layers[bounds[i]:bounds[i + 1]]
    sizes = [sum(p.numel() for layer in layers[a:b] for p in layer.parameters())
             for a, b in itertools.pairwise(bounds)]

    def largest(cuts: tuple[int, ...]) -> int:
        edges = [0, *cuts, len(sizes)]
        return max(sum(sizes[a:b]) for a, b in itertools.pairwise(edges))

    best = min(itertools.combinations(range(1, len(sizes)), stages - 1), key=largest)
    edges = [0, *best, len(sizes)]
    return [(bounds[a], bounds[b]) for a, b in itertools.pairwise(edges)]


def microbatches_for(n: int, wanted: int) -> int:
    """Micro-batches for a batch of `n` samples: the largest divisor of `n` up to `wanted`.

    Example:
        >>> microbatches_for(32, 4), microbatches_for(10, 4), microbatches_for(7, 4)
        (4, 2, 1)
    """
    return max(d for d in range(1, min(n, wanted) + 1) if n % d == 0)


def describe(par: ParallelConfig, train: TrainConfig) -> str:
    """The line printed when a pipeline-parallel run starts.

    Example:
        >>> from dlforge.config.parallel_schema import ParallelConfig
        >>> from dlforge.config.schema import TrainConfig
        >>> describe(ParallelConfig(stages=2, microbatches=4), TrainConfig(batch_size=32))
        'pipeline parallel: 2 stages (one per process), batch 32 in 4 micro-batches of 8 (gpipe)'
    """
    return (f"pipeline parallel: {par.stages} stages (one per process), batch {train.batch_size} "
            f"in {par.microbatches} micro-batches of {train.batch_size // par.microbatches} "
            f"({par.schedule})")


class PipelineStep(SupervisedStep):
    """The supervised step with the batch's forward and backward run by a pipeline schedule
    (module docstring). `hooks()` gives the fit loop its `PipelineHooks`."""

    def __init__(self, cfg: ParallelConfig) -> None:
        self.cfg = cfg
        self.rank = 0
        self.bounds: list[tuple[int, int]] = []
        self.stage_layers: list[list[nn.Module]] = []
        self.keys: list[list[str]] = []  # each stage's state-dict keys
        self.shapes: dict[str, torch.Size] = {}
        self._schedules: dict[int, Any] = {}

    def hooks(self) -> PipelineHooks:
        return PipelineHooks(self)

    def built(self, build: Callable[[], nn.Module]) -> nn.Module:
        """Rank 0 (or one process) builds the whole model; another rank builds it on the
        `meta` device and allocates only its own stage's tensors (`PipelineHooks.start` fills
        them from rank 0)."""
        rank = distributed.rank()
        if rank == 0:
            return build()
        with torch.device("meta"):
            model = build()
        layers = chain_of(model)
        self.bounds = split_chain(layers, self.cfg.stages)  # from the shapes, before emptying
        others = [layer for i, (a, b) in enumerate(self.bounds) if i != rank
                  for layer in layers[a:b]]
        return stage_memory.materialized(model, others)

    @property
    def last(self) -> bool:
        """This process runs the last stage (computes the loss)."""
        return self.rank == self.cfg.stages - 1

    def bind(self, state: LoopState) -> None:
        """Cut the model into stages (no communication: the preflight runs this on rank 0
        alone); `train.precision: auto` means fp32 here."""
        state.precision = FP32
        if state.channels_last:  # activations cross processes in the default layout
            state.model.to(memory_format=torch.contiguous_format)
            state.channels_last = False
        layers = chain_of(state.model)
        self.bounds = self.bounds or split_chain(layers, self.cfg.stages)
        self.stage_layers = [layers[a:b] for a, b in self.bounds]
        self.keys = stage_memory.stage_keys(state.model, self.stage_layers)
        self.shapes = {k: t.shape for k, t in state.model.state_dict().items()}  # rank 0: all
        self.rank, self._schedules = distributed.rank(), {}

    def train_batch(self, state: LoopState, xb: Tensor, yb: Tensor, meter: EpochMetrics) -> None:
        state.optimizer.zero_grad(set_to_none=True)
        schedule = self._schedule(state, len(xb))
        if self.rank == 0:
            schedule.step(xb)
        elif self.last:
            losses: list[Tensor] = []
            outputs = schedule.step(target=yb, losses=losses)
            meter.update(torch.stack(losses).mean(), outputs, yb)
        else:
            schedule.step()
        mine = self.parameters()
        if state.cfg.l2:  # this stage's share of the penalty's gradient
            ids = {id(p) for p in state.penalized}
            (state.cfg.l2 * l2_penalty([p for p in mine if id(p) in ids])).backward()
        state.optimizer.step()

    def eval_batch(self, state: LoopState, xb: Tensor, yb: Tensor, meter: EpochMetrics) -> None:
        """Rank 0 validates the whole model it gathered; the other ranks wait."""
        if self.rank == 0:
            super().eval_batch(state, xb, yb, meter)

    def parameters(self, stage: int | None = None) -> list[Tensor]:
        """The parameters of `stage` (default this process's)."""
        layers = self.stage_layers[self.rank if stage is None else stage]
        return [p for layer in layers for p in layer.parameters()]

    def _schedule(self, state: LoopState, n: int) -> Any:
        """The schedule for batches of `n` samples (its stage's buffers fit one micro-batch
        size), built on first use: every rank sees the same batch sizes in the same order."""
        if n not in self._schedules:
            from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

            m = microbatches_for(n, self.cfg.microbatches)
            one_f_one_b = self.cfg.schedule == "1f1b" and m >= self.cfg.stages
            stage = PipelineStage(nn.Sequential(*self.stage_layers[self.rank]), self.rank,
                                  self.cfg.stages, state.device)
            self._schedules[n] = (Schedule1F1B if one_f_one_b else ScheduleGPipe)(
                stage, m, loss_fn=lambda out, target: state.loss_fn(out.float(), target))
        return self._schedules[n]


class PipelineHooks(distributed.Parallel):
    """The fit loop's hooks in one stage's process (train/distributed.py has the others)."""

    def __init__(self, step: PipelineStep) -> None:
        self.step = step
        self.gather_optimizer = True

    def prepare(self, loaders: Any, cfg: TrainConfig) -> tuple[Any, TrainConfig]:
        """Every stage reads the whole batch in the same order (no sharding, no LR scaling).

        Raises:
            ConfigError: the process count is not `model.parallel.stages`.
        """
        world, stages = distributed.world_size(), self.step.cfg.stages
        if world != stages:
            raise ConfigError(f"model.parallel.stages: {stages} stages need {stages} processes "
                              f"(got {world}); run with --nproc {stages}")
        return loaders, cfg

    def start(self, state: LoopState) -> None:
        """Rank 0's state (built or resumed) to every stage, each its share; then every
        process empties the other stages' tensors."""
        step, rank = self.step, self.step.rank
        box = [any(isinstance(cb, ModelCheckpoint) for cb in state.callbacks)]
        with distributed.failing("sending each stage its weights from rank 0"):
            dist.broadcast_object_list(box, src=0)
            stage_memory.scatter(state, step.keys, rank)
        self.gather_optimizer = bool(box[0])  # only checkpoints need every stage's moments
        stage_memory.empty_others(state, step.keys[rank])

    @contextlib.contextmanager
    def training(self, state: LoopState) -> Iterator[None]:
        """The epoch's training on this stage alone, then the whole model to rank 0."""
        stage_memory.empty_others(state, self.step.keys[self.step.rank])
        with distributed.failing(f"passing activations of epoch {state.epoch + 1} between stages"):
            yield
        with distributed.failing("gathering the stages' weights on rank 0"):
            stage_memory.gather(state, self.step.keys, self.step.shapes, self.step.rank,
                                self.gather_optimizer)

    def reduce(self, logs: dict[str, float]) -> dict[str, float]:
        """The last stage's training figures (it alone computes the loss); rank 0's validation
        figures (it alone validates, on the gathered model)."""
        src = 0 if any(key.startswith("val_") for key in logs) else self.step.cfg.stages - 1
        box = [logs]
        with distributed.failing("receiving the epoch's figures"):
            dist.broadcast_object_list(box, src=src)
        return box[0]

    def agree(self, state: LoopState) -> None:
        distributed.agree_on_stop(state)

    def decide(self, flag: bool) -> bool:
        return distributed.rank_zero_flag(flag)
