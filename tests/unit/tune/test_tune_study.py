"""The study: name, direction, samplers, pruners, storage errors; the pruning callback."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest

from dlforge.config import load_config
from dlforge.config.base import Section
from dlforge.config.schema import RunConfig, TrainConfig
from dlforge.errors import ConfigError, StoreError
from dlforge.tune.pruning import PruningCallback
from dlforge.tune.study import build_pruner, build_sampler, direction, grid, open_study
from dlforge.tune.study_names import earlier_study_names, legacy_study_name, study_name


def _cfg(tune: dict) -> object:
    return load_config({"model": {"type": "mlp", "hidden": [16]}, "train": {"epochs": 10},
                        "tune": tune})


def test_direction_follows_the_metric():
    assert direction("val_accuracy") == "maximize"
    assert direction("val_loss") == "minimize"
    assert direction("val_mae") == "minimize"


def test_study_name_ignores_the_storage_url_but_not_the_space():
    a = _cfg({"space": {"train.lr": {"choice": [0.1, 0.01]}}})
    b = _cfg({"space": {"train.lr": {"choice": [0.1, 0.01]}}, "storage": "sqlite:///other.db"})
    c = _cfg({"space": {"train.lr": {"choice": [0.1, 0.02]}}})
    assert study_name(a) == study_name(b) != study_name(c)
    assert study_name(a).startswith("model-") and len(study_name(a)) == len("model-") + 10


class _TrainWithANewKey(TrainConfig):
    """TrainConfig as a later release might have it: one more key, with a default."""

    warmup_epochs: int = 0


class _NewSection(Section):
    enabled: bool = False


class _RunWithANewSection(RunConfig):
    extras: _NewSection = _NewSection()


def test_a_key_added_with_a_default_keeps_the_study_name():
    cfg = _cfg({"space": {"train.lr": {"choice": [0.1, 0.01]}}})
    newer_train = cfg.model_copy(update={"train": _TrainWithANewKey(**cfg.train.model_dump())})
    newer_run = _RunWithANewSection(**cfg.model_dump())
    assert study_name(newer_train) == study_name(newer_run) == study_name(cfg)
    # the legacy name hashes the keys of the last version that named studies that way only
    assert legacy_study_name(newer_train) == legacy_study_name(newer_run) == legacy_study_name(cfg)


def test_the_legacy_name_is_the_one_that_version_gave():
    """Names computed by the code of commit f41c571 (a hash of model_dump(), defaults included)."""
    space = {"train.lr": {"choice": [0.1, 0.01]}}
    assert legacy_study_name(_cfg({"space": space})) == "model-519db254e6"
    assert legacy_study_name(_cfg({"metric": "val_accuracy", "space": space})) == "model-3d6d2cf192"
    assert legacy_study_name(load_config("examples/digits_search.yaml")) == "digits-search-73e281dfa3"


def test_a_config_setting_a_key_that_version_lacked_has_no_legacy_name():
    cfg = _cfg({"space": {"train.lr": {"choice": [0.1, 0.01]}}})
    newer = cfg.model_copy(update={"train": _TrainWithANewKey(**cfg.train.model_dump(), warmup_epochs=2)})
    assert legacy_study_name(newer) is None
    assert study_name(newer) != study_name(cfg)


def test_a_changed_value_or_model_type_changes_the_study_name():
    space = {"space": {"train.lr": {"choice": [0.1, 0.01]}}}
    base = load_config({"model": {"type": "mlp"}, "tune": space})
    names = {study_name(base),
             study_name(load_config({"model": {"type": "mlp"}, "train": {"lr": 0.5}, "tune": space})),
             study_name(load_config({"model": {"type": "linear"}, "tune": space})),
             study_name(load_config({"model": {"type": "mlp"}, "tune": {**space, "metric": "val_accuracy"}}))}
    assert len(names) == 4
    # a value set to its default is the default
    assert study_name(load_config({"model": {"type": "mlp"}, "train": {"lr": TrainConfig().lr},
                                   "tune": space})) == study_name(base)


def test_where_and_how_much_a_search_runs_does_not_change_the_study_name():
    space = {"train.lr": {"choice": [0.1, 0.01]}}
    a = _cfg({"space": space})
    b = load_config({"model": {"type": "mlp", "hidden": [16]}, "train": {"epochs": 10, "num_threads": 1},
                     "tune": {"space": space, "n_trials": 50, "timeout_s": 60, "storage": "sqlite:///x.db"},
                     "registry": {"alias": "staging"}, "serve": {"port": 9000, "token": "t"},
                     "device": "cpu", "data": {"cache_dir": "/tmp/elsewhere", "workers": 3}})
    assert study_name(a) == study_name(b)


def test_a_study_under_the_legacy_name_is_resumed_and_the_log_says_so_once(tmp_path, caplog):
    cfg = _cfg({"metric": "val_accuracy", "space": {"train.lr": {"choice": [0.1, 0.01]}}})
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    old = optuna.create_study(storage=url, study_name=legacy_study_name(cfg), direction="maximize")
    old.enqueue_trial({"train.lr": 0.1})
    with caplog.at_level("WARNING", logger="dlforge.tune.study"):
        resumed = open_study(cfg, url, data_fingerprint=None)
    assert legacy_study_name(cfg) != study_name(cfg)
    assert resumed.study_name == legacy_study_name(cfg) and len(resumed.get_trials()) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "dlforge.tune.study"] == [
        f"tune: continuing the study {legacy_study_name(cfg)}, named by an earlier dlforge (a hash "
        f"of every config key); a new search of this config would be named {study_name(cfg)}"]
    assert optuna.get_all_study_names(url) == [legacy_study_name(cfg)]


def test_a_new_search_takes_the_new_name_and_keeps_it(tmp_path, caplog):
    cfg = _cfg({"space": {"train.lr": {"choice": [0.1, 0.01]}}})
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with caplog.at_level("WARNING", logger="dlforge.tune.study"):
        assert open_study(cfg, url, data_fingerprint=None).study_name == study_name(cfg)
        # a legacy-named study made later (by an older dlforge) does not take the search over
        optuna.create_study(storage=url, study_name=legacy_study_name(cfg))
        assert open_study(cfg, url, data_fingerprint=None).study_name == study_name(cfg)
    assert [r for r in caplog.records if r.name == "dlforge.tune.study"] == []


def test_samplers_and_pruners():
    cfg = _cfg({"space": {"train.lr": {"choice": [0.1, 0.01]}, "train.epochs": {"int": [1, 3]}}})
    assert isinstance(build_sampler(cfg, 0), optuna.samplers.RandomSampler)
    assert isinstance(build_pruner(cfg), optuna.pruners.MedianPruner)
    tpe = cfg.model_copy(update={"tune": cfg.tune.model_copy(update={"sampler": "tpe", "pruner": "hyperband"})})
    assert isinstance(build_sampler(tpe, 0), optuna.samplers.TPESampler)
    assert isinstance(build_pruner(tpe), optuna.pruners.HyperbandPruner)
    assert grid(cfg) == {"train.lr": [0.1, 0.01], "train.epochs": [1, 2, 3]}


def test_grid_of_a_continuous_range_is_an_error():
    with pytest.raises(ConfigError) as err:
        _cfg({"sampler": "grid", "space": {"train.lr": {"log_uniform": [1e-3, 1e-1]}}})
    assert str(err.value) == (
        "tune.space.train.lr: the grid sampler needs choice or int ranges (got log_uniform); list "
        "the values to try, e.g. {choice: [..]}, or use tune.sampler: random")


def test_a_storage_that_does_not_answer_is_one_line():
    cfg = _cfg({"space": {"train.lr": {"choice": [0.1, 0.01]}}})
    with pytest.raises(StoreError) as err:
        open_study(cfg, "postgresql+psycopg://user:secret@127.0.0.1:1/db", data_fingerprint=None)
    message = str(err.value)
    assert message.startswith("tune.storage: cannot open the study database "
                              "postgresql+psycopg://user:***@127.0.0.1:1/db: ")
    assert message.endswith("; check that the server is running and the URL is right")
    assert "secret" not in message and "\n" not in message


def test_the_study_is_created_once_and_loaded_after(tmp_path):
    cfg = _cfg({"metric": "val_accuracy", "space": {"train.lr": {"choice": [0.1, 0.01]}}})
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = open_study(cfg, url, data_fingerprint=None)
    first.enqueue_trial({"train.lr": 0.1})
    again = open_study(cfg, url, data_fingerprint=None)
    assert again.study_name == first.study_name and again.direction.name == "MAXIMIZE"
    assert len(again.get_trials()) == 1


class _ScriptedTrial:
    """Stands in for an Optuna trial: records reports, prunes at one step."""

    def __init__(self, prune_at: int) -> None:
        self.prune_at, self.reports = prune_at, []

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.reports[-1][0] == self.prune_at


def test_pruning_callback_reports_each_epoch_and_prunes_with_a_reason():
    trial = _ScriptedTrial(prune_at=1)
    cb = PruningCallback(trial, "val_loss")
    cb.on_fit_start(None)
    cb.on_epoch_end(0, {"val_loss": 0.9, "loss": 1.0}, None)
    with pytest.raises(optuna.TrialPruned) as err:
        cb.on_epoch_end(1, {"val_loss": 0.75, "loss": 0.8}, None)
    assert trial.reports == [(0, 0.9), (1, 0.75)]
    assert str(err.value) == "pruned after epoch 2: val_loss 0.75 was worse than the pruner's bar at that epoch"
    assert [row["val_loss"] for row in cb.history] == [0.9, 0.75]


def test_pruning_callback_reports_validated_epochs_only():
    trial = _ScriptedTrial(prune_at=9)
    cb = PruningCallback(trial, "val_loss")
    cb.on_fit_start(None)
    rows = [{"loss": 1.0}, {"loss": 0.9, "val_loss": 0.8}, {"loss": 0.7},
            {"loss": 0.6, "val_loss": 0.5}]
    for epoch, logs in enumerate(rows):
        cb.on_epoch_end(epoch, logs, SimpleNamespace(validated="val_loss" in logs))
    assert trial.reports == [(1, 0.8), (3, 0.5)]
    assert cb.history == rows


def test_pruning_callback_names_a_metric_that_is_not_logged():
    cb = PruningCallback(_ScriptedTrial(prune_at=9), "val_f1")
    with pytest.raises(ConfigError) as err:
        cb.on_epoch_end(0, {"epoch": 0, "loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.5}, None)
    assert str(err.value) == "tune.metric: 'val_f1' is not logged; available: loss, val_accuracy, val_loss"


def _median_study(tmp_path) -> optuna.Study:
    """A SQLite study with two complete trials (values 0.5..0.7 and 0.6..0.8 over 3 epochs)."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'db.sqlite'}", direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    for start in (0.5, 0.6):
        trial = study.ask()
        for step in range(3):
            trial.report(start + 0.1 * step, step)
        study.tell(trial, start + 0.2)
    return study


