"""Transfer learning through the one path: the source's weights and preprocessing, a new head
for new classes, a frozen backbone (and BatchNorm statistics) or a backbone at a lower LR."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from drift_models import CHURN, rows, table_bundle
from torch import nn

from dlforge.config import load_config
from dlforge.config.schema import TrainConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.errors import DataError
from dlforge.lifecycle.transfer import (
    TransferStep,
    check_fits,
    find_head,
    head_layers,
    transfer_plan,
)
from dlforge.models.basic_cnn import BasicCNN
from dlforge.models.mlp import MLP
from dlforge.models.target_scale import TargetScale
from dlforge.pipeline import run
from dlforge.registry import Store, load_bundle
from dlforge.train.optim import build_optimizer
from dlforge.train.steps import SupervisedStep

SOURCE = {"name": "five", "data": {"source": "builtin", "name": "digits", "classes": list("01234")},
          "model": {"type": "basic_cnn", "filters": [8], "dense": 16, "batch_norm": True},
          "train": {"epochs": 2, "batch_size": 64, "lr": 0.005, "num_threads": 1},
          "evaluate": {"baseline": False}}
TARGET = {**SOURCE, "name": "other", "data": {**SOURCE["data"], "classes": list("56789")},
          "model": {"type": "mlp"},  # replaced by the source's architecture
          "train": {**SOURCE["train"], "epochs": 2}}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    ws = tmp_path_factory.mktemp("transfer")
    run(SOURCE, workspace=ws, progress=False)
    return ws


def bundle(ws, ref: str):
    with Store.open(ws) as store:
        return load_bundle(store.resolve(ref).bundle_path)


def weights(ws, ref: str) -> dict[str, torch.Tensor]:
    return bundle(ws, ref).model.state_dict()


def test_feature_extraction_trains_a_new_head_only(source):
    result = run({**TARGET, "transfer": {"source": "five@1", "mode": "feature_extraction"}},
                 workspace=source, progress=False)
    before, after = weights(source, "five@1"), weights(source, result.model_ref)
    assert set(before) == set(after)
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    # the new head is the dense classifier and the output layer; the conv backbone, its
    # BatchNorm running statistics included, is bit-identical
    assert changed == ["classifier.1.bias", "classifier.1.weight", "head.bias", "head.weight"]
    # the source's preprocessing, as fitted on digits 0-4 (refitted on 5-9 it would differ)
    assert bundle(source, result.model_ref).preprocessor.to_dict() == bundle(source, "five@1").preprocessor.to_dict()
    with Store.open(source) as store:
        version = store.resolve(result.model_ref)
        run_cfg = store.get_run(result.run_id).config
    assert version.parent_version is None  # another model's name: lineage in trained_on
    assert version.metrics["trained_on"]["transfer"] == {
        "source": "five@1", "mode": "feature_extraction", "new_head": True}
    assert run_cfg["model"]["type"] == "basic_cnn" and run_cfg["transfer"]["source"] == "five@1"


def test_finetune_of_the_same_model_records_its_parent_and_moves_the_backbone(source):
    # no early stopping: restoring a better head-only epoch 0 would hide the backbone's step
    result = run({**SOURCE, "transfer": {"source": "five@1", "freeze_epochs": 1},
                  "train": {**SOURCE["train"], "early_stopping": None}},
                 workspace=source, progress=False)
    with Store.open(source) as store:
        assert store.resolve(result.model_ref).parent_version == 1
        assert store.resolve(result.model_ref).metrics["trained_on"]["transfer"]["new_head"] is False
    before, after = weights(source, "five@1"), weights(source, result.model_ref)
    assert not torch.equal(before["features.0.0.weight"], after["features.0.0.weight"])


def test_a_source_that_cannot_take_the_data_is_refused(source, tmp_path):
    with Store.open(source) as store:
        before = len(store.list_runs())
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", x_train=rng.integers(0, 17, (60, 1, 12, 12)).astype(np.float64),
             y_train=np.arange(60) % 5)
    bigger = {**TARGET, "data": {"source": "npz", "path": str(tmp_path / "big.npz")},
              "transfer": {"source": "five@1"}}
    with pytest.raises(DataError) as info:
        run(bigger, workspace=source, progress=False)
    assert str(info.value) == (
        "transfer.source: five@1 takes inputs of shape [1, 8, 8] (raw [1, 8, 8]); this data's "
        "samples are [1, 12, 12] (input: expected images of shape (1, 8, 8), got (1, 12, 12)); "
        "resize the data (data.image_size) or choose a source trained on this shape")
    table = {**TARGET, "data": {"source": "builtin", "name": "wine"}, "transfer": {"source": "five@1"}}
    with pytest.raises(DataError, match=r"^transfer.source: five@1 takes image inputs, this data "
                                        r"is table; choose a source trained on table data$"):
        run(table, workspace=source, progress=False)
    with Store.open(source) as store:
        assert len(store.list_runs()) == before  # refused before any run was recorded


def test_a_table_source_missing_a_column_names_the_columns_not_the_image_size(tmp_path):
    source = load_bundle(table_bundle(tmp_path / "b", reference=False))
    fewer = rows(10).drop(columns=["a"])
    data = Dataset(fewer, np.zeros(10, dtype=np.int64), CHURN, "table", Provenance("test", {}, {}))
    with pytest.raises(DataError) as info:
        check_fits(source, "churn@1", data)
    assert str(info.value) == (
        "transfer.source: churn@1 takes inputs of shape [5] (raw None); this data's samples are "
        "[2] (input: missing column 'a' (the model was trained on columns ['a', 'b', 'color'])); "
        "give it the columns the source was trained on (data.feature_columns) or choose a source "
        "trained on this shape")


def test_a_text_source_refusing_the_data_names_the_text_column(tmp_path):
    def refuse(x):
        raise ValueError("input: expected texts, got 3 numbers")

    source = SimpleNamespace(input_spec={"modality": "text"}, input_shape=(64,),
                             preprocessor=SimpleNamespace(kind="text", transform=refuse))
    data = Dataset(np.array(["a b", "c"], dtype=object), np.zeros(2, dtype=np.int64), CHURN,
                   "text", Provenance("test", {}, {}))
    with pytest.raises(DataError) as info:
        check_fits(source, "spam@1", data)
    assert str(info.value) == (
        "transfer.source: spam@1 takes inputs of shape [64] (raw None); this data's samples are "
        "[] (input: expected texts, got 3 numbers); give it the texts in the column the source "
        "read (data.text_column) or choose a source trained on this shape")


def test_the_backbone_gets_its_own_lr_group():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    for p in model[0].parameters():
        p.lr_scale = 0.01
    opt = build_optimizer(model, TrainConfig(optimizer="sgd", lr=0.1))
    assert [(g["name"], len(g["params"]), g["lr"]) for g in opt.param_groups] == [
        ("decay", 1, 0.1), ("decay*0.01", 1, pytest.approx(0.001)),
        ("no_decay", 1, 0.1), ("no_decay*0.01", 1, pytest.approx(0.001))]


@pytest.mark.parametrize(("mode", "freeze_epochs", "frozen"), [
    ("feature_extraction", 1, [True, True, True]),
    ("finetune", 1, [True, False, False]),
    ("finetune", 0, [False, False, False]),
])
def test_the_backbone_is_frozen_for_the_head_only_epochs(mode, freeze_epochs, frozen):
    step = TransferStep(mode, freeze_epochs)
    assert [step.frozen(epoch) for epoch in range(3)] == frozen


def test_the_finetune_command_trains_from_the_source(source, tmp_path, capsys):
    import yaml

    from dlforge.cli import main

    config = tmp_path / "other.yaml"
    config.write_text(yaml.safe_dump({**TARGET, "name": "cli-other"}))
    assert main(["-w", str(source), "finetune", str(config), "--from", "five@1",
                 "--set", "transfer.mode=feature_extraction"]) == 0
    assert "model:  cli-other@1  (" in capsys.readouterr().out
    assert main(["-w", str(source), "finetune", str(config), "--from", "five@production"]) == 1
    assert capsys.readouterr().err == (
        "error: Model 'five' has no alias 'production'. Available aliases: none. Use `dlforge "
        "models show five` to see all.\n")


def plan_of(ws, cfg: dict):
    with Store.open(ws) as store:
        return transfer_plan(load_config(cfg), store, cfg["name"]).plan


def test_a_new_head_gets_a_fresh_classifier_and_a_zero_output_layer(source):
    """The source's dense units were trained for its classes (most never fire on others):
    a new head re-initialises them; the same classes keep them."""
    src = weights(source, "five@1")
    fresh = plan_of(source, {**TARGET, "transfer": {"source": "five@1"}}).build().state_dict()
    assert not torch.equal(fresh["classifier.1.weight"], src["classifier.1.weight"])
    assert float(fresh["classifier.1.weight"].abs().sum()) > 0
    assert float(fresh["head.weight"].abs().sum()) == 0 and float(fresh["head.bias"].abs().sum()) == 0
    assert all(torch.equal(fresh[k], src[k]) for k in src if k.startswith("features."))
    kept = plan_of(source, {**SOURCE, "transfer": {"source": "five@1"}}).build().state_dict()
    assert all(torch.equal(kept[k], src[k]) for k in src)


def test_the_finetuned_backbone_trains_at_the_scaled_lr_and_the_head_at_lr(source):
    model = plan_of(source, {**TARGET, "transfer": {"source": "five@1", "backbone_lr_mult": 0.1}}).build()
    opt = build_optimizer(model, TrainConfig(optimizer="adam", lr=0.01))
    assert [(g["name"], len(g["params"]), g["lr"]) for g in opt.param_groups] == [
        ("decay", 2, 0.01), ("decay*0.1", 2, pytest.approx(0.001)),
        ("no_decay", 2, 0.01), ("no_decay*0.1", 6, pytest.approx(0.001))]


def test_the_head_only_epochs_leave_the_backbone_bit_identical(source):
    """A finetune epoch with the backbone frozen: no gradient, no weight decay (adamw), no
    BatchNorm statistics move; the head trains."""
    train = {**SOURCE["train"], "epochs": 1, "optimizer": "adamw", "weight_decay": 0.1}
    result = run({**TARGET, "train": train, "transfer": {"source": "five@1", "freeze_epochs": 1}},
                 workspace=source, progress=False)
    before, after = weights(source, "five@1"), weights(source, result.model_ref)
    backbone = [k for k in before if k.startswith("features.")]
    assert len(backbone) == 14  # 2 convs (weight, bias), each with BatchNorm (5 tensors)
    assert [k for k in backbone if not torch.equal(before[k], after[k])] == []
    assert float(after["head.weight"].abs().sum()) > 0


@pytest.mark.parametrize(("model", "names"), [
    (BasicCNN((1, 8, 8), 3, filters=[4], dense=8), ["classifier", "head"]),
    (MLP((4,), 3, hidden=[8]), ["head"]),
    (TargetScale(MLP((4,), 1, hidden=[8]), 1), ["net.head"]),
])
def test_the_head_layers_of_each_kind_of_model(model, names):
    assert [name for name, _ in head_layers(model)] == names
    assert find_head(model)[0] == names[-1]


@pytest.mark.parametrize(("mode", "seen"), [
    ("finetune", [({False}, {True}, {False}), ({True}, {True}, {True})]),
    ("feature_extraction", [({False}, {True}, {True}), ({False}, {True}, {True})]),
])
def test_a_frozen_backbone_runs_in_eval_mode_and_the_head_in_train_mode(monkeypatch, mode, seen):
    """While frozen the backbone's dropout is off and its BatchNorm uses its running statistics,
    as at inference; the head (dense classifier and output layer) trains with its dropout on.
    (Feature extraction's backbone gets requires_grad False once, in `start_from`.)"""
    model = BasicCNN((1, 8, 8), 3, filters=[4], dense=8, batch_norm=True)
    got = []
    monkeypatch.setattr(SupervisedStep, "train_batch", lambda *_: got.append((
        {m.training for m in model.features.modules()},
        {m.training for name in ("classifier", "head") for m in model.get_submodule(name).modules()},
        {p.requires_grad for p in model.features.parameters()})))
    state = SimpleNamespace(model=model, epoch=-1)
    step = TransferStep(mode, freeze_epochs=1)
    step.bind(state)
    for state.epoch in (-1, 0):  # the batches of epochs 0 and 1
        model.train()  # as the loop does at each epoch's start
        step.train_batch(state, None, None, None)
    assert got == seen


def test_a_gan_source_is_refused_in_one_line_before_any_run(tmp_path, capsys, monkeypatch):
    """The line had lost its fix, and the GAN's weights were loaded before it."""
    from tests.unit.export.export_models import register

    from dlforge.cli import main
    from dlforge.config.schema import DCGANConfig
    from dlforge.lifecycle import transfer

    register(tmp_path / "ws", "gan", DCGANConfig(width=4, latent_dim=4))
    monkeypatch.setattr(transfer, "load_bundle", lambda *a, **k: pytest.fail("loaded the weights"))
    assert main(["-w", str(tmp_path / "ws"), "finetune", "examples/digits.yaml", "--from", "gan"]) == 2
    assert capsys.readouterr().err == (
        "error: transfer.source (--from): gan@1 is a GAN (model.type dcgan): it generates "
        "images and predicts nothing; fine-tune from a classifier or a regressor (`dlforge models "
        "list` shows each model's type)\n")
    with Store.open(tmp_path / "ws") as store:
        assert store.list_runs() == []  # three lines on the GAN's own rules before
