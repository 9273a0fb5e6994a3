"""preflight: the checks fit makes before its first epoch, available without training."""

from __future__ import annotations

import pytest
from test_loop_support import TASKS, make_data, make_loaders, tiny_model, train_cfg

from dlforge.errors import ConfigError
from dlforge.train.loop import preflight


def _parts():
    x, y = make_data("multiclass")
    return tiny_model("multiclass"), make_loaders(x, y, val=(x, y)), TASKS["multiclass"]


def test_preflight_passes_a_good_config():
    model, loaders, task = _parts()
    preflight(model, loaders, train_cfg(), task, device="cpu")


def test_preflight_raises_a_monitor_that_is_never_logged():
    model, loaders, task = _parts()
    with pytest.raises(ConfigError) as err:
        preflight(model, loaders, train_cfg(checkpoint={"monitor": "val_f1"}), task, device="cpu")
    assert str(err.value) == ("train.checkpoint.monitor: 'val_f1' is not logged; "
                              "available: accuracy, loss, lr, val_accuracy, val_loss")


def test_preflight_raises_a_warmup_longer_than_the_run():
    model, loaders, task = _parts()
    cfg = train_cfg(epochs=1, schedule={"type": "cosine", "warmup_steps": 10_000})
    with pytest.raises(ConfigError, match=r"warmup_steps"):
        preflight(model, loaders, cfg, task, device="cpu")