def test_median_pruning_decides_as_optuna_does_and_reads_the_study_once(tmp_path, monkeypatch):
    study = _median_study(tmp_path)
    trial = study.ask()
    reads = []
    real_get_trials = study.get_trials
    monkeypatch.setattr(study, "get_trials", lambda *a, **k: reads.append(1) or real_get_trials(*a, **k))
    cb = PruningCallback(trial, "val_accuracy")
    cb.on_fit_start(None)
    ours, optunas = [], []
    for epoch, value in enumerate([0.9, 0.9, 0.62]):  # the median at step 2 is 0.65
        try:
            cb.on_epoch_end(epoch, {"val_accuracy": value}, None)
            ours.append(False)
        except optuna.TrialPruned:
            ours.append(True)
        monkeypatch.setattr(study, "get_trials", real_get_trials)
        optunas.append(trial.should_prune())
        monkeypatch.setattr(study, "get_trials", lambda *a, **k: reads.append(1) or real_get_trials(*a, **k))
    assert ours == optunas == [False, False, False]  # best so far 0.9 stays above the median
    late = study.ask()
    cb = PruningCallback(late, "val_accuracy")
    cb.on_fit_start(None)
    cb.on_epoch_end(0, {"val_accuracy": 0.1}, None)  # warm-up epoch: never pruned
    with pytest.raises(optuna.TrialPruned):
        cb.on_epoch_end(1, {"val_accuracy": 0.2}, None)  # median at step 1 is 0.65
    assert len(reads) == 2  # one snapshot per trial, not one read per epoch
    assert bool(late.should_prune()) is True


