"""Config section `model.parallel`: pipeline model parallelism (docs/distributed.md).

A sequential model's layers are split into `stages` consecutive groups, one per process
(`dlforge train CONFIG --nproc STAGES`); each batch is cut into `microbatches` that flow
through the stages one after another (train/pipeline_step.py).
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from dlforge.config.base import Section

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig

SPLITTABLE = ("mlp", "basic_cnn")  # models whose forward is one chain of layers
SCHEDULES = ("gpipe", "1f1b")
# The first torch release whose pipeline schedules divide micro-batch gradients by their count
# (`scale_grads`); earlier ones sum them, i.e. train at microbatches x the learning rate.
PIPELINE_TORCH = (2, 7)


class ParallelConfig(Section):
    stages: int = Field(ge=2, description="Processes the model's layers are split across (one "
                        "stage each, cut before a dense or convolution layer); launch with "
                        "--nproc equal to it.")
    microbatches: int = Field(1, ge=1, description="Micro-batches each batch is cut into (must "
                              "divide train.batch_size); more of them keep the stages busier.")
    schedule: Literal["gpipe", "1f1b"] = Field(
        "gpipe", description="gpipe (all forwards, then all backwards) or 1f1b (one forward, one "
        "backward: fewer activations held; needs microbatches >= stages).")


def weighted_layers(model: object) -> int:
    """How many dense and convolution layers a splittable model section builds (a stage cut
    goes before one of them); 0 for a model type that cannot be split.

    Example:
        >>> from dlforge.config.model_schema import BasicCNNConfig, MLPConfig
        >>> weighted_layers(MLPConfig(hidden=[64, 32])), weighted_layers(BasicCNNConfig(filters=[8]))
        (3, 4)
    """
    kind = getattr(model, "type", None)
    if kind == "mlp":
        return len(model.hidden) + 1  # the hidden layers and the head
    if kind == "basic_cnn":
        return 2 * len(model.filters) + 2  # two convolutions per block, the dense layer, the head
    return 0


def parallel_problems(cfg: RunConfig) -> list[str]:
    """The rules of `model.parallel`, one line each (empty without it or when it runs)."""
    par = getattr(cfg.model, "parallel", None)
    if par is None:
        return []
    layers, batch = weighted_layers(cfg.model), cfg.train.batch_size
    if not layers:
        return [f"model.parallel: splits a chain of layers ({', '.join(SPLITTABLE)}); model.type "
                f"{cfg.model.type!r} is not one. Remove model.parallel or change model.type"]
    problems = []
    installed = torch_release()
    if installed < PIPELINE_TORCH:
        problems.append(f"model.parallel: needs torch >= {'.'.join(map(str, PIPELINE_TORCH))} "
                        f"(its pipeline schedules average micro-batch gradients); torch "
                        f"{'.'.join(map(str, installed))} is installed. Upgrade torch or remove "
                        f"model.parallel")
    if par.stages > layers:
        problems.append(f"model.parallel.stages: {par.stages} stages but model {cfg.model.type} "
                        f"has {layers} dense/convolution layers to cut before; use at most {layers}")
    if batch % par.microbatches:
        divisors = [d for d in range(1, batch + 1) if batch % d == 0 and d <= 64]
        problems.append(f"model.parallel.microbatches: {par.microbatches} does not divide "
                        f"train.batch_size {batch}; use one of {divisors}")
    if par.schedule == "1f1b" and par.microbatches < par.stages:
        problems.append(f"model.parallel.schedule: 1f1b needs microbatches >= stages (got "
                        f"{par.microbatches} < {par.stages}); raise microbatches or use gpipe")
    if cfg.train.precision not in ("auto", "fp32"):
        problems.append(f"train.precision: model.parallel stages train in fp32; use fp32 or auto "
                        f"(got {cfg.train.precision!r})")
    if cfg.train.grad_clip is not None:
        problems.append(f"train.grad_clip: model.parallel clips no global norm across stages; "
                        f"remove it (got {cfg.train.grad_clip})")
    for key, value in (("tune", cfg.tune), ("transfer.source", cfg.transfer.source),
                       ("update.source", cfg.update.source), ("train.ema", cfg.train.ema)):
        if value is not None:
            problems.append(f"{key}: not supported with model.parallel (a pipeline run trains "
                            f"one model across processes); remove one of them")
    return problems


def torch_release() -> tuple[int, int]:
    """The installed torch's (major, minor), read from its metadata (torch is not imported).

    Example:
        >>> torch_release() >= (2, 4)
        True
    """
    major, minor = metadata.version("torch").split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
