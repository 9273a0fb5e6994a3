from __future__ import annotations

import pytest

from dlforge.config import load_config
from dlforge.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"data": {"val_fraction": 1.5}}, "data.val_fraction: must be less than 1 (got 1.5)"),
        ({"train": {"lr": -0.1}}, "train.lr: must be greater than 0 (got -0.1)"),
        ({"train": {"lr": 0}}, "train.lr: must be greater than 0 (got 0)"),
        ({"train": {"bogus": 1}}, "train.bogus: unknown key (got 1)"),
        ({"train": {"optimizer": "adagrad"}},
         "train.optimizer: must be 'sgd', 'adam', 'adamw', 'rmsprop' or 'muon' (got 'adagrad')"),
        ({"train": {"schedule": {"type": "exponential", "decay_rate": 2}}},
         "train.schedule.decay_rate: must be less than 1 (got 2)"),
        ({"train": {"schedule": {"type": "polynomial"}}},
         "train.schedule: unknown type; allowed: 'constant', 'step', 'plateau', 'exponential', "
         "'inverse_time', 'cosine', 'linear', 'one_cycle' (got 'polynomial')"),
        ({"model": {"type": "vgg"}},
         "model: unknown type; allowed: 'mlp', 'basic_cnn', 'mobilenet', 'resnet_small', 'airbench', "
         "'text_pool', 'text_cnn', 'linear', 'autoencoder', 'dcgan', 'auto' (got 'vgg')"),
        ({"model": {"type": "mlp", "dropout": 2}}, "model.dropout: must be less than 1 (got 2)"),
        ({"data": {"source": "csv"}}, "data.path: required for source 'csv' (got null)"),
        ({"data": {"source": "idx", "name": "digits"}},
         "data.name: must be one of mnist, fashion_mnist for source 'idx' (got 'digits')"),
        ({"data": {"val_fraction": 0.5, "test_fraction": 0.5}},
         "data.val_fraction + data.test_fraction: must be less than 1 (got 0.5 + 0.5)"),
        ({"augment": {"hflip": {"p": 2}}}, "augment.hflip.p: must be less than or equal to 1 (got 2)"),
        ({"tune": {"space": {"train.lr": {"uniform": [1, 2], "choice": [1]}}}},
         "tune.space.train.lr: give exactly one of uniform, log_uniform, int, choice "
         "(got ['uniform', 'choice'])"),
        ({"extra_section": {}}, "extra_section: unknown key (got {})"),
    ],
)
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert str(info.value) == message


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_config({"train": {"lr": -1, "epochs": 0}})
    assert str(info.value).splitlines() == [
        "train.epochs: must be greater than or equal to 1 (got 0)",
        "train.lr: must be greater than 0 (got -1)",
    ]


def test_defaults_resolve():
    cfg = load_config(None)
    assert (cfg.data.source, cfg.data.name, cfg.model.type, cfg.train.optimizer) == (
        "builtin", "digits", "auto", "adam")
    assert cfg.train.early_stopping.patience == 5


def test_early_stopping_false_disables_it():
    assert load_config({"train": {"early_stopping": False}}).train.early_stopping is None