@pytest.mark.parametrize(("n_trials", "epochs", "startup", "warmup"),
                         [(10, 10, 2, 1), (20, 40, 4, 4), (100, 5, 5, 1)])
def test_median_pruner_waits_for_a_share_of_the_budget_and_of_the_epochs(n_trials, epochs, startup, warmup):
    cfg = load_config({"model": {"type": "mlp", "hidden": [16]}, "train": {"epochs": epochs},
                       "tune": {"n_trials": n_trials, "space": {"train.lr": {"choice": [0.1, 0.01]}}}})
    pruner = build_pruner(cfg)
    assert (pruner._n_startup_trials, pruner._n_warmup_steps) == (startup, warmup)


def test_sqlite_studies_commit_in_wal_mode_without_a_sync_per_commit(tmp_path):
    from dlforge.tune.study import _storage

    storage = _storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL; FULL is 2


def _csv_cfg(path: str) -> RunConfig:
    return load_config({"data": {"source": "csv", "path": path}, "train": {"epochs": 10},
                        "tune": {"space": {"train.lr": {"choice": [0.1, 0.01]}}}})


def test_data_path_counts_by_the_data_fingerprint_when_one_is_given():
    here, there = _csv_cfg("/here/a.csv"), _csv_cfg("/there/a.csv")
    assert study_name(here, "f1") == study_name(there, "f1")
    assert study_name(here, "f1") != study_name(there, "f2")
    assert study_name(here) != study_name(there)  # without a fingerprint: the path, as before
    no_path = _cfg({"space": {"train.lr": {"choice": [0.1, 0.01]}}})
    assert study_name(no_path, "f1") == study_name(no_path)  # nothing to stand for


