"""`dlforge tune`: worker table, the whole pipeline, and one-line errors before any trial."""

from __future__ import annotations

import yaml

from dlforge.cli import main
from dlforge.registry import Store

TUNED = {"data": {"limit": 120}, "model": {"type": "mlp", "hidden": [8]},
         "train": {"epochs": 1, "batch_size": 32, "num_threads": 1}, "evaluate": {"baseline": False},
         "tune": {"n_trials": 2, "pruner": "none", "metric": "val_accuracy",
                  "space": {"train.lr": {"log_uniform": [0.001, 0.1]}}}}


def _write(tmp_path, cfg: dict):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_worker_runs_trials_and_prints_the_table(tmp_path, capsys):
    assert main(["-w", str(tmp_path / "ws"), "tune", _write(tmp_path, TUNED), "--worker", "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("study model-") and out[0].endswith(": 2 complete, 0 pruned, 0 failed")
    assert out[1].split() == ["trial", "state", "val_accuracy", "seconds", "train.lr", "reason"]
    assert [line.split()[:2] for line in out[2:4]] == [["0", "complete"], ["1", "complete"]]
    assert out[4].startswith("best: trial ")
    with Store.open(tmp_path / "ws") as store:
        assert sorted(r.kind for r in store.list_runs()) == ["trial", "trial"]


def test_tune_then_train_the_best_and_a_bigger_budget_continues_the_study(tmp_path, capsys):
    ws, config = str(tmp_path / "ws"), _write(tmp_path, TUNED)
    assert main(["-w", ws, "tune", config, "-q"]) == 0
    assert "model:  model@1" in capsys.readouterr().out
    assert main(["-w", ws, "tune", config, "-q", "--worker", "--set", "tune.n_trials=3"]) == 0
    assert ": 3 complete, 0 pruned, 0 failed" in capsys.readouterr().out.splitlines()[0]


def test_bad_tune_input_is_one_line_before_any_trial(tmp_path, capsys):
    ws = str(tmp_path / "ws")
    no_tune = _write(tmp_path, {k: v for k, v in TUNED.items() if k != "tune"})
    assert main(["-w", ws, "tune", no_tune]) == 2
    assert capsys.readouterr().err == (
        "error: tune: the config has no tune section; add e.g. tune: {space: {train.lr: "
        "{log_uniform: [0.0001, 0.1]}}} or train it once with `dlforge run`\n")
    config = _write(tmp_path, TUNED)
    assert main(["-w", ws, "run", config, "--set", "tune.space={model.width: {choice: [16]}}"]) == 2
    assert capsys.readouterr().err == (
        "error: tune.space.model.width: choice: give at least 2 values; to fix one value set the "
        "key itself instead of tuning it (got [16])\n")
    url = "postgresql+psycopg://user:secret@127.0.0.1:1/db"
    assert main(["-w", ws, "tune", config, "--set", f"tune.storage={url}"]) == 1
    auto, error = capsys.readouterr().err.splitlines()  # the resolved augmentation, then one line
    assert auto.startswith("auto: augment = {'preset': 'shifts'")
    assert error.startswith("error: tune.storage: cannot open the study database "
                            "postgresql+psycopg://user:***@127.0.0.1:1/db: ")
    with Store.open(tmp_path / "ws") as store:
        assert store.list_runs() == []
