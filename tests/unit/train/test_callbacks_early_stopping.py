from __future__ import annotations

import pytest

from dlforge.train.callbacks import EarlyStopping
from dlforge.train.monitor import resolve_mode


def run_scripted(cb: EarlyStopping, values, monitor="val_loss"):
    """A fake loop, no model: feed one value per epoch; return the epoch it stopped at."""
    cb.on_fit_start(None)
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {monitor: value}, None)
        if cb.reason:
            return epoch
    return None


@pytest.mark.parametrize(
    ("losses", "patience", "min_delta", "stop_epoch"),
    [
        ([6, 5, 5, 5, 5], 2, 0.0, 3),
        ([6, 5, 4, 3, 2], 2, 0.0, None),
        ([6, 5, 5, 5, 5], 0, 0.0, 2),
        ([6, 5, 4.95, 4.9, 4.85], 2, 0.1, 3),
        ([5, 6, 4, 6, 6, 6], 3, 0.0, 5),
    ],
)
def test_early_stopping_patience(losses, patience, min_delta, stop_epoch):
    cb = EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta)
    assert run_scripted(cb, losses) == stop_epoch


def test_reason_names_monitor_wait_and_best():
    cb = EarlyStopping(monitor="val_loss", patience=3)
    run_scripted(cb, [0.5, 0.45, 0.412, 0.42, 0.43, 0.5])
    assert cb.reason == "val_loss did not improve for 3 epochs; best 0.4120 at epoch 2"


def test_accuracy_is_maximized_in_auto_mode():
    cb = EarlyStopping(monitor="val_accuracy", patience=1)
    assert run_scripted(cb, [0.5, 0.7, 0.6], monitor="val_accuracy") == 2
    assert (cb.best, cb.best_epoch) == (0.7, 1)


@pytest.mark.parametrize(
    ("name", "mode"),
    [("val_loss", "min"), ("val_accuracy", "max"), ("val_f1", "max"), ("auc", "max"),
     ("val_mae", "min"), ("val_r2", "max"), ("val_recall", "max"), ("lr", "min")],
)
def test_auto_mode(name, mode):
    assert resolve_mode(name, "auto") == mode


def test_patience_counter_survives_state_dict_round_trip():
    first = EarlyStopping(monitor="val_loss", patience=3)
    first.on_fit_start(None)
    for epoch, value in enumerate([1.0, 0.8, 0.9, 0.9]):
        first.on_epoch_end(epoch, {"val_loss": value}, None)
    saved = first.state_dict()
    assert (saved["wait"], saved["best"], saved["best_epoch"]) == (2, 0.8, 1)

    resumed = EarlyStopping(monitor="val_loss", patience=3)
    resumed.on_fit_start(None)
    resumed.load_state_dict(saved)
    resumed.on_epoch_end(4, {"val_loss": 0.85}, None)
    assert resumed.reason == "val_loss did not improve for 3 epochs; best 0.8000 at epoch 1"


def test_state_key_names_class_monitor_and_resolved_mode():
    assert EarlyStopping(monitor="val_loss").state_key == (
        "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}")


def test_nan_never_counts_as_improvement():
    cb = EarlyStopping(monitor="val_loss", patience=1)
    assert run_scripted(cb, [1.0, float("nan")]) == 1
    assert cb.best == 1.0
