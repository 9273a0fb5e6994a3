from __future__ import annotations

import re

import pytest
import torch
from test_loop_support import TASKS, make_data, make_loaders, tiny_model, train_cfg

from dlforge.errors import ConfigError, DataError, NotFoundError
from dlforge.train.loop import fit


def resume(path, model=None):
    x, y = make_data("binary")
    return fit(model or tiny_model("binary"), make_loaders(x, y), train_cfg(epochs=2),
               TASKS["binary"], resume_from=path, device="cpu", progress=False)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(NotFoundError) as err:
        resume(tmp_path / "nope.pt")
    assert str(err.value) == f"resume_from: checkpoint {str(tmp_path / 'nope.pt')!r} does not exist"


def test_not_a_dlforge_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(DataError) as err:
        resume(tmp_path / "other.pt")
    assert str(err.value) == f"resume_from: {str(tmp_path / 'other.pt')!r} is not a dlforge checkpoint"


def test_checkpoint_of_another_model(tmp_path):
    x, y = make_data("binary")
    fit(tiny_model("binary"), make_loaders(x, y), train_cfg(epochs=1), TASKS["binary"],
        checkpoint_dir=tmp_path, device="cpu", progress=False)
    wider = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    with pytest.raises(ConfigError, match=r"^resume_from: the checkpoint does not fit the model "):
        resume(tmp_path / "last.pt", wider)


def test_resuming_a_finished_run_trains_no_more(tmp_path):
    x, y = make_data("binary")
    first = fit(tiny_model("binary"), make_loaders(x, y), train_cfg(epochs=2), TASKS["binary"],
                checkpoint_dir=tmp_path, device="cpu", progress=False)
    again = resume(tmp_path / "last.pt")
    assert again.history == first.history
    assert again.lr_history == first.lr_history


def test_a_damaged_checkpoint_names_the_fix(tmp_path):
    x, y = make_data("binary")
    fit(tiny_model("binary"), make_loaders(x, y), train_cfg(epochs=1), TASKS["binary"],
        checkpoint_dir=tmp_path, device="cpu", progress=False)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # a disk that lost its end
    message = (f"resume_from: {str(last)!r} is not a readable checkpoint (PytorchStreamReader "
               "failed reading zip archive: failed finding central directory); the file is "
               "damaged: put back a copy, or remove it, and a resumed run trains from the start")
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        resume(last)
