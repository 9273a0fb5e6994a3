"""Side effects of training as callbacks (Keras/Lightning): early stopping, checkpoints,
progress, time budget.

Each callback stores its constructor arguments, resets its state in `on_fit_start`, and has
`state_dict()`/`load_state_dict()` so that a resumed run keeps, e.g., its patience counter.
Epochs are counted from 0, as in `TrainResult.history`.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dlforge.errors import ConfigError
from dlforge.train.checkpoint_io import encode_checkpoint, write_bytes
from dlforge.train.monitor import monitor_not_logged, not_validated, resolve_mode

if TYPE_CHECKING:
    from dlforge.train.state import LoopState

class Callback:
    """Base class: every hook does nothing. Subclass and override what you need."""

    def on_fit_start(self, state: LoopState) -> None:
        """Called once before the first epoch (also when resuming, before state is restored)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState) -> None:
        """Called after each epoch with that epoch's history row. Set `state.stop_reason` to stop."""

    def on_fit_end(self, state: LoopState) -> None:
        """Called once after the last epoch."""

    def will_stop(self, epoch: int, state: LoopState) -> bool:
        """Whether this callback will stop the run after `epoch` whatever the epoch logs (a
        used-up time budget). The loop asks before it skips an epoch's validation
        (`train.val_every`) and validates the epoch when one says yes, so the last epoch of a
        run is always validated."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must hold to resume this callback (plain values and tensors only)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    @property
    def state_key(self) -> str:
        """Identifies this callback's entry in a checkpoint, e.g. `EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}`."""
        return f"{type(self).__name__}{self._key_args()}"

    def _key_args(self) -> dict[str, Any]:
        return {}