def test_yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: x\ntrain:\n  epochs: 3\n")
    cfg = load_config(path)
    assert (cfg.name, cfg.train.epochs) == ("x", 3)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: [3\n")
    with pytest.raises(ConfigError, match=r"run.yaml: not valid YAML at line 3"):
        load_config(path)


def test_yaml_top_level_must_be_mapping(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"the top level must be a mapping of sections \(got list\)"):
        load_config(path)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file 'nope.yaml' does not exist"):
        load_config("nope.yaml")


def test_overrides_apply_on_top_of_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: 3\n  lr: 0.01\n")
    cfg = load_config(path, ["train.epochs=1", "model.type=mlp", "model.hidden=[8, 4]"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.type, cfg.model.hidden) == (1, 0.01, "mlp", [8, 4])


def test_override_without_equals_sign():
    with pytest.raises(ConfigError, match=r"--set: expected KEY=VALUE such as train.epochs=2 \(got 'train.epochs'\)"):
        load_config(None, ["train.epochs"])


def test_override_value_is_validated():
    with pytest.raises(ConfigError, match=r"^train.epochs: must be greater than or equal to 1 \(got 0\)$"):
        load_config(None, ["train.epochs=0"])


@pytest.mark.parametrize(("key", "value"), [("path", "../data/x.csv"),
                                            ("exclude_file", "review/exclude.txt")])
def test_relative_data_paths_are_relative_to_the_config_file(tmp_path, monkeypatch, key, value):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "run.yaml"
    data = {"source": "npz", "path": "d.npz", key: value}
    path.write_text("data:\n" + "".join(f"  {k}: {v}\n" for k, v in data.items()))
    monkeypatch.chdir("/")
    assert getattr(load_config(path).data, key) == str(tmp_path / "conf" / value)


def test_relative_paths_given_with_set_are_stored_relative_to_the_working_directory(
        tmp_path, monkeypatch):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  source: csv\n  path: x.csv\n")
    monkeypatch.chdir(tmp_path / "..")
    cfg = load_config(path, ["data.path=shards dir", "data.exclude_file=out/ids.txt",
                             "data.cache_dir=~/cache"])
    assert (cfg.data.path, cfg.data.exclude_file, cfg.data.cache_dir) == (
        str(tmp_path.parent / "shards dir"), str(tmp_path.parent / "out/ids.txt"), "~/cache")
    assert load_config({"data": {"source": "csv", "path": "t.csv"}}).data.path == str(
        tmp_path.parent / "t.csv")


def test_an_exclude_file_only_the_working_directory_has_is_kept_with_a_warning(
        tmp_path, monkeypatch, caplog):
    (tmp_path / "configs").mkdir()
    (tmp_path / "ids.txt").write_text("3\n")
    path = tmp_path / "configs" / "run.yaml"
    path.write_text("data:\n  exclude_file: ids.txt\n")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING", logger="dlforge.config.load"):
        assert load_config(path).data.exclude_file == str(tmp_path / "ids.txt")
    assert [r.getMessage() for r in caplog.records] == [
        f"data.exclude_file: 'ids.txt' is read from the working directory ({tmp_path}), as "
        f"before; paths in a config file are relative to the file: write "
        f"'{tmp_path / 'ids.txt'}' there to keep this file"]
    (tmp_path / "configs" / "ids.txt").write_text("4\n")  # the file's own folder has one: it wins
    assert load_config(path).data.exclude_file == str(tmp_path / "configs" / "ids.txt")


def test_a_config_loads_in_a_removed_working_directory_unless_it_needs_it(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert load_config({"train": {"epochs": 2}}).train.epochs == 2
    assert load_config({"data": {"source": "csv", "path": "/abs/t.csv"}}).data.path == "/abs/t.csv"
    with pytest.raises(ConfigError) as err:
        load_config({"data": {"source": "csv", "path": "t.csv"}})
    assert str(err.value) == ("data.path: 't.csv' is relative to the working directory, which "
                              "no longer exists; give an absolute path")


def test_every_example_config_is_valid():
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
    assert {"digits.yaml", "digits_search.yaml", "sms_spam.yaml"} <= {e.name for e in examples}
    for example in examples:
        load_config(example)


def test_changing_the_model_type_starts_the_section_afresh(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  type: basic_cnn\n  filters: [8]\n  dense: 16\n")
    cfg = load_config(path, ["model.type=mlp", "model.hidden=[4]"])
    assert (cfg.model.type, cfg.model.hidden, cfg.model.dropout) == ("mlp", [4], 0.0)
    assert load_config(path, ["model.type=basic_cnn"]).model.filters == [8]


def test_a_run_config_passes_through_unchanged():
    cfg = load_config({"registry": {"model_name": "x", "url": "sqlite:///elsewhere.db"}})
    assert load_config(cfg) is cfg
    assert load_config(cfg, ["train.epochs=2"]).registry.url == "sqlite:///elsewhere.db"


def test_a_loaded_config_is_frozen():
    from pydantic import ValidationError

    cfg = load_config({})
    with pytest.raises(ValidationError, match="Instance is frozen"):
        cfg.train.lr = 0.5
    with pytest.raises(ValidationError, match="Instance is frozen"):
        cfg.tune = None
    assert cfg.train.lr == 1e-3


@pytest.mark.parametrize(("raw", "message"), [
    ({"registry": {"alias": "3"}},
     "registry.alias: must match the pattern ^[a-z][a-z0-9_-]*$: letters, digits, '_', '-' (got '3')"),
    ({"registry": {"alias": "latest"}},
     "registry.alias: 'latest' is reserved for the newest version; choose another alias (got 'latest')"),
    ({"registry": {"model_name": "a b"}},
     "registry.model_name: must match the pattern ^[A-Za-z0-9][A-Za-z0-9_.-]*$: letters, digits, "
     "'_', '-' (got 'a b')"),
])
def test_registry_names_are_checked_before_training(raw, message):
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert str(info.value) == message


@pytest.mark.parametrize(("old", "precision"), [(False, "fp32"), (True, "auto")])
def test_configs_stored_by_earlier_versions_still_load(old, precision):
    # dlforge 0.1.0 stored train.mixed_precision in every run's config
    cfg = load_config({"train": {"epochs": 2, "mixed_precision": old}})
    assert cfg.train.precision == precision
    assert "mixed_precision" not in cfg.train.model_dump()
    kept = load_config({"train": {"mixed_precision": False, "precision": "bf16"}})
    assert kept.train.precision == "bf16"


@pytest.mark.parametrize(("value", "message"), [
    (0, "train.epochs: must be greater than or equal to 1 (got 0)"),
    ("many", "train.epochs: must be a number or 'auto' (got 'many')"),
    (True, "train.epochs: must be an integer, not true or false (got true)"),
])
def test_epochs_take_a_number_or_auto_with_one_line_per_problem(value, message):
    with pytest.raises(ConfigError) as info:
        load_config({"train": {"epochs": value}})
    assert str(info.value) == message


def test_model_auto_is_the_default_and_has_a_shorthand():
    assert load_config({}).model.type == "auto"
    assert load_config({"model": "auto"}).model == load_config({}).model
    with pytest.raises(ConfigError, match=r"^tune\.space\.model\.hidden: not a tunable key of this "
                                          r"config \(model type 'auto': name a model\.type to tune"):
        load_config({"tune": {"space": {"model.hidden": {"choice": [[8], [16]]}}}})


@pytest.mark.parametrize(
    ("train", "lines"),
    [({"val_every": 0}, ["train.val_every: must be greater than or equal to 1 (got 0)"]),
     ({"val_every": 3, "early_stopping": {"monitor": "loss"}},
      ["train.early_stopping.monitor: 'loss' is logged every epoch, but train.val_every is 3, so "
       "it could pick an epoch that was not validated; watch a validation metric (e.g. "
       "'val_loss') or set train.val_every: 1"]),
     ({"val_every": 2, "early_stopping": False, "checkpoint": {"monitor": "accuracy"}},
      ["train.checkpoint.monitor: 'accuracy' is logged every epoch, but train.val_every is 2, so "
       "it could pick an epoch that was not validated; watch a validation metric (e.g. "
       "'val_accuracy') or set train.val_every: 1"])],
)
def test_val_every_refuses_monitors_of_every_epoch(train, lines):
    with pytest.raises(ConfigError) as info:
        load_config({"train": train})
    assert str(info.value).splitlines() == lines


def test_val_every_takes_validation_monitors_and_training_ones_at_1():
    assert load_config({"train": {"val_every": 4}}).train.val_every == 4
    cfg = load_config({"train": {"early_stopping": {"monitor": "loss"}}})
    assert (cfg.train.val_every, cfg.train.early_stopping.monitor) == (1, "loss")


def test_class_names_given_as_whole_numbers_are_their_digits():
    cfg = load_config({"data": {"classes": [0, 1, 2], "positive_class": 2}})
    assert cfg.data.classes == ["0", "1", "2"] and cfg.data.positive_class == "2"
    assert load_config({"data": {"binary_from": {1: [7, 9]}}}).data.binary_from == {"1": ["7", "9"]}
    anomaly = load_config({"data": {"normal_classes": [3], "anomaly_classes": [4, 5]},
                           "model": {"type": "autoencoder"},
                           "evaluate": {"threshold": {"objective": "percentile", "value": 99}}})
    assert (anomaly.data.normal_classes, anomaly.data.anomaly_classes) == (["3"], ["4", "5"])
    assert load_config(None, ["data.classes=[0,1]"]).data.classes == ["0", "1"]
    with pytest.raises(ConfigError) as err:  # a yes/no or a number with a fraction is not a name
        load_config({"data": {"classes": [True, 1.5]}})
    assert str(err.value).splitlines() == [
        "data.classes.0: must be a valid string (got true)",
        "data.classes.1: must be a valid string (got 1.5)"]


@pytest.mark.parametrize(("override", "line"), [
    ("data.streaming=maybe", "data.streaming: must be true, false or 'auto' (got 'maybe')"),
    ("data.streaming=3", "data.streaming: must be true, false or 'auto' (got 3)"),
    ("train.epochs=two", "train.epochs: must be a number or 'auto' (got 'two')"),
])
def test_a_value_of_neither_member_of_an_auto_union_names_both(override, line):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == line
