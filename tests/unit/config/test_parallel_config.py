"""`model.parallel` (pipeline stages): its rules refuse, in one line each, what cannot run;
the stage count the config allows is the cut points the built model has."""

from __future__ import annotations

import pytest
from torch import nn

from dlforge.config import load_config
from dlforge.config.parallel_schema import weighted_layers
from dlforge.errors import ConfigError
from dlforge.models import build_model
from dlforge.train.pipeline_step import CUT_BEFORE, chain_of, microbatches_for, split_chain

BASE = {"data": {"name": "digits"}, "model": {"type": "mlp", "hidden": [32, 16]},
        "train": {"batch_size": 32}}


def _load(parallel: dict, model: dict | None = None, train: dict | None = None, **more):
    return load_config({**BASE, **more, "model": {**(model or BASE["model"]), "parallel": parallel},
                        "train": {**BASE["train"], **(train or {})}})


def test_a_valid_split_loads_with_its_defaults():
    cfg = _load({"stages": 3, "microbatches": 8})
    assert cfg.model.parallel.model_dump() == {"stages": 3, "microbatches": 8, "schedule": "gpipe"}


@pytest.mark.parametrize(("parallel", "model", "train", "message"), [
    ({"stages": 4}, None, None, "model.parallel.stages: 4 stages but model mlp has 3 "
     "dense/convolution layers to cut before; use at most 3"),
    ({"stages": 2, "microbatches": 5}, None, None, "model.parallel.microbatches: 5 does not "
     "divide train.batch_size 32; use one of [1, 2, 4, 8, 16, 32]"),
    ({"stages": 3, "microbatches": 2, "schedule": "1f1b"}, None, None, "model.parallel.schedule: "
     "1f1b needs microbatches >= stages (got 2 < 3); raise microbatches or use gpipe"),
    ({"stages": 2}, {"type": "mobilenet"}, None, "model.parallel: splits a chain of layers (mlp, "
     "basic_cnn); model.type 'mobilenet' is not one. Remove model.parallel or change model.type"),
    ({"stages": 2}, None, {"precision": "bf16"}, "train.precision: model.parallel stages train "
     "in fp32; use fp32 or auto (got 'bf16')"),
    ({"stages": 2}, None, {"grad_clip": 1.0}, "train.grad_clip: model.parallel clips no global "
     "norm across stages; remove it (got 1.0)"),
])
def test_a_split_that_cannot_run_is_refused_in_one_line(parallel, model, train, message):
    with pytest.raises(ConfigError) as err:
        _load(parallel, model, train)
    assert str(err.value).splitlines() == [message]


def test_one_stage_is_not_a_split():
    with pytest.raises(ConfigError, match=r"^model\.parallel\.stages: .*greater than or equal to 2"):
        _load({"stages": 1})


def test_a_search_does_not_combine_with_a_split():
    with pytest.raises(ConfigError) as err:
        _load({"stages": 2}, tune={"n_trials": 2, "space": {"train.lr": {"choice": [0.1, 0.2]}}})
    assert str(err.value).splitlines() == [
        "tune: not supported with model.parallel (a pipeline run trains one model across "
        "processes); remove one of them"]


def test_a_torch_whose_schedules_sum_microbatch_gradients_is_refused(monkeypatch):
    from dlforge.config import parallel_schema
    monkeypatch.setattr(parallel_schema.metadata, "version", lambda name: "2.6.0+cpu")
    assert parallel_schema.torch_release() == (2, 6)
    with pytest.raises(ConfigError) as err:
        _load({"stages": 2})
    assert str(err.value).splitlines() == [
        "model.parallel: needs torch >= 2.7 (its pipeline schedules average micro-batch "
        "gradients); torch 2.6 is installed. Upgrade torch or remove model.parallel"]


def test_a_weight_average_does_not_combine_with_a_split():
    with pytest.raises(ConfigError) as err:
        _load({"stages": 2}, train={"ema": {"decay": 0.99}, "early_stopping": None})
    assert str(err.value).splitlines() == [
        "train.ema: not supported with model.parallel (a pipeline run trains one model across "
        "processes); remove one of them"]


@pytest.mark.parametrize("model", [{"type": "mlp", "hidden": [32, 16, 8]},
                                   {"type": "basic_cnn", "filters": [4, 8], "batch_norm": True},
                                   {"type": "basic_cnn", "filters": [4], "downscale": 2}])
def test_the_rule_counts_the_cut_points_the_built_model_has(model):
    cfg = load_config({**BASE, "model": model})
    net = build_model(cfg.model, input_shape=(1, 8, 8) if model["type"] != "mlp" else (64,),
                      num_outputs=10)
    cuts = sum(isinstance(layer, CUT_BEFORE) for layer in chain_of(net))
    assert cuts == weighted_layers(cfg.model) > 0
    assert len(split_chain(chain_of(net), cuts)) == cuts


def test_stages_are_cut_to_even_out_their_parameters():
    layers = [nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
              nn.Linear(128, 10)]
    # 16,640 | 32,896 + 1,290 beats 49,536 | 1,290
    assert split_chain(layers, 2) == [(0, 3), (3, 6)]
    assert split_chain(layers, 3) == [(0, 3), (3, 5), (5, 6)]
    with pytest.raises(ConfigError, match=r"^model\.parallel\.stages: 4 stages but the model has 3 "):
        split_chain(layers, 4)


def test_a_model_that_is_no_chain_is_refused():
    with pytest.raises(ConfigError, match=r"^model\.parallel: Sequential is not a chain of layers"):
        chain_of(nn.Sequential(nn.Linear(2, 2)))


@pytest.mark.parametrize(("n", "wanted", "got"), [(32, 4, 4), (30, 4, 3), (2, 8, 2), (7, 4, 1)])
def test_a_short_batch_is_cut_into_the_largest_divisor_up_to_the_micro_batches(n, wanted, got):
    assert microbatches_for(n, wanted) == got
