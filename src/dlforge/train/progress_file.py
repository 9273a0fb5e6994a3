"""`ProgressFile`: the run's history so far, as JSON rewritten atomically after every epoch.

The store records a run's history only when it finishes; this file is how another process
(the `dlforge ui` live page) follows a run while it trains. It holds
``{"epochs": planned, "history": [rows so far], "updated_at": ISO time}``; a reader never
sees a half-written file.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlforge.atomic import write_text
from dlforge.train.callbacks import Callback

if TYPE_CHECKING:
    from dlforge.train.state import LoopState

PROGRESS_FILE = "progress.json"


class ProgressFile(Callback):
    """Rewrite `path` at the start of fit and after every epoch.

    Args:
        path: the JSON file; the pipeline writes `<run folder>/progress.json` (`PROGRESS_FILE`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _key_args(self) -> dict[str, Any]:
        return {}

    def on_fit_start(self, state: LoopState) -> None:
        self._write(state)

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state: LoopState) -> None:
        self._write(state)

    def _write(self, state: LoopState) -> None:
        record = {"epochs": state.cfg.epochs, "history": [_finite(row) for row in state.history],
                  "updated_at": datetime.now(timezone.utc).isoformat()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, json.dumps(record) + "\n")


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """A history row with NaN/inf as null, so the file is strict JSON (browsers parse it)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
