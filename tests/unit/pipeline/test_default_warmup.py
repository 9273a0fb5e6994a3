"""The shipped default config's 20-step warm-up is fitted to a run too short for it (a tenth
of the run's steps, one `auto:` line); a warm-up the user set is refused as before. `dlforge
run --set train.epochs=1` on the default config was refused."""

from __future__ import annotations

import shutil
from pathlib import Path

from dlforge.cli import main
from dlforge.config.load import default_config_path
from dlforge.registry import Store

FITTED = ("auto: train.schedule.warmup_steps = 1 (the default config's 20 warm-up steps are not "
          "below this run's 19 steps (train.epochs 1 x 19 batches): a tenth of them; --set "
          "train.schedule.warmup_steps=N chooses)")
REFUSED = ("error: train.schedule.warmup_steps: must be less than the run's 19 steps (train.epochs "
           "x batches per epoch) for a cosine schedule (got 20); lower it (a tenth: --set "
           "train.schedule.warmup_steps=1) or raise train.epochs (review.epochs in `dlforge data "
           "review`, whose folds train that many)")


def test_the_default_configs_warmup_is_fitted_to_a_one_epoch_run(tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["-w", str(ws), "run", "--set", "train.epochs=1", "--set",
                 "registry.enabled=false"]) == 0
    autos = [line for line in capsys.readouterr().err.splitlines() if line.startswith("auto: train")]
    assert autos == [FITTED]
    (run,) = Store.open(ws).list_runs()
    assert (run.status, run.config["train"]["schedule"]) == (
        "completed", {"type": "cosine", "warmup_steps": 1, "min_lr": 0.0})


def test_a_warmup_the_user_set_is_still_refused(tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["-w", str(ws), "run", "--set", "train.epochs=1", "--set",
                 "train.schedule.warmup_steps=20", "--quiet"]) == 2
    assert capsys.readouterr().err.splitlines() == [REFUSED]
    copy = tmp_path / "mine.yaml"  # the default's values in the user's own file: set by the user
    shutil.copy(default_config_path(), copy)
    assert main(["-w", str(ws), "run", str(copy), "--set", "train.epochs=1", "--quiet"]) == 2
    assert capsys.readouterr().err.splitlines() == [REFUSED]
    assert Store.open(ws).list_runs() == []


def test_a_warmup_shorter_than_the_run_is_kept(tmp_path, capsys):
    from dlforge.config.auto_warmup import fit_warmup
    from dlforge.config.load import load_config

    cfg = load_config(default_config_path(), ["train.epochs=2"])
    assert fit_warmup(cfg, 19, defaulted=True) is cfg  # 20 < 38 steps
    assert Path(default_config_path()).read_text().count("warmup_steps: 20") == 1


def test_under_nproc_the_warmup_is_fitted_to_a_ranks_share_of_the_batches(monkeypatch, capsys):
    # counted on the whole loader (19 batches, 38 steps), the warm-up was kept and the run
    # refused: each of 2 ranks trains 10 batches an epoch, 20 steps
    from dlforge.config.load import load_config
    from dlforge.pipeline import runner
    from dlforge.train import loop
    from dlforge.train.distributed import DataParallel

    monkeypatch.setattr(loop, "parallel", lambda: DataParallel(0, 2))  # rank 0 of `--nproc 2`
    plan, _ = runner._first_plan(load_config(default_config_path(), ["train.epochs=2"]), None,
                                 echo=True)
    assert plan.config.train.schedule.warmup_steps == 2
    autos = [line for line in capsys.readouterr().err.splitlines() if line.startswith("auto: train")]
    assert autos == [FITTED.replace("= 1", "= 2").replace("19 steps (train.epochs 1 x 19",
                                                          "20 steps (train.epochs 2 x 10")]


def test_where_the_warmup_came_from_is_not_part_of_the_configs_value():
    from dlforge.config.auto_warmup import WARMUP
    from dlforge.config.load import from_defaults, load_config

    default = load_config(default_config_path())
    rebuilt = load_config(default.model_dump(mode="json"))  # the same values, no provenance
    assert (from_defaults(default, WARMUP), from_defaults(rebuilt, WARMUP)) == (True, False)
    assert default == rebuilt  # was unequal
    assert default != load_config(default_config_path(), ["seed=1"])
    shorter = default.model_copy(update={"train": default.train.model_copy(update={"epochs": 1})})
    assert from_defaults(shorter, WARMUP) is False  # a copy with another train section: kept
    assert from_defaults(default.model_copy(update={"seed": 3}), WARMUP) is True
