"""config/auto.py: what `model: auto` and `train.epochs: auto` pick for each kind of data."""

from __future__ import annotations

import pytest

from dlforge.config import load_config
from dlforge.config.auto import DataFacts, auto_choices, resolve_auto
from dlforge.errors import ConfigError


@pytest.mark.parametrize(("facts", "model"), [
    (DataFacts("image", (1, 8, 8), 1078),
     {"type": "basic_cnn", "filters": [32, 64], "dense": 128, "dropout": 0.1, "dense_dropout": 0.3}),
    (DataFacts("image", (1, 28, 28), 51000), {"type": "basic_cnn", "filters": [32, 64], "dense": 512}),
    (DataFacts("image", (3, 32, 32), 5000),
     {"type": "basic_cnn", "filters": [32, 64, 128], "dense": 256, "batch_norm": True}),
    (DataFacts("image", (1, 128, 128), 6600),
     {"type": "basic_cnn", "filters": [32, 64, 128], "dense": 256, "downscale": 2, "stem_stride": 2}),
    (DataFacts("image", (1, 64, 64), 6600),
     {"type": "basic_cnn", "filters": [32, 64, 128], "dense": 256, "stem_stride": 2}),
    (DataFacts("image", (1, 40, 40), 6600), {"type": "basic_cnn", "filters": [32, 64, 128], "dense": 256}),
    (DataFacts("image", (3, 300, 200), 500),
     {"type": "basic_cnn", "filters": [32, 64, 128], "dense": 128, "dropout": 0.1,
      "dense_dropout": 0.3, "batch_norm": True, "downscale": 5}),
    (DataFacts("image", (1, 3, 3), 500), {"type": "mlp", "hidden": [64, 32], "dropout": 0.1}),
    (DataFacts("table", (30,), 398), {"type": "mlp", "hidden": [64, 32], "dropout": 0.1}),
    (DataFacts("table", (8,), 30000), {"type": "mlp", "hidden": [256, 128]}),
    (DataFacts("text", (60,), 4000), {"type": "text_cnn"}),
])
def test_model_by_modality_shape_and_size(facts, model):
    assert resolve_auto(load_config({}), facts).model == load_config({"model": model}).model


def test_each_choice_is_one_line_with_its_reason():
    lines = [c.line() for c in auto_choices(load_config({}), DataFacts("image", (1, 28, 28), 51000))]
    assert lines == [
        "auto: model = {'type': 'basic_cnn', 'filters': [32, 64], 'dense': 512} (1x28x28 images "
        "-> a CNN with 2 conv blocks (side < 32 px); 51000 training samples (>= 20000) -> large "
        "widths)",
        "auto: train.epochs = 10 (399 steps per epoch -> about 3000 steps, within [10, 100] "
        "epochs; early stopping on val_loss ends it sooner)",
        "auto: train.time_budget_s = 1020.0 (0.02 s per training sample, within [120, 3600] s)",
        "auto: augment = {'preset': 'shifts', 'crop': {'padding': 1, 'p': 0.5}} (images -> small "
        "random shifts, safe for any images; no flips (a mirrored digit or letter changes "
        "meaning: augment.preset: natural adds them for photos); shifts of up to 1 px on 28 px)",
    ]


@pytest.mark.parametrize(("samples", "batch", "epochs", "budget"), [
    (1078, 128, 100, 120.0), (4000, 64, 48, 120.0), (51000, 128, 10, 1020.0), (500_000, 128, 10, 3600.0),
])
def test_epochs_and_budget_by_training_set_size(samples, batch, epochs, budget):
    cfg = resolve_auto(load_config({"train": {"batch_size": batch}}), DataFacts("table", (4,), samples))
    assert (cfg.train.epochs, cfg.train.time_budget_s) == (epochs, budget)
    assert cfg.train.early_stopping is not None


def test_what_the_config_names_is_kept():
    cfg = load_config({"model": {"type": "mlp", "hidden": [7]},
                       "train": {"epochs": "auto", "time_budget_s": 30}})
    resolved = resolve_auto(cfg, DataFacts("table", (4,), 1000))
    assert (resolved.model.hidden, resolved.train.epochs, resolved.train.time_budget_s) == ([7], 100, 30)
    fixed = load_config({"model": {"type": "mlp"}, "train": {"epochs": 3},
                         "augment": {"preset": "none"}})
    assert resolve_auto(fixed, DataFacts("table", (4,), 1000)) is fixed


