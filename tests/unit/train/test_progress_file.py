"""ProgressFile: the history so far, rewritten as strict JSON after every epoch."""

from __future__ import annotations

import json

from test_loop_support import TASKS, make_data, make_loaders, tiny_model, train_cfg

from dlforge.train.callbacks import Callback
from dlforge.train.loop import fit
from dlforge.train.progress_file import ProgressFile


class Snapshot(Callback):
    """Reads the progress file after each epoch (it runs after ProgressFile)."""

    def __init__(self, path):
        self.path, self.seen = path, []

    def on_epoch_end(self, epoch, logs, state):
        self.seen.append(json.loads(self.path.read_text()))


def test_the_file_grows_by_one_row_per_epoch(tmp_path):
    path = tmp_path / "run" / "progress.json"
    snap = Snapshot(path)
    x, y = make_data("multiclass")
    result = fit(tiny_model("multiclass"), make_loaders(x, y), train_cfg(epochs=3),
                 TASKS["multiclass"], callbacks=[ProgressFile(path), snap], device="cpu",
                 progress=False)
    assert [len(s["history"]) for s in snap.seen] == [1, 2, 3]
    assert {s["epochs"] for s in snap.seen} == {3}
    final = json.loads(path.read_text())
    assert final["history"] == json.loads(json.dumps(result.history))
    assert sorted(final) == ["epochs", "history", "updated_at"]


def test_non_finite_values_are_written_as_null(tmp_path):
    class Diverge(Callback):
        def on_epoch_end(self, epoch, logs, state):
            logs["loss"] = float("nan")

    path = tmp_path / "progress.json"
    x, y = make_data("binary")
    fit(tiny_model("binary"), make_loaders(x, y), train_cfg(epochs=1), TASKS["binary"],
        callbacks=[Diverge(), ProgressFile(path)], device="cpu", progress=False)
    text = path.read_text()
    assert "NaN" not in text
    assert json.loads(text)["history"][0]["loss"] is None
