"""Pipeline model parallelism's memory: the peak resident memory (ru_maxrss) of each process
training a large MLP whole in one process, and split into 2 stages (torchrun, gloo, CPU).

The MLP (1024 -> 4 x 2048 -> 10, 14.7 M parameters, 59 MB in float32) trains 2 epochs of
Adam (weights, gradients and two moments: about 4 x 59 MB whole) on 512 synthetic samples in
batches of 64 through the one fit loop. Split, rank 1 builds the model on the `meta` device
and holds only its stage; rank 0 builds the whole model and gathers it after each epoch
(weights only: no checkpoints here). `base` is a process's RSS after importing torch,
torch.distributed.pipelining (71 MB of modules a split run loads) and dlforge, before
building the model; the last column is the RSS when training ended.

    python benchmarks/pipeline_memory.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HIDDEN, INPUT, SAMPLES, BATCH = [2048] * 4, 1024, 512, 64


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _now_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(out: str) -> None:
    """Train; write this rank's base and peak RSS (MB) and held parameters to `out`-RANK."""
    import torch
    import torch.distributed.pipelining  # noqa: F401  (71 MB of modules: in the base, every run)

    from dlforge.config.parallel_schema import ParallelConfig
    from dlforge.config.schema import TrainConfig
    from dlforge.data.dataset import TaskSpec
    from dlforge.data.loader import BatchLoader, Loaders
    from dlforge.models.mlp import MLP
    from dlforge.train import distributed
    from dlforge.train.loop import fit
    from dlforge.train.pipeline_step import PipelineStep
    from dlforge.train.steps import SupervisedStep

    base = _rss_mb()
    if distributed.launched():
        distributed.init_process_group()
    split = distributed.world_size() > 1
    step = PipelineStep(ParallelConfig(stages=2, microbatches=4)) if split else SupervisedStep()
    torch.manual_seed(0)
    model = step.built(lambda: MLP((INPUT,), 10, hidden=HIDDEN))
    x = torch.randn(SAMPLES, INPUT)
    y = torch.randint(0, 10, (SAMPLES,))
    loaders = Loaders(BatchLoader(x, y, batch_size=BATCH), None)
    cfg = TrainConfig(epochs=2, batch_size=BATCH, optimizer="adam", lr=1e-3,
                      early_stopping=None)
    result = fit(model, loaders, cfg, TaskSpec("multiclass", tuple("0123456789")),
                 device="cpu", progress=False, step=step)
    held = sum(p.numel() for p in (step.parameters() if split else result.model.parameters()))
    Path(f"{out}-{distributed.rank()}").write_text(json.dumps(
        {"base": base, "peak": _rss_mb(), "end": _now_mb(), "stage_params": held}))
    distributed.close()


def main() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (1, 2):
            out = str(Path(tmp, f"n{nproc}"))
            launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc-per-node=2"] if nproc == 2 else [sys.executable])
            subprocess.run([*launch, __file__, "--worker", out], env=env, check=True)
            for rank in range(nproc):
                got = json.loads(Path(f"{out}-{rank}").read_text())
                rows.append((nproc, rank, got))
    print("| processes | rank | parameters held | base RSS MB | peak RSS MB | peak - base MB "
          "| RSS after training MB |")
    print("|---|---|---|---|---|---|---|")
    for nproc, rank, got in rows:
        print(f"| {nproc} | {rank} | {got['stage_params']:,} | {got['base']:.0f} | "
              f"{got['peak']:.0f} | {got['peak'] - got['base']:.0f} | {got['end']:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        main()
