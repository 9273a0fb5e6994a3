from __future__ import annotations

import io
from types import SimpleNamespace

from dlforge.train.callbacks import ProgressBar, TimeBudget, format_epoch

LOGS = {"epoch": 2, "loss": 0.41234, "accuracy": 0.8714, "val_loss": 0.398, "val_accuracy": 0.88,
        "lr": 0.001, "epoch_time_s": 12.34, "samples_per_s": 2345.4}


def test_progress_line_format():
    assert format_epoch(2, 10, LOGS) == (
        "epoch 3/10  loss 0.412  accuracy 0.871  val_loss 0.398  val_accuracy 0.880  "
        "lr 1.0e-03  12.3s  2,345 samples/s")


class Tty(io.StringIO):
    def isatty(self):
        return True


def one_epoch(out, epochs: int, epoch: int, logs: dict[str, float]) -> str:
    """What a ProgressBar writes to `out` for a fit of `epochs` that ends `epoch` with `logs`."""
    state = SimpleNamespace(cfg=SimpleNamespace(epochs=epochs))
    bar = ProgressBar(stream=out)
    bar.on_fit_start(state)
    bar.on_epoch_end(epoch, logs, state)
    bar.on_fit_end(state)
    return out.getvalue()


def test_plain_line_per_epoch_when_not_a_tty():
    assert one_epoch(io.StringIO(), 10, 2, LOGS) == format_epoch(2, 10, LOGS) + "\n"


def test_rich_bar_on_a_tty():
    written = one_epoch(Tty(), 10, 2, LOGS)
    assert format_epoch(2, 10, LOGS) + "\n" in written
    assert "3/10" in written.rsplit(format_epoch(2, 10, LOGS), 1)[1]  # the bar, below


def test_time_budget_stops_with_a_reason():
    state = SimpleNamespace(stop_reason=None)
    cb = TimeBudget(0.5)
    cb.on_fit_start(state)
    cb.load_state_dict({"elapsed": 0.75})  # a resumed run keeps the time already spent
    cb.on_epoch_end(4, LOGS, state)
    assert state.stop_reason.startswith("time budget of 0.5s used up after 0.")
    assert state.stop_reason.endswith("s (5 epochs)")


def test_time_budget_not_used_up():
    state = SimpleNamespace(stop_reason=None)
    cb = TimeBudget(3600)
    cb.on_fit_start(state)
    cb.on_epoch_end(0, LOGS, state)
    assert state.stop_reason is None


def test_rich_bar_prints_bracketed_metric_names_verbatim():
    written = one_epoch(Tty(), 1, 0, {"recall[bold]": 0.5, "val_recall[/x]": 0.25})
    assert "epoch 1/1  recall[bold] 0.500  val_recall[/x] 0.250\n" in written
