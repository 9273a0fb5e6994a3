"""Data-parallel scaling on this machine: 1 vs 2 processes x threads per process.

Each setting trains digits' Basic CNN (examples/digits.yaml, no early stopping) through the
one path (`train_candidate`) at the same effective batch (64 = 1 x 64 = 2 x 32), in fresh
processes started by torchrun for 2 processes. Reported per setting: samples/s over all ranks
and seconds per epoch (medians of the epochs after the first), and the all-reduce share of
step time: the time of one all-reduce of the model's gradients (measured after training, 20
repetitions) x steps per epoch / epoch time. DDP overlaps its bucketed all-reduces with the
backward pass, so this share is an upper bound. The CPU, its features and the load average
before and after are printed under the table: compare figures only from a quiet machine.

    python benchmarks/scaling.py [--epochs 4] [--out table.md]
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [(1, 1), (1, 2), (2, 1)]  # (processes, threads per process) on a 2-core machine
EFFECTIVE_BATCH = 64


def worker(out: str, epochs: int, batch: int) -> None:
    """Train once (data-parallel under torchrun); rank 0 writes its figures to `out`."""
    import torch
    import torch.distributed as dist

    from dlforge.candidate import TrainingPlan, train_candidate
    from dlforge.config import load_config
    from dlforge.data.prepare import prepare_data
    from dlforge.runtime import setup_process
    from dlforge.train import distributed

    if distributed.launched():
        distributed.init_process_group()
    cfg = load_config(ROOT / "examples" / "digits.yaml", [
        f"train.epochs={epochs}", f"train.batch_size={batch}", "train.early_stopping=null",
        "train.num_threads=null", "train.schedule.warmup_steps=0"])
    device = setup_process(None, "cpu")  # threads: $DLFORGE_NUM_THREADS
    data = prepare_data(cfg)
    candidate = train_candidate(TrainingPlan(cfg, data), device=device)
    rows = candidate.history[1:] or candidate.history
    steps = -(-len(data.splits.train) // (batch * distributed.world_size()))
    allreduce_s = 0.0
    if distributed.world_size() > 1:
        grads = torch.zeros(sum(p.numel() for p in candidate.model.parameters()))
        start = time.perf_counter()
        for _ in range(20):
            dist.all_reduce(grads)
        allreduce_s = (time.perf_counter() - start) / 20
    if distributed.rank() == 0:
        epoch_s = statistics.median(r["epoch_time_s"] for r in rows)
        Path(out).write_text(json.dumps({
            "samples_per_s": statistics.median(r["samples_per_s"] for r in rows),
            "epoch_s": epoch_s, "allreduce_share": allreduce_s * steps / epoch_s,
            "val_accuracy": candidate.history[-1]["val_accuracy"], "threads": torch.get_num_threads()}))
    distributed.close()


def measure(nproc: int, threads: int, epochs: int) -> dict:
    batch = EFFECTIVE_BATCH // nproc
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        script = [str(Path(__file__).resolve()), "--worker", str(out), str(epochs), str(batch)]
        launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={nproc}"] if nproc > 1 else [sys.executable])
        env = {**os.environ, "DLFORGE_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        subprocess.run([*launch, *script], env=env, check=True, capture_output=True)
        return {"nproc": nproc, "threads": threads, "batch": batch, **json.loads(out.read_text())}


def machine() -> str:
    """The CPU, its cores and features that matter to these figures, and the load average the
    figures were measured under (another process's work makes them slower)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                  if line.startswith("flags")), [])
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {model}, {os.cpu_count()} logical CPUs, features {' '.join(wanted) or 'none'}; "
            f"load average (1/5/15 min) {load}")


def table(rows: list[dict]) -> str:
    lines = ["| processes | threads/process | batch/process | samples/s | s/epoch | all-reduce share | val accuracy |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['nproc']} | {r['threads']} | {r['batch']} | {r['samples_per_s']:,.0f} | "
              f"{r['epoch_s']:.2f} | {r['allreduce_share']:.0%} | {r['val_accuracy']:.3f} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", nargs=3, metavar=("OUT", "EPOCHS", "BATCH"))
    args = parser.parse_args()
    if args.worker:
        out, epochs, batch = args.worker
        worker(out, int(epochs), int(batch))
        return
    publish(lambda: table([measure(nproc, threads, args.epochs) for nproc, threads in SETTINGS]),
            args.out)


def publish(measured: Callable[[], str], out: Path | None) -> None:
    """Print the table `measured()` returns with the machine and its load before and after
    measuring; also write it to `out` when given."""
    before = machine()
    text = f"{measured()}\n\nbefore: {before}\nafter: {machine()}"
    print(text)
    if out:
        out.write_text(text + "\n")


if __name__ == "__main__":
    main()