class _Monitor(Callback):
    """A callback that watches one logged metric (`monitor`) for improvement."""

    def __init__(self, monitor: str, mode: str, min_delta: float, key: str) -> None:
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = min_delta
        self.key = key  # config key named in error messages, e.g. train.early_stopping

    def _key_args(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "mode": self.mode}

    def _value(self, logs: dict[str, float]) -> float:
        if self.monitor not in logs:
            raise ConfigError(monitor_not_logged(f"{self.key}.monitor", self.monitor, logs))
        return float(logs[self.monitor])

    def _better(self, value: float, best: float | None) -> bool:
        if math.isnan(value):
            return False
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved for `patience` epochs.

    Args:
        monitor: a history key, e.g. `val_loss`.
        mode: `min`, `max` or `auto` (see `resolve_mode`).
        patience: epochs without improvement before stopping (0 = at the first one).
        min_delta: the smallest change that counts as an improvement.
        restore_best: at the end, load the weights of the best epoch (kept on the CPU).
        key: config key named in error messages.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 5,
                 min_delta: float = 0.0, restore_best: bool = True,
                 key: str = "train.early_stopping") -> None:
        super().__init__(monitor, mode, min_delta, key)
        self.patience = patience
        self.restore_best = restore_best
        self.on_fit_start(None)

    def on_fit_start(self, state: LoopState | None) -> None:
        self.wait = 0
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.reason: str | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState | None) -> None:
        if not_validated(self.monitor, logs, state):
            return  # patience counts the epochs that log the monitor (validations)
        value = self._value(logs)
        if self._better(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best and state is not None:
                self.best_weights = {k: v.detach().to("cpu", copy=True)
                                     for k, v in state.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            counted = "epochs" if getattr(getattr(state, "cfg", None), "val_every", 1) == 1 else "validations"
            self.reason = (f"{self.monitor} did not improve for {self.wait} {counted}; "
                           f"best {self.best:.4f} at epoch {self.best_epoch}")
            if state is not None:
                state.stop_reason = self.reason

    def on_fit_end(self, state: LoopState) -> None:
        if self.restore_best and self.best_weights is not None and self.best_epoch != state.epoch:
            state.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch,
                "best_weights": self.best_weights, "reason": self.reason}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait, self.best = state_dict["wait"], state_dict["best"]
        self.best_epoch, self.reason = state_dict["best_epoch"], state_dict["reason"]
        self.best_weights = state_dict["best_weights"]


class ModelCheckpoint(_Monitor):
    """Write resumable checkpoints atomically: the `top_k` best by `monitor`, and `last.pt`.

    A checkpoint holds model, optimizer and schedule state, epoch, callback states, history
    and RNG state, as plain tensors and dicts (loadable with `torch.load(weights_only=True)`).

    Args:
        dir: directory of the checkpoint files.
        monitor: a history key ranking the checkpoints.
        mode: `min`, `max` or `auto`.
        save_best_only: keep only the `top_k` best epochs; False keeps every validated epoch's
            file (every epoch unless `train.val_every` spaces validations out).
        top_k: how many best checkpoints to keep.
        save_last: also write `last.pt` after every epoch, for resuming.
        key: config key named in error messages.
    """

    def __init__(self, dir: str | Path, monitor: str = "val_loss", mode: str = "auto",
                 save_best_only: bool = True, top_k: int = 1, save_last: bool = True,
                 key: str = "train.checkpoint") -> None:
        super().__init__(monitor, mode, 0.0, key)
        self.dir = Path(dir)
        self.save_best_only = save_best_only
        self.top_k = top_k
        self.save_last = save_last
        self.on_fit_start(None)

    def on_fit_start(self, state: LoopState | None) -> None:
        self.kept: list[tuple[float, int, str]] = []  # (value, epoch, path), best first
        self.best_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState) -> None:
        # an epoch without validation is not ranked; last.pt still lets it resume
        ranked = not not_validated(self.monitor, logs, state)
        keep, dropped = self._rank(epoch, logs, state) if ranked else (False, [])
        if not (keep or self.save_last):
            return
        blob = encode_checkpoint(state)  # after our own state changed, so it is included
        if keep:
            write_bytes(self.dir / f"epoch{epoch:03d}.pt", blob)
        if self.save_last:
            write_bytes(self.dir / "last.pt", blob)
        for path in dropped:
            Path(path).unlink(missing_ok=True)

    def _rank(self, epoch: int, logs: dict[str, float], state: LoopState) -> tuple[bool, list[str]]:
        """Rank `epoch` by the monitor: whether its file is kept, and the files it displaces."""
        value = self._value(logs)
        keep = not self.save_best_only or len(self.kept) < self.top_k or (
            self._better(value, self.kept[-1][0]))
        dropped: list[str] = []
        if keep:
            self.kept.append((value, epoch, str(self.dir / f"epoch{epoch:03d}.pt")))
            self.kept.sort(key=lambda item: (item[0] if self.mode == "min" else -item[0], item[1]))
            if self.save_best_only:
                dropped = [path for _, _, path in self.kept[self.top_k:]]
                del self.kept[self.top_k:]
        self.best_epoch = self.kept[0][1] if self.kept else None
        state.best_checkpoint = Path(self.kept[0][2]) if self.kept else None
        return keep, dropped

    def state_dict(self) -> dict[str, Any]:
        return {"kept": [list(item) for item in self.kept], "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.kept = [(float(v), int(e), str(p)) for v, e, p in state_dict["kept"]]
        self.best_epoch = state_dict["best_epoch"]


class TimeBudget(Callback):
    """Stop after the epoch that uses up `seconds` of wall time (counted across resumes)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.elapsed_before = 0.0
        self.reason: str | None = None
        self._start = time.monotonic()
        self._verdict: tuple[int, bool] | None = None  # (epoch, used up) as `will_stop` said

    def _key_args(self) -> dict[str, Any]:
        return {"seconds": self.seconds}

    def on_fit_start(self, state: LoopState) -> None:
        self.elapsed_before, self.reason, self._start = 0.0, None, time.monotonic()
        self._verdict = None

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self._start

    def will_stop(self, epoch: int, state: LoopState) -> bool:
        """The budget is used up: this epoch is the last (and so is validated)."""
        self._verdict = (epoch, self.elapsed() >= self.seconds)
        return self._verdict[1]

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState) -> None:
        verdict = self._verdict
        # once asked, keep that answer: stopping after an epoch the loop did not validate
        # would leave the run's last epoch unvalidated
        used_up = verdict[1] if verdict and verdict[0] == epoch else self.elapsed() >= self.seconds
        if used_up:
            self.reason = (f"time budget of {self.seconds:g}s used up after {self.elapsed():.1f}s "
                           f"({epoch + 1} epochs)")
            state.stop_reason = self.reason

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.elapsed_before, self._start = float(state_dict["elapsed"]), time.monotonic()


def format_epoch(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """One progress line, e.g. `epoch 3/10  loss 0.412  accuracy 0.871  ...  lr 1.0e-03  12.3s  2,345 samples/s`.

    `epoch` counts from 0; the line counts from 1 for people.
    """
    parts = [f"epoch {epoch + 1}/{epochs}"]
    parts += [f"{k} {v:.3f}" for k, v in logs.items()
              if k not in ("epoch", "lr", "epoch_time_s", "samples_per_s")]
    if "lr" in logs:
        parts.append(f"lr {logs['lr']:.1e}")
    if "epoch_time_s" in logs:
        parts.append(f"{logs['epoch_time_s']:.1f}s")
    if "samples_per_s" in logs:
        parts.append(f"{logs['samples_per_s']:,.0f} samples/s")
    return "  ".join(parts)


class ProgressBar(Callback):
    """On a terminal, a rich progress bar over epochs with each epoch's line printed above it;
    otherwise one plain line per epoch (logs, CI).

    The bar redraws only at epoch ends (no refresh thread), so a run that fails mid-way
    leaves no thread behind.
    """

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self._bar: Any = None

    def on_fit_start(self, state: LoopState) -> None:
        self._out = self.stream or sys.stdout
        self._epochs = state.cfg.epochs
        if self._out.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=Console(file=self._out, markup=False), auto_refresh=False)
            self._task = self._bar.add_task("fit", total=self._epochs)
            self._bar.start()

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState) -> None:
        line = format_epoch(epoch, self._epochs, logs)
        if self._bar is None:
            print(line, file=self._out, flush=True)
            return
        self._bar.console.print(line, highlight=False, soft_wrap=True)
        self._bar.update(self._task, completed=epoch + 1, refresh=True)

    def on_fit_end(self, state: LoopState) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
