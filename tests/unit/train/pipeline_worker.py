"""Trains tiny MLPs with the one fit loop, whole in one process or split into 2 pipeline
stages in the 2 processes torchrun starts; every rank writes what the tests compare. Not a
test module.

    python pipeline_worker.py OUT_DIR          (whole: the supervised step)
    torchrun --nproc-per-node 2 pipeline_worker.py OUT_DIR   (split: the pipeline step)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from test_loop_support import TASKS, make_data, make_loaders, train_cfg

from dlforge.config.parallel_schema import ParallelConfig
from dlforge.models.mlp import MLP
from dlforge.models.target_scale import TargetScale, fit_target_scale
from dlforge.train import distributed
from dlforge.train.loop import fit
from dlforge.train.pipeline_step import PipelineStep
from dlforge.train.stage_memory import held_numel
from dlforge.train.steps import SupervisedStep

# name: (task, schedule, microbatches, train overrides, samples). One batch of 24 under plain
# SGD at lr 1 (the weights move by minus the gradient), or three epochs of Adam over 50
# samples in batches of 16 (the last batch of 2 splits into 2 micro-batches).
SETTINGS = {
    "gpipe1": ("multiclass", "gpipe", 1, {}, 24),
    "gpipe4_l2": ("multiclass", "gpipe", 4, {"l2": 0.01}, 24),
    "1f1b4": ("multiclass", "1f1b", 4, {}, 24),
    "regression2": ("regression", "gpipe", 2, {}, 24),
    "adam_epochs": ("multiclass", "gpipe", 4, {"optimizer": "adam", "lr": 0.01, "epochs": 3,
                                                "batch_size": 16}, 50),
}
SGD_ONE_STEP = {"optimizer": "sgd", "momentum": 0.0, "lr": 1.0, "epochs": 1, "batch_size": 24}


def recording(base: type) -> type:
    """`base` step that keeps every meter it made (training, then validation, each epoch) and
    what the process held after each training step (parameter and optimizer-state elements)."""
    class Recording(base):
        def meter(self, state):
            self.kept = [*getattr(self, "kept", []), super().meter(state)]
            return self.kept[-1]

        def train_batch(self, state, xb, yb, meter):
            super().train_batch(state, xb, yb, meter)
            self.held = [*getattr(self, "held", []), list(held_numel(state))]
    return Recording


def model_for(task: str) -> torch.nn.Module:
    torch.manual_seed(0)
    mlp = MLP((8,), 3 if task == "multiclass" else 1, hidden=[16, 12])
    return TargetScale(mlp, 1) if task == "regression" else mlp


def train(name: str, checkpoint_dir: str | None = None, resume_from: str | None = None) -> dict:
    """Train setting `name` (split under torchrun); rank 0 checkpoints every epoch into
    `checkpoint_dir`, if given."""
    task, schedule, microbatches, overrides, n = SETTINGS[name]
    x, y = make_data(task, n=n, seed=1)
    model = fit_target_scale(model_for(task), y)
    before = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
    split = distributed.world_size() > 1
    step = (recording(PipelineStep)(ParallelConfig(stages=2, microbatches=microbatches,
                                                   schedule=schedule))
            if split else recording(SupervisedStep)())
    cfg = train_cfg(**{**SGD_ONE_STEP, **overrides},
                    checkpoint={"save_best_only": False, "top_k": 3})
    result = fit(model, make_loaders(x, y, batch_size=cfg.batch_size, val=make_data(task, n=20, seed=2)),
                 cfg, TASKS[task], device="cpu", progress=False, step=step,
                 checkpoint_dir=checkpoint_dir if distributed.rank() == 0 else None,
                 resume_from=resume_from)
    after = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    kept = step.kept[-2]  # the last epoch's training meter
    mine = step.parameters() if split else list(result.model.parameters())
    return {"loss": [row["loss"] for row in result.history],
            "val_loss": [row["val_loss"] for row in result.history],
            "outputs": torch.cat(kept.outputs).tolist() if kept.outputs else None,
            "moved": (before - after).tolist() if len(after) == len(before) else None,
            "weights": after.tolist(),
            "stage": torch.cat([p.detach().flatten() for p in mine]).tolist(),
            "bounds": getattr(step, "bounds", None), "held": step.held}


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    if distributed.launched():
        distributed.init_process_group()
    mode = "split" if distributed.world_size() > 1 else "whole"
    folder = {"split": "checkpoints", "whole": "checkpoints_whole"}[mode]
    runs = {name: train(name, str(Path(out_dir, folder)) if name == "adam_epochs" else None)
            for name in SETTINGS}
    if mode == "split":  # the whole run's checkpoint after epoch 1 of 3, resumed in 2 stages
        runs["resumed"] = train("adam_epochs", resume_from=str(
            Path(out_dir, "checkpoints_whole", "epoch000.pt")))
    Path(out_dir, f"{mode}{distributed.rank()}.json").write_text(json.dumps(runs))
    distributed.close()


if __name__ == "__main__":
    main(sys.argv[1])
