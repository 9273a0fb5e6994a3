"""Bad GAN configs and data: one line each, naming the key, before any run is recorded."""

from __future__ import annotations

import numpy as np
import pytest

from dlforge.config import load_config
from dlforge.errors import ConfigError
from dlforge.models.registry import build_model
from dlforge.pipeline import run
from dlforge.registry import Store
from dlforge.workspace import resolve_workspace

GAN = {"model": {"type": "dcgan", "width": 4, "latent_dim": 4},
       "preprocess": {"image": {"standardize": False}},
       "train": {"epochs": 1, "checkpoint": {"monitor": "val_frechet"}, "early_stopping": False}}


def with_(**changes):
    cfg = {k: dict(v) for k, v in GAN.items()}
    for key, value in changes.items():
        section, name = key.split("__")
        cfg[section] = {**cfg.get(section, {}), name: value}
    return cfg


@pytest.mark.parametrize(("changes", "message"), [
    ({"model__d_steps": 0}, "model.d_steps: must be greater than or equal to 1 (got 0)"),
    ({"model__loss": "hinge", "model__label_smoothing": 0.1},
     "model: label_smoothing: applies to the non_saturating loss only; set it to 0 with loss: "
     "hinge (got 0.1)"),
    ({"preprocess__image": {"standardize": True}},
     "preprocess.image: a DCGAN generator outputs pixels in [0, 1]; set scale: true and "
     "standardize: false (got scale: true, standardize: true)"),
    ({"train__l2": 0.1}, "train.l2: not applied to a GAN's two networks; use train.weight_decay "
     "(got 0.1)"),
    ({"train__checkpoint": {"monitor": "val_loss"}},
     "train.checkpoint.monitor: a GAN logs val_frechet, val_d_loss, val_g_loss, d_loss, g_loss; "
     "watch one of them, e.g. val_frechet (got 'val_loss')"),
    ({"train__early_stopping": {"monitor": "val_accuracy"}},
     "train.early_stopping.monitor: a GAN logs val_frechet, val_d_loss, val_g_loss, d_loss, "
     "g_loss; watch one of them, e.g. val_frechet (got 'val_accuracy')"),
    ({"tune__n_trials": 2}, "tune: a GAN run is not searched yet (the search ranks val_loss, "
     "val_accuracy or val_mae, which a GAN does not log); remove the tune section"),
])
def test_a_bad_gan_config_fails_to_load_naming_the_key(changes, message):
    with pytest.raises(ConfigError) as info:
        load_config(with_(**changes))
    assert str(info.value).splitlines() == [message]


def test_a_minimal_gan_config_gets_a_gans_defaults():
    cfg = load_config({"model": {"type": "dcgan"}, "data": {"source": "builtin", "name": "digits"}})
    assert (cfg.preprocess.image.scale, cfg.preprocess.image.standardize) == (True, False)
    assert cfg.train.checkpoint.monitor == cfg.train.early_stopping.monitor == "val_frechet"
    plateau = load_config({"model": {"type": "dcgan"}, "train": {"schedule": {"type": "plateau"}}})
    assert plateau.train.schedule.monitor == "val_frechet"


def test_what_a_gan_config_gives_is_kept():
    cfg = load_config({"model": {"type": "dcgan"}, "train": {
        "checkpoint": {"monitor": "val_g_loss", "top_k": 2}, "early_stopping": False}})
    assert (cfg.train.checkpoint.monitor, cfg.train.checkpoint.top_k) == ("val_g_loss", 2)
    assert cfg.train.early_stopping is None
    kept = load_config({"model": {"type": "dcgan"}, "train": {"early_stopping": {"patience": 2}}})
    assert (kept.train.early_stopping.monitor, kept.train.early_stopping.patience) == ("val_frechet", 2)


@pytest.mark.parametrize(("section", "message"), [
    ({"preprocess": {"image": None}}, "preprocess.image: must be a mapping of keys to values"),
    ({"train": {"early_stopping": True}}, "train.early_stopping: must be a mapping of keys to values"),
    ({"train": {"checkpoint": None}}, "train.checkpoint: must be a mapping of keys to values"),
    ({"train": None}, "train: must be a mapping of keys to values"),
])
def test_odd_sections_of_a_gan_config_get_the_schemas_message(section, message):
    with pytest.raises(ConfigError) as info:
        load_config({"model": {"type": "dcgan"}, **section})
    assert str(info.value).startswith(message)


