"""train.muon: its defaults and the rules against the rest of `train`, one line per problem."""

from __future__ import annotations

import pytest

from dlforge.config import load_config
from dlforge.config.muon_schema import MuonConfig
from dlforge.errors import ConfigError


def _message(train: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_config({"train": train})
    return str(info.value)


def test_muon_loads_with_the_default_section_or_none():
    assert load_config({"train": {"optimizer": "muon"}}).train.muon is None
    got = load_config({"train": {"optimizer": "muon", "muon": {"ns_steps": 3}}}).train.muon
    assert got == MuonConfig(lr=0.02, momentum=0.95, nesterov=True, ns_steps=3,
                             normalize_weights=False, weight_decay=0.0)


@pytest.mark.parametrize(("train", "message"), [
    ({"optimizer": "sgd", "muon": {"lr": 0.1}},
     "train.muon: applies to train.optimizer: muon only (got optimizer 'sgd'); remove "
     "train.muon or set train.optimizer: muon"),
    ({"optimizer": "muon", "nesterov": True, "momentum": 0},
     "train.nesterov: needs train.momentum > 0 (got 0.0)"),
    ({"optimizer": "muon", "muon": {"momentum": 0}},
     "train.muon.nesterov: needs train.muon.momentum > 0 (got 0.0); set a momentum or "
     "nesterov: false"),
    ({"optimizer": "muon", "muon": {"normalize_weights": True, "weight_decay": 0.1}},
     "train.muon.weight_decay: has no effect with normalize_weights: true, which resets every "
     "weight's norm each step (got 0.1); set weight_decay: 0 or normalize_weights: false"),
    ({"optimizer": "muon", "muon": {"ns_steps": 0}},
     "train.muon.ns_steps: must be greater than or equal to 1 (got 0)"),
])
def test_rules(train, message):
    assert _message(train) == message


def test_two_problems_are_two_lines():
    got = _message({"optimizer": "adam", "muon": {"momentum": 0}})
    assert got.splitlines() == [
        "train.muon: applies to train.optimizer: muon only (got optimizer 'adam'); remove "
        "train.muon or set train.optimizer: muon",
        "train.muon.nesterov: needs train.muon.momentum > 0 (got 0.0); set a momentum or "
        "nesterov: false"]


def test_the_example_recipe_loads():
    cfg = load_config("examples/cifar10_muon.yaml")
    assert (cfg.train.optimizer, cfg.train.muon.lr, cfg.train.muon.ns_steps,
            cfg.train.schedule.type, cfg.train.ema) == ("muon", 0.24, 3, "linear", None)


def test_the_cli_refuses_it_in_one_line_and_writes_nothing(tmp_path, capsys):
    from dlforge.cli import main

    workspace = tmp_path / "ws"
    code = main(["-w", str(workspace), "train", "examples/cifar10_muon.yaml",
                 "--set", "train.optimizer=sgd"])
    assert code == 2
    assert capsys.readouterr().err == (
        "error: train.muon: applies to train.optimizer: muon only (got optimizer 'sgd'); "
        "remove train.muon or set train.optimizer: muon\n")
    assert not workspace.exists()
