"""Pipeline model parallelism on this machine: how long each of K=2 stages computes and how
long it waits, for 1, 2, 4 and 8 micro-batches, against the whole model in one process.

Each setting trains an MLP (784 -> 3 x 1024 -> 10, 2.9 M parameters) on synthetic data
(2,048 samples, batch 256, SGD) through the one fit loop (`fit` with `PipelineStep`), in 2
processes started by torchrun (gloo, 1 thread each). Per stage: the wall time of a training
step (median over the batches of the second epoch) and its compute: the same stage's forward
and backward over the same micro-batches, with the optimizer step, timed alone in the same
process after training (no sending, no waiting). idle share = 1 - compute / step. GPipe's
ideal bubble is (K-1) / (M+K-1); sending activations and the per-micro-batch overhead of the
schedule add to it. The whole model trains in one process at 1 and 2 threads for comparison.

    python benchmarks/pipeline_parallel.py [--out table.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scaling import publish

MICROBATCHES = (1, 2, 4, 8)
BATCH, SAMPLES, HIDDEN = 256, 2048, [1024, 1024, 1024]


def worker(out: str, microbatches: int) -> None:
    """Train one epoch to warm up and one timed; write this rank's figures to `out`-RANK."""
    import torch

    from dlforge.config.parallel_schema import ParallelConfig
    from dlforge.config.schema import TrainConfig
    from dlforge.data.dataset import TaskSpec
    from dlforge.data.loader import BatchLoader, Loaders
    from dlforge.models.mlp import MLP
    from dlforge.train import distributed
    from dlforge.train.loop import fit
    from dlforge.train.pipeline_step import PipelineStep
    from dlforge.train.steps import SupervisedStep

    if distributed.launched():
        distributed.init_process_group()
    split = distributed.world_size() > 1
    base = PipelineStep if split else SupervisedStep

    times: list[float] = []

    class Timed(base):
        def train_batch(self, state, xb, yb, meter):
            start = time.perf_counter()
            super().train_batch(state, xb, yb, meter)
            times.append(time.perf_counter() - start)

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(SAMPLES, 784, generator=g), torch.randint(0, 10, (SAMPLES,), generator=g)
    torch.manual_seed(0)
    model = MLP((784,), 10, hidden=HIDDEN)
    step = Timed(ParallelConfig(stages=2, microbatches=microbatches)) if split else Timed()
    cfg = TrainConfig(epochs=2, batch_size=BATCH, optimizer="sgd", lr=0.01, early_stopping=None,
                      precision="fp32")
    task = TaskSpec("multiclass", tuple(str(i) for i in range(10)))
    fit(model, Loaders(train=BatchLoader(x, y, batch_size=BATCH), val=None), cfg, task,
        device="cpu", progress=False, step=step)
    batches = SAMPLES // BATCH
    figures = {"step_s": statistics.median(times[batches:])}
    if split:
        figures["compute_s"] = _compute_alone(step, model, x[:BATCH], y[:BATCH], microbatches)
    Path(f"{out}-{distributed.rank()}").write_text(json.dumps(figures))
    distributed.close()


def _compute_alone(step, model, xb, yb, microbatches: int, repeats: int = 5) -> float:
    """Median time of this stage's forward + backward over the micro-batches of one batch and
    its optimizer step, without the other stage (its inputs computed beforehand)."""
    import torch
    from torch import nn

    chain = model.chain()
    start_layer, end_layer = step.bounds[step.rank]
    with torch.no_grad():
        inputs = nn.Sequential(*chain[:start_layer])(xb)
    stage, params = nn.Sequential(*chain[start_layer:end_layer]), step.parameters()
    optimizer = torch.optim.SGD(params, lr=0.01)
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        for part, target in zip(inputs.chunk(microbatches), yb.chunk(microbatches), strict=True):
            out = stage(part.requires_grad_(step.rank > 0))
            if step.last:
                nn.functional.cross_entropy(out, target).backward()
            else:
                out.backward(torch.ones_like(out))
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def measure(nproc: int, threads: int, microbatches: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out")
        launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={nproc}"] if nproc > 1 else [sys.executable])
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "DLFORGE_NUM_THREADS": str(threads),
               "PYTHONPATH": str(Path(__file__).resolve().parent)}
        subprocess.run([*launch, str(Path(__file__).resolve()), "--worker", out, str(microbatches)],
                       env=env, check=True, capture_output=True)
        return [json.loads(Path(f"{out}-{rank}").read_text()) for rank in range(nproc)]


def table(whole: dict[int, float], split: dict[int, list[dict]]) -> str:
    lines = ["| setting | micro-batches | step ms | stage 0 compute ms (idle) | stage 1 compute ms (idle) | ideal bubble | samples/s |",
             "|---|---|---|---|---|---|---|"]
    for threads, step_s in whole.items():
        lines.append(f"| whole model, 1 process x {threads} thread(s) | 1 | {step_s * 1e3:.0f} | - | - "
                     f"| - | {BATCH / step_s:,.0f} |")
    for m, ranks in split.items():
        step_s = max(r["step_s"] for r in ranks)
        stages = [f"{r['compute_s'] * 1e3:.0f} ({1 - r['compute_s'] / r['step_s']:.0%})" for r in ranks]
        lines.append(f"| 2 stages, 2 processes x 1 thread | {m} | {step_s * 1e3:.0f} | {stages[0]} | "
                     f"{stages[1]} | {1 / (m + 1):.0%} | {BATCH / step_s:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", nargs=2, metavar=("OUT", "MICROBATCHES"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    publish(lambda: table({threads: measure(1, threads, 1)[0]["step_s"] for threads in (1, 2)},
                          {m: measure(2, 1, m) for m in MICROBATCHES}), args.out)


if __name__ == "__main__":
    main()
