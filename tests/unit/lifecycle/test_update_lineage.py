"""An update's lineage: the forgetting bound against the lineage root in a chain of updates, a
root registered without a run, a finetune that starts a new line, and the data keys an update
keeps from the root (class selection, binary and anomaly mappings)."""

from __future__ import annotations

import hashlib
import math
import shutil

import pytest
from tests.unit.lifecycle import test_update

from dlforge.cli import main
from dlforge.errors import ConfigError
from dlforge.lifecycle.forgetting import forgetting_check
from dlforge.lifecycle.gate import FAILED, PASSED, SKIPPED, predictor_of, score
from dlforge.lifecycle.gate_set import candidate_test_set, run_config
from dlforge.lifecycle.update import base_config, lineage_root, update_config
from dlforge.lifecycle.watch import WatchState
from dlforge.pipeline import run
from dlforge.registry import Store

BASE, digits_npz = test_update.BASE, test_update.digits_npz
ws = test_update.ws  # the same fixture: a fresh workspace for this module


def _update(ws, ref: str, *sets: str) -> int:
    return main(["-w", str(ws), "update", ref, "--data", str(ws / "shifted.npz"), "-q",
                 *[part for s in sets for part in ("--set", s)]])


def test_a_chain_of_updates_is_bounded_by_the_lineage_roots_score(ws, capsys):
    assert _update(ws, "dg@1", "update.lr=5", "update.replay_ratio=0") == 1  # v2: ruined, refused
    _update(ws, "dg@2", "update.max_forgetting=0.5")  # v3 continues the ruined v2
    out = capsys.readouterr().out
    with Store.open(ws) as store:
        v1, v2, v3 = (store.get_version("dg", v) for v in (1, 2, 3))
        assert lineage_root(store, v3).version == 1
        rows = candidate_test_set(store, v1)
        root, parent, after = (score(predictor_of(v), rows)["accuracy"] for v in (v1, v2, v3))
        checks = forgetting_check(store, v3)
    assert [(c.condition, c.metric) for c in checks] == [
        ("forgetting vs parent dg@2 <= 0.5", "accuracy on dg@1's test split"),
        ("forgetting vs original dg@1 <= 0.5", "accuracy on dg@1's test split")]
    assert [(c.candidate, c.champion, c.bound) for c in checks] == [
        (after, parent, parent - 0.5), (after, root, root - 0.5)]
    assert root - 0.5 > after  # v3 lost more than the limit against v1 ...
    assert checks[1].status == FAILED
    assert checks[0].status == (PASSED if after >= parent - 0.5 else FAILED)
    assert "forgetting vs original dg@1 <= 0.5" in out  # ... and the gate table shows both rows
    assert "forgetting vs parent dg@2 <= 0.5" in out


def test_a_root_registered_without_a_run_refuses_a_forgetting_limit_before_training(ws, tmp_path, capsys):
    with Store.open(ws) as store:
        shutil.copytree(store.get_version("dg", 1).bundle_path, tmp_path / "bundle")
        store.register("bare", None, tmp_path / "bundle", {})
        runs = len(store.list_runs())
    config = tmp_path / "fresh.yaml"
    config.write_text(f"data: {{source: npz, path: {ws / 'shifted.npz'}}}\n"
                      f"train: {{epochs: 1, num_threads: 1}}\n"
                      f"evaluate: {{baseline: false, gate: {{conditions: ['accuracy >= 0.0']}}}}\n")
    with Store.open(ws) as store, pytest.raises(ConfigError) as caught:
        update_config(store, "bare@1", config)
    assert str(caught.value) == (
        "update.max_forgetting: bare@1's lineage starts with a version registered without a run, "
        "so there is no original test split to measure forgetting on; set "
        "update.max_forgetting=null (the gate then reports the check as skipped)")
    assert main(["-w", str(ws), "update", "bare@1", "--data", str(config), "-q",
                 "--set", "update.max_forgetting=null"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split() for line in table if line.startswith("forgetting")] == [
        ["forgetting:", "no", "original", "test", "split", "nan", "-", "-", "skipped"]]
    with Store.open(ws) as store:
        (check,) = forgetting_check(store, store.get_version("bare", 2))
        assert len(store.list_runs()) == runs + 1
        assert store.history("bare")[-1].reason == ("gate passed (1 skipped: forgetting: no "
                                                   "original test split)")
    assert (check.status, check.metric, check.champion) == (SKIPPED, "bare@1 was registered without a run", None)
    assert math.isnan(check.candidate)


def test_a_finetune_of_the_same_name_starts_a_new_line_and_its_data_keys_are_kept(ws, tmp_path):
    config = tmp_path / "three.yaml"
    config.write_text("name: dg\ndata: {source: builtin, name: digits, classes: ['0', '1', '2']}\n"
                      "train: {epochs: 1, lr: 0.04, num_threads: 1}\n"
                      "evaluate: {baseline: false}\n")
    assert main(["-w", str(ws), "finetune", str(config), "--from", "dg@1", "-q"]) == 0
    with Store.open(ws) as store:
        tuned = store.list_versions("dg")[-1]
        assert tuned.parent_version == 1 and lineage_root(store, tuned) == tuned
        cfg = update_config(store, f"dg@{tuned.version}", ws / "shifted.npz",
                            conditions=["accuracy >= 0"])
    assert (cfg.train.lr, cfg.data.classes, cfg.data.source) == (pytest.approx(0.004), ["0", "1", "2"], "npz")


def test_a_binary_models_data_path_keeps_its_class_mapping(tmp_path):
    binary = {**BASE, "name": "odd", "train": {**BASE["train"], "epochs": 1},
              "data": {"source": "builtin", "name": "digits", "negative_name": "even",
                       "binary_from": {"odd": ["1", "3", "5", "7", "9"]}}}
    run(binary, workspace=tmp_path, progress=False)
    digits_npz(tmp_path / "fresh.npz", slice(0, 300))
    with Store.open(tmp_path) as store:
        cfg = update_config(store, "odd@production", tmp_path / "fresh.npz")
    assert (cfg.data.binary_from, cfg.data.negative_name) == ({"odd": ["1", "3", "5", "7", "9"]}, "even")
    assert main(["-w", str(tmp_path), "update", "odd@production", "--data",
                 str(tmp_path / "fresh.npz"), "-q", "--set", "update.max_forgetting=null"]) in (0, 1)
    with Store.open(tmp_path) as store:
        assert len(store.list_versions("odd")) == 2  # trained on the mapped classes, not refused


def test_watch_settings_come_from_the_lineage_root_like_the_updates(ws):
    with Store.open(ws) as store:
        v3 = store.get_version("dg", 3)
        assert (run_config(store, v3).train.lr, base_config(store, v3).train.lr) == (0.001, 0.01)


def test_failed_watch_batches_are_warned_about_and_retried_on_request(ws, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    WatchState(ws / "updates" / "dg" / key / "state.json").record(["3/a.png", "3/b.png"], "error: x",
                                                                 failed=True)
    args = ["-w", str(ws), "update", "dg@1", "--watch", str(folder), "--max-batches", "0"]
    assert main(args) == 0
    assert capsys.readouterr().err == ("warning: 2 files of 1 failed batches are not retried; "
                                       "--retry-failed does\n")
    assert main([*args, "--retry-failed"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "retrying 2 files of failed batches"
    state = WatchState.load(ws / "updates" / "dg" / key / "state.json")
    assert (state.failed, [b["files"] for b in state.retried]) == ([], [["3/a.png", "3/b.png"]])
