"""`train.val_every`: the fit loop validates every N-th epoch (N-1, 2N-1, ... from 0) and the
last one; monitors act on the epochs that log their metric."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from test_loop_support import TASKS, make_data, make_loaders, tiny_model, train_cfg

from dlforge.train.callbacks import Callback, EarlyStopping, TimeBudget
from dlforge.train.checkpoint_io import load_checkpoint
from dlforge.train.loop import fit

TRAINED = ["epoch", "loss", "accuracy", "lr", "epoch_time_s", "samples_per_s"]
VALIDATED = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time_s",
             "samples_per_s"]


def run(cfg, **kwargs):
    x, y = make_data("multiclass")
    kwargs.setdefault("progress", False)
    return fit(tiny_model("multiclass", dropout=0.2), make_loaders(x, y), cfg,
               TASKS["multiclass"], device="cpu", **kwargs)


def figures(history):
    return [{k: v for k, v in row.items() if k not in ("epoch_time_s", "samples_per_s")}
            for row in history]


class Snapshots(Callback):
    """The weights after each epoch, and the `validated` flag the loop set."""

    def on_fit_start(self, state):
        self.weights, self.validated = [], []

    def on_epoch_end(self, epoch, logs, state):
        self.weights.append({k: v.clone() for k, v in state.model.state_dict().items()})
        self.validated.append(state.validated)


class StopAt(Callback):
    """Interrupts the run at the end of one epoch, before the checkpoint of that epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs, state):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_validates_epochs_1_3_and_the_last_of_5_with_val_every_2():
    snap = Snapshots()
    result = run(train_cfg(epochs=5, val_every=2), callbacks=[snap])
    assert [list(row) for row in result.history] == [TRAINED, VALIDATED, TRAINED, VALIDATED,
                                                     VALIDATED]
    assert snap.validated == [False, True, False, True, True]


def test_skipping_validation_changes_nothing_that_is_trained():
    every, each = run(train_cfg(epochs=5, val_every=2)), run(train_cfg(epochs=5))
    assert figures(every.history) == [{k: v for k, v in row.items() if k in kept}
                                      for row, kept in zip(figures(each.history),
                                                           [TRAINED, VALIDATED] * 2 + [VALIDATED],
                                                           strict=True)]
    assert every.lr_history == each.lr_history


def test_val_every_1_validates_every_epoch_as_before():
    one, default = run(train_cfg(epochs=3, val_every=1)), run(train_cfg(epochs=3))
    assert [list(row) for row in one.history] == [VALIDATED] * 3
    assert figures(one.history) == figures(default.history)


def test_early_stopping_counts_validations_and_restores_a_validated_epoch():
    snap = Snapshots()
    # min_delta 10: no validation after the first counts as an improvement
    cfg = train_cfg(epochs=8, val_every=3,
                    early_stopping={"patience": 1, "min_delta": 10.0, "restore_best": True})
    result = run(cfg, callbacks=[snap])
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3, 4, 5]
    assert snap.validated == [False, False, True, False, False, True]
    best = result.history[2]["val_loss"]
    assert result.stop_reason == f"val_loss did not improve for 1 validations; best {best:.4f} at epoch 2"
    assert result.best_epoch == 2
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, snap.weights[2][key]), key


def test_checkpoints_rank_validated_epochs_only_and_last_pt_follows_every_epoch(tmp_path):
    cfg = train_cfg(epochs=5, val_every=2, checkpoint={"save_best_only": False})
    result = run(cfg, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch001.pt", "epoch003.pt", "epoch004.pt", "last.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 4
    assert result.best_epoch in (1, 3, 4)


def test_a_resumed_run_validates_the_same_epochs(tmp_path):
    cfg = train_cfg(epochs=5, val_every=2, checkpoint={"save_best_only": False})
    whole = run(cfg, seed=1)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, seed=1, checkpoint_dir=tmp_path, callbacks=[StopAt(3)])
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2  # an epoch without validation
    resumed = run(cfg, seed=1, checkpoint_dir=tmp_path, resume_from=tmp_path / "last.pt")
    assert [list(row) for row in resumed.history] == [TRAINED, VALIDATED, TRAINED, VALIDATED,
                                                      VALIDATED]
    assert figures(resumed.history) == figures(whole.history)


def test_the_epoch_a_time_budget_ends_is_validated():
    result = run(train_cfg(epochs=6, val_every=4, time_budget_s=1e-9))
    assert [list(row) for row in result.history] == [VALIDATED]
    assert result.stop_reason.startswith("time budget of 1e-09s used up after ")


def test_a_time_budget_keeps_the_answer_it_gave_before_validation():
    budget = TimeBudget(10.0)
    budget.on_fit_start(None)
    state = SimpleNamespace(stop_reason=None)
    assert budget.will_stop(0, state) is False
    budget.elapsed_before = 100.0  # used up while the loop skipped validation
    budget.on_epoch_end(0, {}, state)
    assert state.stop_reason is None
    budget.on_epoch_end(1, {}, state)
    assert state.stop_reason.startswith("time budget of 10s used up after 100.")


def test_early_stopping_skips_the_rows_without_its_monitor():
    es = EarlyStopping("val_loss", patience=2, restore_best=False)
    rows = [(False, {"loss": 1.0}), (True, {"loss": 0.9, "val_loss": 1.0}),
            (False, {"loss": 0.8}), (True, {"loss": 0.7, "val_loss": 0.9}),
            (False, {"loss": 0.6}), (True, {"loss": 0.5, "val_loss": 0.95}),
            (False, {"loss": 0.4}), (True, {"loss": 0.3, "val_loss": 0.97})]
    state = SimpleNamespace(validated=True, stop_reason=None, cfg=SimpleNamespace(val_every=2))
    for epoch, (validated, logs) in enumerate(rows):
        state.validated = validated
        es.on_epoch_end(epoch, logs, state)
        assert es.wait == {5: 1, 6: 1, 7: 2}.get(epoch, 0), epoch
    assert state.stop_reason == "val_loss did not improve for 2 validations; best 0.9000 at epoch 3"


def test_a_validated_epoch_without_the_monitor_is_still_an_error():
    es = EarlyStopping("val_f1")
    with pytest.raises(ValueError, match=r"^train\.early_stopping\.monitor: 'val_f1' is not "
                                         r"logged; available: loss, val_loss$"):
        es.on_epoch_end(1, {"loss": 1.0, "val_loss": 1.0}, SimpleNamespace(validated=True))
