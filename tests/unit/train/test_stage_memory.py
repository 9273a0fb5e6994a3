"""What a pipeline stage's process holds (train/stage_memory.py), in one process: the cut of
the state dict into stages, a meta-built model allocating one stage, emptying the others with
their optimizer state, and a stage's checkpoint payload restoring without the other weights."""

from __future__ import annotations

import torch
from test_loop_support import train_cfg
from torch import nn

from dlforge.models.mlp import MLP
from dlforge.models.target_scale import TargetScale
from dlforge.train import stage_memory
from dlforge.train.checkpoint_io import checkpoint_payload, restore_payload
from dlforge.train.pipeline_step import chain_of, split_chain
from dlforge.train.schedules import LRSchedule
from dlforge.train.state import LoopState


def _stages(model: nn.Module) -> list[list[nn.Module]]:
    layers = chain_of(model)
    return [layers[a:b] for a, b in split_chain(layers, 2)]


def _state(model: nn.Module) -> LoopState:
    cfg = train_cfg(optimizer="adam", lr=0.01)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 8)).sum().backward()
    optimizer.step()
    return LoopState(model=model, optimizer=optimizer, schedule=LRSchedule(optimizer, cfg, 4),
                     loss_fn=None, cfg=cfg, task=None, device=torch.device("cpu"))


def test_every_stage_holds_its_layers_and_the_rescaling_that_belongs_to_no_stage():
    model = TargetScale(MLP((8,), 1, hidden=[16, 12]), 1)
    keys = stage_memory.stage_keys(model, _stages(model))
    assert keys == [["mean", "std", "net.body.1.weight", "net.body.1.bias"],
                    ["mean", "std", "net.body.3.weight", "net.body.3.bias",
                     "net.head.weight", "net.head.bias"]]


def test_a_meta_built_model_allocates_only_its_stage():
    with torch.device("meta"):
        model = MLP((8,), 3, hidden=[16, 12])
    model = stage_memory.materialized(model, _stages(model)[0])
    assert [tuple(p.shape) for p in model.parameters()] == [(0,), (0,), (12, 16), (12,), (3, 12), (3,)]
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_emptying_the_other_stage_frees_its_weights_and_adam_moments():
    model = MLP((8,), 3, hidden=[16, 12])
    state = _state(model)
    assert stage_memory.held_numel(state) == (387, 774)
    keys = stage_memory.stage_keys(model, _stages(model))
    stage_memory.empty_others(state, keys[1])
    assert stage_memory.held_numel(state) == (243, 486)
    assert len(list(model.parameters())) == 6  # the Parameter objects stay


def test_a_stage_payload_restores_its_optimizer_state_and_loop_state_without_other_weights():
    torch.manual_seed(0)
    whole = _state(MLP((8,), 3, hidden=[16, 12]))
    whole.epoch, whole.history, whole.lr_history = 1, [{"loss": 1.0}, {"loss": 0.5}], [0.01]
    keys = stage_memory.stage_keys(whole.model, _stages(whole.model))
    payload = stage_memory._for_stage(checkpoint_payload(whole, model=False), whole, keys[1])
    assert payload["model"] == {} and sorted(payload["optimizer"]["state"]) == [2, 3, 4, 5]
    other = _state(MLP((8,), 3, hidden=[16, 12]))
    restore_payload(payload, other, strict=False)
    assert (other.epoch, other.history, other.lr_history) == (1, whole.history, [0.01])
    moment = whole.optimizer.state[whole.model.head.weight]["exp_avg"]
    assert torch.equal(other.optimizer.state[other.model.head.weight]["exp_avg"], moment)


def test_rank_1_builds_a_basic_cnn_on_meta_and_allocates_only_its_stage(monkeypatch):
    from dlforge.config.model_schema import BasicCNNConfig
    from dlforge.config.parallel_schema import ParallelConfig
    from dlforge.models.registry import build_model
    from dlforge.train import distributed
    from dlforge.train.pipeline_step import PipelineStep

    def build() -> nn.Module:
        return build_model(BasicCNNConfig(filters=[4, 8]), input_shape=(1, 8, 8), num_outputs=3)

    whole = build()
    step = PipelineStep(ParallelConfig(stages=2))
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    model = step.built(build)
    layers = chain_of(whole)
    assert step.bounds == split_chain(layers, 2)
    (a, b) = step.bounds[1]
    stage = sum(p.numel() for layer in layers[a:b] for p in layer.parameters())
    assert 0 < stage < sum(p.numel() for p in whole.parameters())
    assert sum(p.numel() for p in model.parameters()) == stage
    assert [tuple(t.shape) for t in model.state_dict().values()] == [
        tuple(t.shape) if k in stage_memory.stage_keys(whole, _stages(whole))[1] else (0,)
        for k, t in whole.state_dict().items()]
