"""The anomaly task's config: how it is asked for and every key that does not fit it."""

from __future__ import annotations

import pytest

from dlforge.config import load_config
from dlforge.config.rules import is_anomaly
from dlforge.errors import ConfigError

ANOMALY = {"data": {"source": "builtin", "name": "breast_cancer", "normal_classes": ["benign"]},
           "model": {"type": "autoencoder", "hidden": [8], "latent_dim": 2},
           "evaluate": {"threshold": {"objective": "false_alarm_rate", "value": 0.05}}}


def _with(section: str, **change) -> dict:
    return {**ANOMALY, section: {**ANOMALY[section], **change}}


def test_normal_classes_make_an_anomaly_task_and_data_task_may_say_so():
    assert is_anomaly(load_config(ANOMALY))
    assert is_anomaly(load_config(_with("data", task="anomaly")))
    assert not is_anomaly(load_config({}))


@pytest.mark.parametrize(("raw", "message"), [
    (_with("data", normal_classes=None, task="anomaly"),
     "data.normal_classes: data.task anomaly needs the classes that are normal (got none), e.g. "
     "[T-shirt/top]"),
    (_with("data", anomaly_classes=["benign"]),
     "data.anomaly_classes: ['benign'] are also in data.normal_classes; a class is normal or an "
     "anomaly, not both"),
    (_with("data", binary_from={"bad": ["malignant"]}),
     "data.binary_from: builds a classification task; an anomaly task takes data.normal_classes "
     "and data.anomaly_classes instead. Remove it"),
    ({**ANOMALY, "model": {"type": "mlp"}},
     "model.type: an anomaly task trains an autoencoder on normal samples (got 'mlp'); use "
     "model: {type: autoencoder}"),
    ({**ANOMALY, "evaluate": {}},
     "evaluate.threshold.objective: an anomaly threshold is calibrated on normal validation "
     "samples: use false_alarm_rate or percentile, e.g. {objective: false_alarm_rate, value: "
     "0.01} (got 'max_f1')"),
    ({**ANOMALY, "balance": {"method": "oversample"}},
     "balance.method: an anomaly task trains on normal samples only, there is nothing to "
     "balance (got 'oversample'); remove it"),
    ({**ANOMALY, "tune": {"space": {"train.lr": {"log_uniform": [0.001, 0.1]}}}},
     "tune: searching an anomaly task is not supported yet; remove the tune section"),
    (_with("data", task="binary"),
     "data.normal_classes: makes an anomaly task, but data.task is 'binary'; remove one of them"),
    (_with("data", anomaly_classes=[]),
     "data.anomaly_classes: [] names no class, which leaves no anomaly to test on; name the "
     "anomalous classes (classes data.normal_classes ['benign'] leaves out), or leave "
     "data.anomaly_classes out to make every class data.normal_classes leaves out an anomaly"),
    (_with("data", normal_classes=None, task="anomaly", anomaly_classes=[]),
     "data.normal_classes: data.task anomaly needs the classes that are normal (got none), e.g. "
     "[T-shirt/top]\n"
     "data.anomaly_classes: [] names no class, which leaves no anomaly to test on; name the "
     "anomalous classes (classes data.normal_classes leaves out), or leave "
     "data.anomaly_classes out to make every class data.normal_classes leaves out an anomaly"),
    ({"data": {"anomaly_classes": ["x"]}},
     "data.anomaly_classes: needs data.normal_classes (an anomaly task)"),
    ({"model": {"type": "autoencoder"}},
     "model.type: autoencoder reconstructs its input, for anomaly detection only "
     "(data.normal_classes); choose a classifier or regressor such as mlp or basic_cnn"),
    ({"evaluate": {"threshold": {"objective": "percentile", "value": 95}}},
     "evaluate.threshold.objective: percentile calibrates an anomaly threshold "
     "(data.normal_classes); a classifier takes max_f1, min_recall, min_precision or fixed"),
    (_with("evaluate", threshold={"objective": "percentile", "value": 100}),
     "evaluate.threshold: value: the percentile objective takes a percentile strictly between 0 "
     "and 100, e.g. 95 (got 100)"),
    (_with("evaluate", threshold={"objective": "false_alarm_rate", "value": 0}),
     "evaluate.threshold: value: a false alarm rate is strictly between 0 and 1, e.g. 0.01 "
     "(got 0)"),
    ({"evaluate": {"threshold": {"objective": "min_recall", "value": 2}}},
     "evaluate.threshold: value: must be less than or equal to 1 for objective min_recall "
     "(got 2)"),
])
def test_a_config_that_does_not_fit_the_task_names_the_key(raw, message):
    assert refusal(raw) == message


def refusal(raw: dict) -> str:
    """The message `load_config` refuses `raw` with."""
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return str(info.value)


def test_config_check_refuses_an_empty_anomaly_class_list_in_one_line(tmp_path, capsys):
    """It passed `dlforge config check` and was refused only when the data was selected."""
    import yaml

    from dlforge.cli import main

    config = tmp_path / "anomaly.yaml"
    config.write_text(yaml.safe_dump(_with("data", anomaly_classes=[])))
    assert main(["config", "check", str(config)]) == 2
    assert capsys.readouterr().err == (
        "error: data.anomaly_classes: [] names no class, which leaves no anomaly to test on; "
        "name the anomalous classes (classes data.normal_classes ['benign'] leaves out), or "
        "leave data.anomaly_classes out to make every class data.normal_classes leaves out an "
        "anomaly\n")


def test_an_empty_anomaly_class_list_outside_an_anomaly_task_names_nothing_and_loads():
    """It was accepted as leaving the key out until a field rule refused it with advice about
    data.normal_classes, which a classifier has no use for."""
    cfg = load_config({"data": {"source": "builtin", "name": "digits", "anomaly_classes": []}})
    assert (is_anomaly(cfg), cfg.data.anomaly_classes) == (False, [])