def test_the_callers_dict_is_not_changed():
    from dlforge.config.schema import RunConfig

    raw = {"model": {"type": "dcgan"}, "train": {"schedule": {"type": "plateau"}}}
    RunConfig.model_validate(raw)
    assert raw == {"model": {"type": "dcgan"}, "train": {"schedule": {"type": "plateau"}}}


def test_other_models_keep_the_usual_defaults():
    cfg = load_config({"model": {"type": "basic_cnn"}})
    assert cfg.preprocess.image.standardize is True
    assert cfg.train.checkpoint.monitor == cfg.train.early_stopping.monitor == "val_loss"


@pytest.mark.parametrize("example", ["gan_digits", "gan_fashion_mnist"])
def test_the_gan_example_configs_load(example):
    cfg = load_config(f"examples/{example}.yaml")
    assert (cfg.model.type, cfg.train.checkpoint.monitor) == ("dcgan", "val_frechet")


@pytest.mark.parametrize(("shape", "message"), [
    ((1, 4, 4), "model.type: dcgan needs image sides of at least 8 pixels, divisible by 4 (two "
                "stride-2 stages); the data gives 4x4. Set data.image_size to such a size (e.g. 8)"),
    ((3, 30, 30), "model.type: dcgan needs image sides of at least 8 pixels, divisible by 4 (two "
                  "stride-2 stages); the data gives 30x30. Set data.image_size to such a size "
                  "(e.g. 32)"),
    ((30,), "model.type: dcgan needs image input (C, H, W); the data gives samples of shape "
            "(30,). A GAN generates images: use an image source (builtin digits, idx, cifar, "
            "image_folder)."),
])
def test_images_too_small_and_tables_are_refused(shape, message):
    cfg = load_config(GAN)
    with pytest.raises(ConfigError) as info:
        build_model(cfg.model, input_shape=shape, num_outputs=2)
    assert str(info.value) == message


def test_a_gan_on_a_table_is_refused_before_a_run_is_recorded():
    cfg = {**GAN, "data": {"source": "builtin", "name": "breast_cancer", "limit": 100}}
    with pytest.raises(ConfigError, match=r"^model.type: dcgan needs image input \(C, H, W\); "
                                          r"the data gives samples of shape \(30,\)"):
        run(cfg, progress=False)
    with Store.open(resolve_workspace()) as store:
        assert store.list_runs() == []
    assert not (resolve_workspace() / "artifacts" / "runs").exists()


def test_generated_images_have_the_data_shape_and_unit_range():
    cfg = load_config(GAN)
    model = build_model(cfg.model, input_shape=(1, 28, 28), num_outputs=10)
    images = model.sample(5).detach().numpy()
    assert images.shape == (5, 1, 28, 28)
    assert 0.0 <= images.min() and images.max() <= 1.0 and np.ptp(images) > 0


def _sections(form: str, **sections):
    """`sections` ({name: (dict, object)}) in one form: dicts as a YAML file gives them, or
    section objects as the Python API builds them."""
    return {name: pair[form == "object"] for name, pair in sections.items()}


@pytest.mark.parametrize("form", ["dict", "object"])
def test_a_gans_defaults_fill_what_the_sections_leave_out_dicts_and_objects_alike(form):
    """Section objects (`RunConfig(train=TrainConfig(...))`) kept val_loss and failed the
    monitor rule: the defaults filled only dicts."""
    from dlforge.config.schema import (
        CheckpointConfig,
        DCGANConfig,
        ImagePreprocess,
        PlateauSchedule,
        PreprocessConfig,
        RunConfig,
        TrainConfig,
    )

    cfg = RunConfig(model=DCGANConfig(), **_sections(
        form,
        preprocess=({"image": {"scale": True}}, PreprocessConfig(image=ImagePreprocess(scale=True))),
        train=({"epochs": 3, "checkpoint": {"top_k": 2}, "schedule": {"type": "plateau"}},
               TrainConfig(epochs=3, checkpoint=CheckpointConfig(top_k=2), schedule=PlateauSchedule()))))
    assert (cfg.preprocess.image.scale, cfg.preprocess.image.standardize) == (True, False)
    assert (cfg.train.epochs, cfg.train.checkpoint.top_k) == (3, 2)
    assert [cfg.train.checkpoint.monitor, cfg.train.early_stopping.monitor,
            cfg.train.schedule.monitor] == ["val_frechet"] * 3
    bare = RunConfig(model=DCGANConfig(), **_sections(form, train=({}, TrainConfig())))
    assert bare.train.checkpoint.monitor == bare.train.early_stopping.monitor == "val_frechet"


