"""train.ema: the weight average, its updates, the fit loop's use of it, checkpoints."""

from __future__ import annotations

import pytest
import torch
from test_loop_support import TASKS, make_data, make_loaders, tiny_model, train_cfg
from torch import nn

from dlforge.config.load import load_config
from dlforge.train.callbacks import Callback
from dlforge.train.ema import WeightAverage
from dlforge.train.loop import fit


def constant_model(value: float) -> nn.Linear:
    model = nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(value)
    return model


def test_updates_follow_the_warm_up_then_the_decay():
    model = constant_model(0.0)
    ema = WeightAverage(model, decay=0.5, every=1)
    model.weight.data.fill_(1.0)
    seen = []
    for _ in range(12):
        seen.append(ema.current_decay())
        ema.step()
    # min(0.5, (1 + n) / (10 + n)): 0.1, 2/11, 3/12, 4/13, 5/14, 6/15, 7/16, 8/17, then 0.5
    assert seen == pytest.approx([0.1, 2 / 11, 0.25, 4 / 13, 5 / 14, 0.4, 7 / 16, 8 / 17, 0.5, 0.5,
                                  0.5, 0.5])
    expected = 0.0
    for decay in seen:
        expected = decay * expected + (1 - decay) * 1.0
    assert float(ema.shadow["weight"]) == pytest.approx(expected, abs=1e-6)
    assert (ema.steps, ema.updates) == (12, 12)


def test_every_n_steps_updates_on_the_nth_only():
    model = constant_model(0.0)
    ema = WeightAverage(model, decay=0.5, every=3)
    model.weight.data.fill_(1.0)
    for _ in range(2):
        ema.step()
    assert (float(ema.shadow["weight"]), ema.updates) == (0.0, 0)
    ema.step()
    assert (float(ema.shadow["weight"]), ema.updates) == (pytest.approx(0.9), 1)


def test_batch_norm_statistics_are_averaged_and_counters_copied():
    model = nn.BatchNorm1d(2)
    ema = WeightAverage(model, decay=0.5)
    model.running_mean.fill_(2.0)
    model.num_batches_tracked.fill_(7)
    ema.step()
    assert ema.shadow["running_mean"].tolist() == pytest.approx([1.8, 1.8])
    assert int(ema.shadow["num_batches_tracked"]) == 7


def test_applied_swaps_the_average_in_and_the_weights_back():
    model = constant_model(0.0)
    ema = WeightAverage(model, decay=0.5)
    model.weight.data.fill_(1.0)
    ema.step()
    with ema.applied():
        assert float(model.weight.detach()) == pytest.approx(0.9)
    assert float(model.weight.detach()) == 1.0
    ema.copy_to_model()
    assert float(model.weight.detach()) == pytest.approx(0.9)


def test_lookahead_decay_grows_with_the_cube_of_progress_and_resets_the_weights():
    model = constant_model(0.0)
    ema = WeightAverage(model, decay=0.8, every=5, lookahead_steps=10)
    model.weight.data.fill_(1.0)
    for _ in range(5):
        ema.step()
    # after 5 of 10 steps: decay 0.8 * 0.5 ** 3 = 0.1, so the average is 0.9; the weights too
    assert (float(ema.shadow["weight"]), float(model.weight.detach())) == (
        pytest.approx(0.9), pytest.approx(0.9))
    model.weight.data.fill_(2.0)
    for _ in range(5):
        ema.step()
    # at the last step: decay 0.8, average 0.8 * 0.9 + 0.2 * 2
    assert float(model.weight.detach()) == pytest.approx(1.12)
    assert ema.current_decay() == pytest.approx(0.8)


def run(cfg, **kwargs):
    x, y = make_data("multiclass")
    return fit(tiny_model("multiclass"), make_loaders(x, y), cfg, TASKS["multiclass"], seed=0,
               device="cpu", progress=False, **kwargs)


def test_fit_trains_alike_but_validates_and_ends_with_the_average():
    plain = run(train_cfg(epochs=3))
    averaged = run(train_cfg(epochs=3, ema={"decay": 0.9}))
    # the average never feeds back into training: the training losses are identical
    assert [r["loss"] for r in averaged.history] == [r["loss"] for r in plain.history]
    assert [r["val_loss"] for r in averaged.history] != [r["val_loss"] for r in plain.history]
    x, y = make_data("multiclass")
    with torch.no_grad():
        final = nn.functional.cross_entropy(averaged.model.eval()(x), y).item()
    assert final == pytest.approx(averaged.history[-1]["val_loss"], abs=1e-6)
    assert not torch.equal(averaged.model[0].weight, plain.model[0].weight)


class Interrupt(Exception):
    pass


class InterruptAt(Callback):
    def on_epoch_end(self, epoch, logs, state):
        if epoch == 2:  # before this epoch's checkpoint: last.pt holds epoch 1
            raise Interrupt


def test_a_resumed_run_continues_the_same_average(tmp_path):
    cfg = train_cfg(epochs=4, ema={"decay": 0.9, "every": 2})
    reference = run(cfg)
    with pytest.raises(Interrupt):
        run(cfg, checkpoint_dir=tmp_path, callbacks=[InterruptAt()])
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert (saved["epoch"], saved["ema"]["steps"], saved["ema"]["updates"]) == (1, 8, 4)
    resumed = run(cfg, checkpoint_dir=tmp_path, resume_from=tmp_path / "last.pt")
    assert resumed.history[-1]["val_loss"] == reference.history[-1]["val_loss"]
    for key, value in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_lookahead_feeds_the_average_back_into_training():
    plain = run(train_cfg(epochs=3))
    lookahead = run(train_cfg(epochs=3, ema={"decay": 0.9, "every": 2, "mode": "lookahead"}))
    # epoch 0 (decay <= 0.9 / 27) nearly as without; later epochs train from the average
    first, last = lookahead.history[0]["loss"], lookahead.history[-1]["loss"]
    assert first != plain.history[0]["loss"]
    assert first == pytest.approx(plain.history[0]["loss"], rel=1e-3)
    assert abs(last - plain.history[-1]["loss"]) > 1e-3


def assert_resume_ends_as_uninterrupted(run, cfg, tmp_path) -> None:
    """`run(cfg)` interrupted after epoch 1 and resumed from last.pt ends with the losses and
    weights of an uninterrupted `run(cfg)`."""
    reference = run(cfg)
    with pytest.raises(Interrupt):
        run(cfg, checkpoint_dir=tmp_path, callbacks=[InterruptAt()])
    resumed = run(cfg, checkpoint_dir=tmp_path, resume_from=tmp_path / "last.pt")
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in reference.history]
    for key, value in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_a_resumed_lookahead_run_ends_as_the_uninterrupted_one(tmp_path):
    cfg = train_cfg(epochs=4, ema={"decay": 0.9, "every": 3, "mode": "lookahead"})
    assert_resume_ends_as_uninterrupted(run, cfg, tmp_path)


def test_ema_off_by_default():
    assert load_config({}).train.ema is None