def test_choices_are_printed_on_request(capsys):
    resolve_auto(load_config({"train": {"epochs": 4}}), DataFacts("table", (4,), 100), echo=True)
    assert capsys.readouterr().err == ("auto: model = {'type': 'mlp', 'hidden': [64, 32], "
                                       "'dropout': 0.1} (table data -> an MLP; 100 training "
                                       "samples (< 2000) -> small widths, light dropout)\n"
                                       "auto: augment.preset = none (table data: augmentation "
                                       "applies to images only)\n")


FIXED = {"model": {"type": "mlp"}, "train": {"epochs": 3}}


@pytest.mark.parametrize(("facts", "augment", "resolved"), [
    # digits, photos, large images: shifts of about side / 28, never flips by default
    (DataFacts("image", (1, 8, 8), 1000), {}, {"preset": "shifts", "crop": {"padding": 1, "p": 0.5, "pad_mode": "zeros"}}),
    (DataFacts("image", (3, 32, 32), 1000), {}, {"preset": "shifts", "crop": {"padding": 1, "p": 0.5, "pad_mode": "zeros"}}),
    (DataFacts("image", (1, 128, 128), 1000), {}, {"preset": "shifts", "crop": {"padding": 5, "p": 0.5, "pad_mode": "zeros"}}),
    # natural photos: flips too; ops the config gives are kept
    (DataFacts("image", (3, 32, 32), 1000), {"preset": "natural"},
     {"preset": "natural", "crop": {"padding": 1, "p": 0.5, "pad_mode": "zeros"}, "hflip": {"p": 0.5, "alternate": False}}),
    (DataFacts("image", (3, 32, 32), 1000), {"preset": "natural", "crop": {"padding": 4}},
     {"preset": "natural", "crop": {"padding": 4, "p": 1.0, "pad_mode": "zeros"}, "hflip": {"p": 0.5, "alternate": False}}),
    # a config that names its ops chose its augmentation
    (DataFacts("image", (1, 28, 28), 1000), {"rotate": {"degrees": 5}},
     {"preset": "none", "rotate": {"degrees": 5.0, "p": 0.5}}),
    (DataFacts("image", (1, 28, 28), 1000), {"preset": "none"}, {"preset": "none"}),
    (DataFacts("text", (60,), 1000), {}, {"preset": "none"}),
])
def test_augmentation_preset_by_data(facts, augment, resolved):
    cfg = resolve_auto(load_config({**FIXED, "augment": augment}), facts)
    assert cfg.augment.model_dump(exclude_none=True) == resolved
    assert resolve_auto(cfg, facts) is cfg  # resolved once for all: the run's record repeats


def test_a_gan_gets_no_augmentation_unless_its_config_names_it(capsys):
    """Shifted real images would teach the generator the shifts (augmentations leak)."""
    gan = {"model": {"type": "dcgan"}, "train": {"epochs": 3, "early_stopping": None,
                                                 "checkpoint": {"monitor": "val_frechet"}},
           "preprocess": {"image": {"scale": True, "standardize": False}}}
    cfg = resolve_auto(load_config(gan), DataFacts("image", (1, 8, 8), 1000), echo=True)
    assert cfg.augment.model_dump(exclude_none=True) == {"preset": "none"}
    assert capsys.readouterr().err == ("auto: augment.preset = none (a GAN learns the distribution "
                                       "of its training images: shifting the real images would "
                                       "teach the generator the shifts)\n")
    chosen = resolve_auto(load_config({**gan, "augment": {"preset": "shifts"}}),
                          DataFacts("image", (1, 8, 8), 1000))
    assert chosen.augment.crop.padding == 1


def test_a_preset_on_tables_is_refused():
    cfg = load_config({**FIXED, "augment": {"preset": "shifts"}})
    with pytest.raises(ConfigError, match=r"^augment.preset: shifts applies to images only; this "
                       r"data is table \(got shifts\). Use augment.preset: none$"):
        resolve_auto(cfg, DataFacts("table", (4,), 100))