@pytest.mark.parametrize("form", ["dict", "object"])
def test_what_a_gans_sections_set_is_kept_and_judged_dicts_and_objects_alike(form):
    from pydantic import ValidationError

    from dlforge.config.schema import (
        CheckpointConfig,
        DCGANConfig,
        EarlyStoppingConfig,
        ImagePreprocess,
        PreprocessConfig,
        RunConfig,
        TrainConfig,
    )

    off = RunConfig(model=DCGANConfig(), **_sections(
        form, train=({"early_stopping": None}, TrainConfig(early_stopping=None))))
    assert (off.train.early_stopping, off.train.checkpoint.monitor) == (None, "val_frechet")
    with pytest.raises(ValidationError) as info:
        RunConfig(model=DCGANConfig(), **_sections(
            form,
            preprocess=({"image": {"standardize": True}},
                        PreprocessConfig(image=ImagePreprocess(standardize=True))),
            train=({"checkpoint": {"monitor": "val_loss"}, "early_stopping": {"monitor": "g_loss"}},
                   TrainConfig(checkpoint=CheckpointConfig(monitor="val_loss"),
                               early_stopping=EarlyStoppingConfig(monitor="g_loss")))))
    assert [e["msg"].removeprefix("Value error, ") for e in info.value.errors()] == [
        "preprocess.image: a DCGAN generator outputs pixels in [0, 1]; set scale: true and "
        "standardize: false (got scale: true, standardize: true)\n"
        "train.checkpoint.monitor: a GAN logs val_frechet, val_d_loss, val_g_loss, d_loss, "
        "g_loss; watch one of them, e.g. val_frechet (got 'val_loss')"]


def test_a_classifier_config_object_switched_to_a_gan_takes_the_gan_defaults():
    """As `RunConfig(data=cl.data, model=DCGANConfig(), ...)` does: the values the classifier's
    config never set are defaults, not choices (they were dumped as explicit values, and the
    switch was refused in three lines)."""
    from dlforge.config.schema import DCGANConfig, RunConfig

    classifier = load_config({"data": {"source": "builtin", "name": "digits"}, "train": {"epochs": 3}})
    switched = load_config(classifier, ["model.type=dcgan"])
    built = RunConfig(data=classifier.data, model=DCGANConfig(), train=classifier.train,
                      preprocess=classifier.preprocess)
    assert switched == built
    assert (switched.model.type, switched.train.epochs, switched.preprocess.image.standardize,
            switched.train.checkpoint.monitor, switched.train.early_stopping.monitor) == (
        "dcgan", 3, False, "val_frechet", "val_frechet")


def test_a_classifier_config_switched_to_a_gan_names_each_explicit_value_to_change():
    """Explicit values (a stored or saved config writes every one) are never rewritten: each
    one a GAN cannot take is one line naming the field and what a GAN needs."""
    stored = load_config({"data": {"source": "builtin", "name": "digits"}}).model_dump(mode="json")
    with pytest.raises(ConfigError) as info:
        load_config(stored, ["model.type=dcgan"])
    assert str(info.value).splitlines() == [
        "preprocess.image: a DCGAN generator outputs pixels in [0, 1]; set scale: true and "
        "standardize: false (got scale: true, standardize: true)",
        "train.checkpoint.monitor: a GAN logs val_frechet, val_d_loss, val_g_loss, d_loss, "
        "g_loss; watch one of them, e.g. val_frechet (got 'val_loss')",
        "train.early_stopping.monitor: a GAN logs val_frechet, val_d_loss, val_g_loss, d_loss, "
        "g_loss; watch one of them, e.g. val_frechet (got 'val_loss')"]
    fixed = load_config(stored, [
        "model.type=dcgan", "preprocess.image.standardize=false",
        "train.checkpoint.monitor=val_frechet", "train.early_stopping.monitor=val_frechet"])
    assert fixed.model.type == "dcgan"
