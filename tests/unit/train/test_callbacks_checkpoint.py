from __future__ import annotations

import pytest
import torch
from test_loop_support import TASKS, make_data, make_loaders, tiny_model, train_cfg

from dlforge.train.callbacks import Callback, ModelCheckpoint
from dlforge.train.checkpoint_io import load_checkpoint, write_bytes
from dlforge.train.loop import fit


class ScriptedValLoss(Callback):
    """Replaces the logged val_loss by a scripted one and snapshots the weights of each epoch."""

    def __init__(self, values):
        self.values = values

    def on_fit_start(self, state):
        self.weights = []

    def on_epoch_end(self, epoch, logs, state):
        logs["val_loss"] = self.values[epoch]
        self.weights.append({k: v.clone() for k, v in state.model.state_dict().items()})


def fit_scripted(tmp_path, values, **checkpoint):
    x, y = make_data("multiclass")
    script = ScriptedValLoss(values)
    result = fit(tiny_model("multiclass", dropout=0.2), make_loaders(x, y),
                 train_cfg(epochs=len(values), checkpoint=checkpoint), TASKS["multiclass"],
                 callbacks=[script], checkpoint_dir=tmp_path, device="cpu", progress=False)
    return result, script


def test_top_k_keeps_exactly_the_k_best_files_and_last(tmp_path):
    result, _ = fit_scripted(tmp_path, [5.0, 3.0, 4.0, 1.0, 2.0, 6.0], top_k=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch003.pt", "epoch004.pt", "last.pt"]
    assert (result.best_checkpoint, result.best_epoch) == (tmp_path / "epoch003.pt", 3)


def test_best_checkpoint_holds_the_best_epochs_weights(tmp_path):
    result, script = fit_scripted(tmp_path, [5.0, 3.0, 4.0, 3.5])
    saved = torch.load(result.best_checkpoint, weights_only=True)
    assert (saved["epoch"], len(saved["history"])) == (1, 2)
    assert saved["model"].keys() == script.weights[1].keys()
    for key, value in saved["model"].items():
        assert torch.equal(value, script.weights[1][key]), key
    assert not torch.equal(saved["model"]["0.weight"], script.weights[3]["0.weight"])
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 3


def test_checkpoint_contents(tmp_path):
    fit_scripted(tmp_path, [1.0, 2.0])
    saved = load_checkpoint(tmp_path / "last.pt")
    assert sorted(saved) == ["callbacks", "config", "ema", "epoch", "format", "history",
                             "lr_history", "model", "optimizer", "position", "rng", "schedule",
                             "seed", "step", "stop_reason", "version"]
    assert saved["position"] is None  # an epoch end (train.checkpoint.every_steps: inside)
    assert saved["step"] == {}  # the supervised step keeps no state of its own
    assert saved["ema"] == {}  # no train.ema
    assert list(saved["callbacks"]) == [
        "ScriptedValLoss{}", "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}"]
    assert saved["callbacks"]["ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}"] == {
        "kept": [[1.0, 0, str(tmp_path / "epoch000.pt")]], "best_epoch": 0}
    assert saved["config"]["epochs"] == 2


def test_save_best_only_false_keeps_every_epoch(tmp_path):
    fit_scripted(tmp_path, [3.0, 2.0, 4.0], save_best_only=False, save_last=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch000.pt", "epoch001.pt", "epoch002.pt"]


def test_failed_write_leaves_no_temp_file_and_keeps_the_old_one(tmp_path):
    write_bytes(tmp_path / "last.pt", b"old")
    with pytest.raises(TypeError):
        write_bytes(tmp_path / "last.pt", None)  # fails half-way, after the temp file exists
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert (tmp_path / "last.pt").read_bytes() == b"old"


def test_monitor_missing_from_logs_after_an_epoch():
    cb = ModelCheckpoint("unused", monitor="val_f1")
    with pytest.raises(ValueError, match=r"^train\.checkpoint\.monitor: 'val_f1' is not logged; "
                                         r"available: loss, val_loss$"):
        cb.on_epoch_end(0, {"epoch": 0, "loss": 1.0, "val_loss": 1.0}, None)