def test_earlier_names_are_the_path_hash_then_the_legacy_hash():
    cfg = _csv_cfg("/here/a.csv")
    assert earlier_study_names(cfg, "f1") == [
        (study_name(cfg), "a hash of data.path, not of the data"),
        (legacy_study_name(cfg), "a hash of every config key")]
    no_path = _cfg({"space": {"train.lr": {"choice": [0.1, 0.01]}}})
    assert earlier_study_names(no_path, "f1") == [(legacy_study_name(no_path), "a hash of every config key")]


def test_a_study_named_by_its_data_path_is_resumed_and_the_log_says_so(tmp_path, caplog):
    cfg = _csv_cfg("/here/a.csv")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    optuna.create_study(storage=url, study_name=legacy_study_name(cfg))
    optuna.create_study(storage=url, study_name=study_name(cfg)).enqueue_trial({"train.lr": 0.1})
    with caplog.at_level("WARNING", logger="dlforge.tune.study"):
        resumed = open_study(cfg, url, data_fingerprint="f1")
    assert resumed.study_name == study_name(cfg) and len(resumed.get_trials()) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "dlforge.tune.study"] == [
        f"tune: continuing the study {study_name(cfg)}, named by an earlier dlforge (a hash of "
        f"data.path, not of the data); a new search of this config would be named "
        f"{study_name(cfg, 'f1')}"]


def test_a_study_named_by_a_relative_path_given_with_set_is_still_found(tmp_path, monkeypatch):
    """Until paths given with --set were stored absolute, `--set data.path=t.csv` was hashed
    as written; resumed from the same folder, that study goes on."""
    monkeypatch.chdir(tmp_path)
    cfg = _csv_cfg("t.csv")
    assert cfg.data.path == str(tmp_path / "t.csv")
    as_given = cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": "t.csv"})})
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    optuna.create_study(storage=url, study_name=study_name(as_given))
    assert study_name(as_given) != study_name(cfg)
    assert open_study(cfg, url, data_fingerprint="f1").study_name == study_name(as_given)


def test_the_ids_an_exclude_file_lists_count_not_where_it_is(tmp_path):
    for folder, ids in (("a", "3\n"), ("b", "3\n"), ("c", "4\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "drop.txt").write_text(ids)
    name = {folder: study_name(load_config({"data": {"source": "csv", "path": "/x/t.csv",
                                                     "exclude_file": str(tmp_path / folder / "drop.txt")},
                                            "train": {"epochs": 10}}), "f1")
            for folder in "abc"}
    assert name["a"] == name["b"] != name["c"]
