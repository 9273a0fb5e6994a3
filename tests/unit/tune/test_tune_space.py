"""tune.space: ranges and keys checked by the schema when the config loads, values applied."""

from __future__ import annotations

import pytest

from dlforge.config import load_config
from dlforge.config.tunable import tunable_keys
from dlforge.errors import ConfigError
from dlforge.tune.space import apply_params, distributions, trial_values

MLP = {"model": {"type": "mlp", "hidden": [16]}}


def _cfg(space: dict, **extra) -> object:
    return load_config({**MLP, **extra, "tune": {"space": space}})


@pytest.mark.parametrize(("spec", "message"), [
    ({"uniform": [0.1, 0.01]}, "tune.space.train.lr: uniform: [low, high] must have low < high; an "
     "empty or inverted range has nothing to search (got [0.1, 0.01])"),
    ({"int": [3, 3]}, "tune.space.train.lr: int: [low, high] must have low < high; an empty or "
     "inverted range has nothing to search (got [3, 3])"),
    ({"log_uniform": [0, 1]}, "tune.space.train.lr: log_uniform: low must be greater than 0 "
     "(got [0.0, 1.0])"),
    ({"choice": [0.1]}, "tune.space.train.lr: choice: give at least 2 values; to fix one value set "
     "the key itself instead of tuning it (got [0.1])"),
    # was "(got [True])", Python's spelling of what the YAML file says as [true]
    ({"choice": [True]}, "tune.space.train.lr: choice: give at least 2 values; to fix one value set "
     "the key itself instead of tuning it (got [true])"),
])
def test_bad_ranges_are_one_line_schema_errors(spec, message):
    with pytest.raises(ConfigError) as err:
        _cfg({"train.lr": spec})
    assert str(err.value) == message


def test_zero_trials_is_a_schema_error():
    with pytest.raises(ConfigError, match=r"^tune\.n_trials: must be greater than or equal to 1 \(got 0\)$"):
        load_config({"tune": {"n_trials": 0}})


def test_tunable_keys_follow_the_configured_model_type():
    keys = tunable_keys(load_config(MLP))
    assert [k for k in keys if k.startswith("model.")] == [
        "model.activation", "model.batch_norm", "model.dropout", "model.hidden", "model.init"]
    assert keys["train.lr"] == "float" and keys["train.batch_size"] == "int"
    assert keys["model.hidden"] == "list" and keys["train.optimizer"] == "categorical"
    assert "train.num_threads" not in keys and "data.limit" not in keys
    cnn = tunable_keys(load_config({"model": {"type": "resnet_small"}}))
    assert [k for k in cnn if k.startswith("model.")] == ["model.blocks", "model.init", "model.width"]


def test_unknown_key_lists_the_tunable_ones():
    with pytest.raises(ConfigError) as err:
        _cfg({"model.width": {"choice": [16, 32]}})
    assert str(err.value) == (
        "tune.space.model.width: not a tunable key of this config (model type 'mlp'); tunable keys: "
        + ", ".join(tunable_keys(load_config(MLP))))


def test_every_bad_key_gets_its_own_line():
    with pytest.raises(ConfigError) as err:
        _cfg({"model.activation": {"uniform": [0, 1]}, "train.lr": {"uniform": [0, 0.1]},
              "model.dropout": {"uniform": [0.0, 1.0]}, "data.limit": {"int": [10, 20]}})
    lines = str(err.value).splitlines()
    assert lines[:3] == [
        "tune.space.model.activation: a categorical key takes choice (got uniform)",
        "tune.space.train.lr: the value 0.0 is not allowed: must be greater than 0 (got 0.0)",
        "tune.space.model.dropout: the value 1.0 is not allowed: must be less than 1 (got 1.0)",
    ]
    assert lines[3].startswith("tune.space.data.limit: not a tunable key of this config")
    assert len(lines) == 4


def test_distributions_and_values_round_trip():
    import optuna.distributions as od

    cfg = _cfg({"train.lr": {"log_uniform": [1e-4, 1e-1]}, "train.batch_size": {"log_uniform": [8, 64]},
                "model.hidden": {"choice": [[8], [16, 8]]}, "model.dropout": {"uniform": [0, 0.5]}})
    d = distributions(cfg)
    assert d["train.lr"] == od.FloatDistribution(1e-4, 1e-1, log=True)
    assert d["train.batch_size"] == od.IntDistribution(8, 64, log=True)
    assert d["model.hidden"] == od.CategoricalDistribution(["[8]", "[16, 8]"])
    assert d["model.dropout"] == od.FloatDistribution(0.0, 0.5)
    values = trial_values(cfg, {"model.hidden": "[16, 8]", "train.lr": 0.01})
    assert values == {"model.hidden": [16, 8], "train.lr": 0.01}
    tuned = apply_params(cfg, values)
    assert tuned.model.hidden == [16, 8] and tuned.train.lr == 0.01
    assert cfg.model.hidden == [16] and cfg.train.lr == 1e-3  # the original is untouched
