from __future__ import annotations

import pytest
import torch
from test_loop_support import TASKS, make_data, make_loaders, tiny_model, train_cfg

from dlforge.data.dataset import TaskSpec
from dlforge.errors import ConfigError, DataError
from dlforge.train.callbacks import Callback
from dlforge.train.loop import fit


def run(kind, cfg=None, seed=0, **kwargs):
    x, y = make_data(kind)
    kwargs.setdefault("progress", False)
    return fit(tiny_model(kind, dropout=0.2), make_loaders(x, y, seed=seed), cfg or train_cfg(),
               TASKS[kind], seed=seed, device="cpu", **kwargs)


@pytest.mark.parametrize(
    ("kind", "metric", "better_than"),
    [("multiclass", "val_accuracy", 0.6), ("binary", "val_accuracy", 0.8),
     ("multilabel", "val_accuracy", 0.75), ("regression", "val_mae", None)],
)
def test_each_task_learns_better_than_chance(kind, metric, better_than):
    result = run(kind, train_cfg(epochs=8))
    first, last = result.history[0], result.history[-1]
    assert last["val_loss"] < first["val_loss"]
    if better_than is None:  # predicting the mean gives MAE ~1.8 on this target
        assert last[metric] < 0.8
    else:
        assert last[metric] > better_than


def test_history_rows_and_per_step_lrs():
    result = run("multiclass", train_cfg(epochs=2))
    assert [list(row) for row in result.history] == [
        ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time_s",
         "samples_per_s"]] * 2
    assert [row["epoch"] for row in result.history] == [0, 1]
    assert result.lr_history == [0.01] * 8  # 64 samples / batch 16 = 4 steps x 2 epochs
    assert (result.best_epoch, result.best_checkpoint, result.stop_reason) == (None, None, None)


def test_same_seed_same_history():
    def strip(history):
        return [{k: v for k, v in row.items() if k not in ("epoch_time_s", "samples_per_s")}
                for row in history]

    a, b = run("binary", seed=3), run("binary", seed=3)
    assert strip(a.history) == strip(b.history)
    c = run("binary", seed=4)
    assert strip(c.history) != strip(a.history)


def test_monitor_not_logged_fails_before_training():
    cfg = train_cfg(early_stopping={"monitor": "val_f1"})
    with pytest.raises(ConfigError) as err:
        run("multiclass", cfg)
    assert str(err.value) == (
        "train.early_stopping.monitor: 'val_f1' is not logged; "
        "available: accuracy, loss, lr, val_accuracy, val_loss")


def test_checkpoint_monitor_not_logged(tmp_path):
    cfg = train_cfg(checkpoint={"monitor": "val_accuracy"})
    with pytest.raises(ConfigError) as err:
        run("regression", cfg, checkpoint_dir=tmp_path)
    assert str(err.value) == (
        "train.checkpoint.monitor: 'val_accuracy' is not logged; "
        "available: loss, lr, mae, val_loss, val_mae")


def test_label_outside_head_fails_before_training():
    x, y = make_data("multiclass")
    y[5] = 7
    task = TaskSpec("multiclass", ("a", "b", "c", "d", "e"))
    model = torch.nn.Sequential(torch.nn.Linear(8, 5))
    with pytest.raises(DataError) as err:
        fit(model, make_loaders(x, y), train_cfg(), task, device="cpu", progress=False)
    assert str(err.value) == (
        "data: label 7 is outside the model head's range 0..4 (task multiclass with 5 classes)")


class Snapshots(Callback):
    """Keeps a copy of the weights after every epoch."""

    def on_fit_start(self, state):
        self.weights = []

    def on_epoch_end(self, epoch, logs, state):
        self.weights.append({k: v.clone() for k, v in state.model.state_dict().items()})


def test_early_stopping_restores_the_best_epoch():
    x, y = make_data("binary")
    val = make_data("binary", n=32, seed=1)
    # a high LR makes the validation loss rise after a few epochs
    cfg = train_cfg(epochs=12, lr=0.5, optimizer="sgd",
                    early_stopping={"patience": 2, "restore_best": True})
    snaps = Snapshots()
    result = fit(tiny_model("binary"), make_loaders(x, y, val=val), cfg, TASKS["binary"],
                 callbacks=[snaps], device="cpu", progress=False)
    losses = [row["val_loss"] for row in result.history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert result.best_epoch == best
    assert result.stop_reason == (
        f"val_loss did not improve for 2 epochs; best {losses[best]:.4f} at epoch {best}")
    assert len(losses) == best + 3
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, snaps.weights[best][key]), key


def test_progress_prints_one_line_per_epoch(capsys):
    run("multiclass", train_cfg(epochs=2), progress=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
