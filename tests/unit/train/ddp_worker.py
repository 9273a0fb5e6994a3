"""Trains the tiny multiclass model with the one fit loop, in one process or in each process
torchrun starts (then data-parallel); rank 0 writes what the tests compare. Not a test module.

    python ddp_worker.py OUT.json BATCH SEEDS [CHECKPOINT_DIR [RESUME_FROM]]

With $SKEWED_BUDGET set, `train.val_every` is 2 and rank 1 alone has a used-up time budget:
every rank must follow rank 0 (validate epochs 1 and 3, no stop), or the collectives hang.
"""

from __future__ import annotations

import json
import os
import sys

import torch
from test_loop_support import TASKS, make_data, make_loaders, tiny_model, train_cfg

from dlforge.train import distributed
from dlforge.train.loop import fit

EPOCHS = 4


def train(seed: int, batch: int, checkpoint_dir: str | None = None,
          resume_from: str | None = None) -> dict:
    """200 training samples, 101 validation samples (not divisible by 2 ranks)."""
    x, y = make_data("multiclass", n=200, seed=seed)
    val = make_data("multiclass", n=101, seed=seed + 100)
    cfg = train_cfg(epochs=EPOCHS, batch_size=batch, lr=0.05, schedule={"type": "cosine"},
                    **_skewed_budget())
    result = fit(tiny_model("multiclass", seed=seed), make_loaders(x, y, batch_size=batch, seed=seed, val=val),
                 cfg, TASKS["multiclass"], seed=seed, device="cpu", progress=False,
                 checkpoint_dir=checkpoint_dir, resume_from=resume_from)
    weights = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    return {"val_accuracy": [row.get("val_accuracy") for row in result.history],
            "val_loss": [row.get("val_loss") for row in result.history],
            "lr_steps": len(result.lr_history), "weights": weights.tolist()}


def _skewed_budget() -> dict:
    if not os.environ.get("SKEWED_BUDGET"):
        return {}
    return {"val_every": 2, "time_budget_s": 1e-9 if distributed.rank() == 1 else 1e9}


def main(argv: list[str]) -> None:
    out, batch, seeds, *rest = argv
    torch.set_num_threads(1)
    if distributed.launched():
        distributed.init_process_group()
    # As the pipeline does: only rank 0 writes checkpoints and reads the one it resumes from.
    rest = rest if distributed.rank() == 0 else []
    runs = {seed: train(int(seed), int(batch), *rest) for seed in seeds.split(",")}
    if distributed.rank() == 0:
        with open(out, "w") as fh:
            json.dump(runs, fh)
    distributed.close()


if __name__ == "__main__":
    main(sys.argv[1:])
