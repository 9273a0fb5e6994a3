"""Values the schema's types would otherwise let through: inf/NaN, booleans as numbers, and
config files that are not what they seem (repeated keys, not UTF-8, a directory, empty)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dlforge.cli import main
from dlforge.config import load_config
from dlforge.config.load import read_yaml
from dlforge.errors import ConfigError


def _message(source=None, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(source, list(overrides))
    return str(info.value)


@pytest.mark.parametrize(("raw", "message"), [
    ({"train": {"lr": float("inf")}}, "train.lr: must be a finite number (got inf)"),
    ({"train": {"lr": "nan"}}, "train.lr: must be a finite number (got 'nan')"),
    ({"serve": {"max_body_mb": float("inf")}}, "serve.max_body_mb: must be a finite number (got inf)"),
    ({"augment": {"hflip": {"p": float("nan")}}}, "augment.hflip.p: must be a finite number (got nan)"),
    ({"train": {"schedule": {"type": "one_cycle", "div_factor": float("inf")}}},
     "train.schedule.div_factor: must be a finite number (got inf)"),
    ({"tune": {"space": {"train.lr": {"uniform": [0.001, float("inf")]}}}},
     "tune.space.train.lr.uniform: must be a finite number (got [0.001, inf])"),
    ({"tune": {"space": {"train.lr": {"choice": [0.1, float("nan")]}}}},
     "tune.space.train.lr.choice: must be a finite number (got [0.1, nan])"),
    ({"tune": {"timeout_s": float("-inf")}}, "tune.timeout_s: must be a finite number (got -inf)"),
])
def test_inf_and_nan_are_refused_everywhere(raw, message):
    assert _message(raw) == message


def test_a_number_too_large_for_a_float_is_refused(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 1e400\n")  # YAML 1.1 reads this as text; pydantic as inf
    assert _message(path) == "train.lr: must be a finite number (got '1e400')"


@pytest.mark.parametrize(("raw", "message"), [
    ({"train": {"epochs": True}}, "train.epochs: must be an integer, not true or false (got true)"),
    ({"train": {"lr": True}}, "train.lr: must be a number, not true or false (got true)"),
    ({"seed": False}, "seed: must be an integer, not true or false (got false)"),
    ({"data": {"limit": True}}, "data.limit: must be an integer, not true or false (got true)"),
    ({"model": {"type": "mlp", "hidden": [8, True]}},
     "model.hidden: must be an integer, not true or false (got [8, true])"),
    ({"train": {"schedule": {"type": "step", "step_epochs": True}}},
     "train.schedule.step_epochs: must be an integer, not true or false (got true)"),
    ({"tune": {"space": {"train.epochs": {"int": [1, True]}}}},
     "tune.space.train.epochs.int: must be an integer, not true or false (got [1, true])"),
])
def test_booleans_are_not_numbers(raw, message):
    assert _message(raw) == message


def test_number_problems_of_one_section_are_reported_together():
    assert _message({"train": {"epochs": True, "lr": float("inf")}}).splitlines() == [
        "train.epochs: must be an integer, not true or false (got true)",
        "train.lr: must be a finite number (got inf)",
    ]


def test_booleans_stay_allowed_where_a_boolean_is_meant():
    cfg = load_config({"train": {"nesterov": True, "early_stopping": False},
                       "model": {"type": "basic_cnn"}, "tune": {"space": {"model.batch_norm": {"choice": [True, False]}}}})
    assert (cfg.train.nesterov, cfg.train.early_stopping) == (True, None)
    assert cfg.tune.space["model.batch_norm"].choice == [True, False]


def test_overrides_are_parsed_as_yaml_and_checked_the_same_way():
    cfg = load_config(None, ["train.epochs=3", "train.lr=0.01", "model.type=mlp", "model.hidden=[4]"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.hidden) == (3, 0.01, [4])
    assert _message(None, ["train.epochs=true"]) == \
        "train.epochs: must be an integer, not true or false (got true)"
    assert _message(None, ["serve.max_body_mb=.inf"]) == \
        "serve.max_body_mb: must be a finite number (got inf)"
    assert _message(None, ["train.lr=.nan"]) == "train.lr: must be a finite number (got nan)"


def test_assignments_cannot_slip_bad_numbers_in():
    cfg = load_config({})  # frozen: no assignment gets past the checks of loading
    with pytest.raises(ValidationError, match=r"Instance is frozen"):
        cfg.train.epochs = True
    with pytest.raises(ValidationError, match=r"Instance is frozen"):
        cfg.serve.max_body_mb = float("inf")
    assert (cfg.train.epochs, cfg.serve.max_body_mb) == ("auto", 10.0)


# ----------------------------------------------------------------------------------- files


def test_a_key_given_twice_names_the_key_and_both_lines(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.001\n")
    assert _message(path) == (f"{path}: key 'lr' is given twice in the same mapping "
                              f"(lines 2 and 4); keep one")


def test_a_section_given_twice_is_refused(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 0.1\nname: x\ntrain:\n  epochs: 2\n")
    assert _message(path) == (f"{path}: key 'train' is given twice in the same mapping "
                              f"(lines 1 and 4); keep one")


def test_the_same_key_in_different_sections_and_merge_overrides_are_fine(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  early_stopping: &es {patience: 2, monitor: val_loss}\n"
                    "  checkpoint:\n    <<: {monitor: val_loss, top_k: 2}\n    monitor: val_accuracy\n")
    cfg = load_config(path)
    assert (cfg.train.early_stopping.monitor, cfg.train.checkpoint.monitor,
            cfg.train.checkpoint.top_k) == ("val_loss", "val_accuracy", 2)


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    assert _message(path) == f"{path}: not UTF-8 text (byte 0xe9 at offset 9); save the file as UTF-8"


def test_a_directory_is_not_a_config_file(tmp_path):
    assert _message(tmp_path) == f"config file '{tmp_path}' is a directory; give a YAML file"


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_an_empty_file_is_an_error_not_the_defaults(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert _message(path) == (f"{path}: the file is empty (or only comments); give at least one "
                              f"section, or no config file to use the defaults")


# ------------------------------------------------------------------------------------- CLI


def test_cli_config_problems_exit_2_with_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert main(["-w", str(tmp_path / "ws"), "config", "check", str(empty), "-s", "train.epochs=3"]) == 2
    assert capsys.readouterr().err == (f"error: {empty}: the file is empty (or only comments); give at "
                                       f"least one section, or no config file to use the defaults\n")
    fine = tmp_path / "run.yaml"
    fine.write_text("train:\n  epochs: 2\n")
    assert main(["config", "check", str(fine), "--set", "train.epochs=true"]) == 2
    assert capsys.readouterr().err == \
        "error: train.epochs: must be an integer, not true or false (got true)\n"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    assert main(["config", "check", str(latin)]) == 2
    assert capsys.readouterr().err == \
        f"error: {latin}: not UTF-8 text (byte 0xe9 at offset 9); save the file as UTF-8\n"
    assert main(["config", "check", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: config file '{tmp_path}' is a directory; give a YAML file\n"


def test_serve_refuses_its_config_before_starting(tmp_path, capsys):
    assert main(["-w", str(tmp_path / "ws"), "serve", "--set", "serve.max_body_mb=.inf"]) == 2
    assert capsys.readouterr().err == "error: serve.max_body_mb: must be a finite number (got inf)\n"
    twice = tmp_path / "serve.yaml"
    twice.write_text("serve:\n  port: 8001\n  port: 8002\n")
    assert main(["-w", str(tmp_path / "ws"), "serve", "--config", str(twice)]) == 2
    assert capsys.readouterr().err == \
        f"error: {twice}: key 'port' is given twice in the same mapping (lines 2 and 3); keep one\n"
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(("text", "expected"), [("off", "off"), ("on", "on"), ("auto", "auto")])
def test_channels_last_on_and_off_are_words_not_yaml_booleans(tmp_path, text, expected):
    # YAML 1.1 reads a bare on/off as true/false; docs/performance.md writes
    # `--set train.channels_last=off`
    path = tmp_path / "run.yaml"
    path.write_text(f"train:\n  channels_last: {text}\n")
    assert load_config(path).train.channels_last == expected
    assert load_config(None, [f"train.channels_last={text}"]).train.channels_last == expected


def test_channels_last_still_refuses_other_words():
    assert _message(None, ["train.channels_last=sideways"]) == (
        "train.channels_last: must be 'auto', 'on' or 'off' (got 'sideways')")


def test_a_section_that_is_not_a_mapping_says_so_in_plain_words(tmp_path, capsys):
    # was pydantic's "must be a valid dictionary or instance of DataConfig" / "... object to
    # extract fields from" (model: a discriminated union)
    (tmp_path / "c.yaml").write_text("data: null\nmodel: 3\ntrain: [1]\n")
    assert main(["config", "check", str(tmp_path / "c.yaml")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {key}: must be a mapping of keys to values, a section (got {got})"
        for key, got in [("data", "null"), ("model", 3), ("train", [1])]]


LAUGHS = "".join(f"{k}: &{k} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
                 for p, k in zip(["", *"abcdefgh"], "abcdefghi", strict=True))
TOO_BIG = ("its YAML aliases (*name) add more than 100,000 values once expanded, or an alias "
           "lies inside what it names; write the values out")


@pytest.mark.parametrize("text", [LAUGHS, "name: &a [*a]\n", "data: &a {source: csv, x: *a}\n"])
def test_yaml_aliases_expanding_past_the_limit_are_refused_at_once(tmp_path, capsys, text):
    # 9 lines of aliases of aliases (9**9 values) took minutes; a self-reference crashed
    # with "internal error: RecursionError"
    (tmp_path / "c.yaml").write_text(text)
    assert main(["config", "check", str(tmp_path / "c.yaml")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'c.yaml'}: {TOO_BIG}\n"


def test_a_set_value_with_a_self_referencing_alias_is_refused(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("name: x\n")
    assert main(["config", "check", str(tmp_path / "c.yaml"), "--set", "name=&a [*a]"]) == 2
    assert capsys.readouterr().err == f"error: --set name: {TOO_BIG}\n"


def test_a_long_list_without_aliases_is_not_told_of_aliases(tmp_path):
    # 100,001 values written out were refused as "once its YAML aliases (*name) are expanded"
    values = ", ".join(["0.5"] * 100_001)
    (tmp_path / "c.yaml").write_text(f"model: {{type: mlp}}\nnotes: [{values}]\n")
    assert read_yaml(tmp_path / "c.yaml")["notes"] == [0.5] * 100_001


def test_a_long_list_and_a_small_alias_elsewhere_load(tmp_path):
    # once any list was reached twice, the whole file's 100,002 values counted as the aliases'
    values = ", ".join(["0.5"] * 100_001)
    (tmp_path / "c.yaml").write_text(f"notes: [{values}]\nhidden: &h [8, 4]\nagain: *h\n")
    assert read_yaml(tmp_path / "c.yaml")["again"] == [8, 4]


def test_a_long_list_reached_twice_through_an_alias_is_refused(tmp_path, capsys):
    values = ", ".join(["0.5"] * 100_000)  # the alias adds the list and its 100,000 values
    (tmp_path / "c.yaml").write_text(f"a: &v [{values}]\nb: *v\n")
    assert main(["config", "check", str(tmp_path / "c.yaml")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'c.yaml'}: {TOO_BIG}\n"


def test_merge_keys_repeating_an_alias_merge_it_once(tmp_path):
    # PyYAML < 6.0.4 expanded each level's 10 merges of the level below: 10**6 keys, minutes
    lines = ["l0: &l0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    lines += [f"l{k}: &l{k} {{<<: [{', '.join([f'*l{k - 1}'] * 10)}]}}" for k in range(1, 7)]
    (tmp_path / "c.yaml").write_text("\n".join(lines) + "\n")
    assert read_yaml(tmp_path / "c.yaml")["l6"] == {f"k{i}": i for i in range(10)}


def test_aliases_that_stay_small_still_load(tmp_path):
    (tmp_path / "c.yaml").write_text("model: {type: mlp, hidden: &h [8, 4]}\n"
                                     "tune: {space: {model.hidden: {choice: [*h, [16]]}}}\n")
    assert load_config(tmp_path / "c.yaml").model.hidden == [8, 4]


@pytest.mark.parametrize("source", ["image_folder", "builtin", "npz"])
def test_column_keys_are_not_checked_for_sources_that_ignore_them(source):
    # `label_columns: []` was refused for every source, though only csv reads it
    data = {"source": source, "label_columns": [], "path": "d"}
    assert load_config({"data": data}).data.label_columns == []


@pytest.mark.parametrize(("data", "message"), [
    # were "internal error: IndexError" and "AttributeError: 'DataFrame' object has no attribute 'dtype'"
    ({"label_columns": []}, "data.label_columns: give at least one label column (got [])"),
    ({"label_columns": ["y", "y"]},
     "data.label_columns: names 'y' more than once (got ['y', 'y']); give each column once"),
    # trained silently on its own label
    ({"label_columns": ["y"], "feature_columns": ["a", "y"]},
     "data.feature_columns: 'y' is also given as data.label_columns; a model must not read its "
     "label or split as an input: leave it out of data.feature_columns"),
    ({"split_column": "s", "feature_columns": ["s"]},
     "data.feature_columns: 's' is also given as data.split_column; a model must not read its "
     "label or split as an input: leave it out of data.feature_columns"),
    # "internal error: KeyError: 'y'"
    ({"categorical_columns": ["y"], "label_columns": ["y"]},
     "data.categorical_columns: 'y' is also given as data.label_columns; a model must not read "
     "its label or split as an input: leave it out of data.categorical_columns"),
    # trained a text model on the label column
    ({"text_column": "label"},
     "data.text_column: 'label' is also given as data.label_columns; a model must not read its "
     "label or split as an input: name the text column"),
    # was blamed on the images: "none of the 49 images ... could be read"
    ({"source": "image_folder", "image_size": [0, 8]},
     "data.image_size.0: must be greater than or equal to 1 (got 0)"),
])
def test_columns_and_sizes_that_cannot_train(data, message):
    with pytest.raises(ConfigError) as err:
        load_config({"data": {"source": "csv", "path": "d.csv", **data}})
    assert str(err.value) == message


def test_values_in_messages_are_spelt_as_yaml_spells_them(tmp_path, capsys):
    # were Python's None/True/False where the file said null/true/false
    (tmp_path / "c.yaml").write_text("train: {epochs: null, early_stopping: true}\n"
                                     "data: {classes: [true, null], streaming: null}\n")
    assert main(["config", "check", str(tmp_path / "c.yaml")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: data.streaming: must be a valid boolean (got null)",
        "error: data.classes.0: must be a valid string (got true)",
        "error: data.classes.1: must be a valid string (got null)",
        "error: train.epochs: must be a valid integer (got null)",
        "error: train.early_stopping: must be a mapping of keys to values, a section (got true)"]


def test_set_under_a_key_that_is_not_a_section_spells_its_value_as_yaml():
    # was "(got None)": Python's spelling of the YAML file's null
    from dlforge.config.load import apply_override

    for value, spelled in ((None, "null"), (True, "true"), ([False, 1], "[false, 1]")):
        with pytest.raises(ConfigError) as info:
            apply_override({"train": {"schedule": value}}, "train.schedule.type=cosine")
        assert str(info.value) == (f"--set train.schedule.type: 'schedule' is not a section "
                                   f"(got {spelled})")
