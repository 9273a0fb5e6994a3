"""`dlforge update` on a real store: a digits model (v1, promoted by its run) updated on digits
shifted one pixel to the right (fresh data the model never saw), through the gate with the
forgetting check; refusals and bad input leave the store as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from dlforge.cli import main
from dlforge.config import load_config
from dlforge.data.prepare import load_and_split
from dlforge.errors import ConfigError
from dlforge.lifecycle.replay import REPLAY, read_replay
from dlforge.lifecycle.update import update_config
from dlforge.pipeline import run
from dlforge.registry import Store
from dlforge.registry.bundle_checks import read_json

BASE = {"name": "dg", "data": {"source": "builtin", "name": "digits"},
        "model": {"type": "mlp", "hidden": [32]},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.01, "num_threads": 1},
        "update": {"replay_size": 400, "max_forgetting": 0.05},
        "evaluate": {"baseline": False, "gate": {"conditions": ["accuracy >= champion - 0.05"]}}}


def digits_npz(path: Path, rows: slice, *, labels=None, side: int = 8, shift: int = 1) -> Path:
    """Digits `rows` shifted `shift` pixels right (other rows than the builtin source's),
    saved as an npz source; `labels` replaces the labels, `side` resizes by repeating."""
    d = load_digits()
    x = np.roll(np.rint(d.images * (255 / 16)).astype(np.uint8), shift, axis=2)[rows, None]
    x = np.repeat(np.repeat(x, side // 8, axis=2), side // 8, axis=3)
    y = d.target[rows] if labels is None else np.resize(np.asarray(labels), len(x))
    np.savez(path, x_train=x, y_train=y)
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = tmp_path_factory.mktemp("update")
    run(BASE, workspace=ws, progress=False)
    digits_npz(ws / "shifted.npz", slice(0, 600))
    return ws


def snapshot(ws: Path) -> tuple:
    with Store.open(ws) as store:
        return ([(v.version, v.aliases) for v in store.list_versions("dg")],
                [(e.event, e.version) for e in store.history("dg")], len(store.list_runs()))


def test_registration_keeps_a_class_balanced_replay_buffer(ws):
    with Store.open(ws) as store:
        buffer = read_replay(store.resolve("dg@1").bundle_path)
    assert buffer.x.shape == (400, 1, 8, 8) and buffer.x.dtype == np.float32
    assert np.bincount(buffer.y).tolist() == [40] * 10
    assert buffer.seen.sum() == 1797 - 270 - 270  # the whole training split, counted per class


def test_the_update_lr_is_a_tenth_of_the_first_versions(ws):
    with Store.open(ws) as store:
        cfg = update_config(store, "dg@production", ws / "shifted.npz")
    assert (cfg.train.lr, cfg.update.source, cfg.registry.alias) == (0.001, "dg@1", None)
    assert (cfg.data.source, cfg.model.type, cfg.evaluate.gate.alias) == ("npz", "mlp", "production")


def test_an_update_passes_the_gate_with_lineage_and_a_continued_buffer(ws, capsys):
    assert main(["-w", str(ws), "update", "dg@production", "--data", str(ws / "shifted.npz"), "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("update: dg@2 from dg@1: 420 new + 400 replayed samples (replay share 0.49)")
    assert [line.split()[:3] for line in out[2:6]] == [
        ["condition", "candidate", "champion"], ["accuracy", ">=", "champion"],
        ["forgetting", "vs", "parent"], ["forgetting", "vs", "original"]]
    assert out[4].endswith("passed") and out[5].endswith("passed")
    assert out[-1] == "dg@production -> version 2"
    with Store.open(ws) as store:
        v2 = store.resolve("dg@production")
        v1_seen = read_replay(store.resolve("dg@1").bundle_path).seen
        buffer = read_replay(v2.bundle_path)
    assert (v2.version, v2.parent_version) == (2, 1)
    record = read_json(v2.bundle_path / "meta.json")["trained_on"]["update"]
    assert record == {"source": "dg@1", "data": "npz", "fresh": 420, "replayed": 400,
                      "replay_share": 0.4878, "lr": 0.001}
    fresh = np.bincount(load_digits().target[:600], minlength=10)  # 420 of them trained
    assert len(buffer) == 400 and buffer.seen.sum() == v1_seen.sum() + 420
    assert np.all(buffer.seen >= v1_seen) and np.all(buffer.seen - v1_seen <= fresh)


def test_a_worse_update_is_registered_but_refused_with_the_table(ws, capsys):
    before = snapshot(ws)
    code = main(["-w", str(ws), "update", "dg@production", "--data", str(ws / "shifted.npz"), "-q",
                 "--set", "update.lr=5", "--set", "update.replay_ratio=0"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "0 replayed samples" in out.splitlines()[0]
    assert err.startswith("error: update refused: accuracy ")
    assert "(forgetting vs parent dg@2 <= 0.05); accuracy " in err
    assert err.endswith("(forgetting vs original dg@1 <= 0.05)\n")
    versions, events, runs = snapshot(ws)
    assert versions[:-1] == before[0] and versions[-1][1] == ()  # registered, not serving
    assert events == [*before[1], ("registered", versions[-1][0]),
                      ("promotion_refused", versions[-1][0])]
    assert runs == before[2] + 1


@pytest.mark.parametrize(("make", "message", "code"), [
    (lambda p: digits_npz(p, slice(0, 0)), "error: update: {p} holds no samples; an update needs "
                                           "new labelled samples to learn from", 1),
    (lambda p: digits_npz(p, slice(0, 60), labels=[10, 11]),
     "error: update: none of the data's classes ['10', '11'] is one of dg@2's ['0', '1', '2', '3', "
     "'4', '5', '6', '7', '8', '9']; train a model for new classes with `dlforge finetune CONFIG "
     "--from dg@2`", 1),
    (lambda p: digits_npz(p, slice(0, 90), labels=[1, 2, 12]),
     "error: update: classes ['12'] of the data are not among dg@2's", 1),
    (lambda p: digits_npz(p, slice(0, 60), side=16),
     "error: update: dg@2 takes inputs of shape [1, 8, 8] (raw [1, 8, 8]); this data's samples "
     "are [1, 16, 16]", 1),
    (lambda p: p.with_suffix(".txt"), "error: --data: '{p}' is neither a run config (.yaml, "
                                      ".yml, .json), an image folder, a .csv nor an .npz file; "
                                      "give one of those\n", 2),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros(3)) or p.with_suffix(".npy"),
     "error: --data: '{p}' is neither a run config (.yaml, .yml, .json), an image folder, a .csv "
     "nor an .npz file; give one of those\n", 2),
    (lambda p: p.with_name("missing.csv"), "error: --data: '{p}' does not exist; give an existing "
                                           "image folder, .csv or .npz file\n", 2),
])
def test_bad_updates_are_one_line_errors_and_leave_the_store(ws, capsys, make, message, code):
    before = snapshot(ws)
    path = make(ws / "bad.npz")
    got = main(["-w", str(ws), "update", "dg@production", "--data", str(path), "-q"])
    err = capsys.readouterr().err
    assert (got, err.count("\n")) == (code, 1)
    assert err.startswith(message.format(p=path))
    assert snapshot(ws) == before


@pytest.mark.parametrize("mode", ["--data", "--watch"])
def test_a_malformed_require_is_refused_before_anything_starts(ws, tmp_path, capsys, mode):
    before = snapshot(ws)
    target = ws / "shifted.npz" if mode == "--data" else tmp_path
    code = main(["-w", str(ws), "update", "dg@production", mode, str(target), "-q",
                 "--require", "accuracy >= champion -"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == ("error: --require: 'accuracy >= champion -' is not a condition; write METRIC OP "
                   "BOUND with OP one of >=, <=, >, < and BOUND a number, champion, champion - 0.01 "
                   "or 1.2 * champion\n")
    assert snapshot(ws) == before


def test_data_the_source_trained_on_is_refused_before_training(ws, capsys):
    before = snapshot(ws)
    path = digits_npz(ws / "seen.npz", slice(0, 600), shift=0)  # rows of v1's own data
    code = main(["-w", str(ws), "update", "dg@1", "--data", str(path), "-q"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert [line.split(" of its ")[0] for line in lines] == ["error: gate set: 65", "error: gate set: 10"]
    assert lines[0].endswith(" of its 90 rows (test split of the update's data) are in the train "
                             "split dg@1 trained with; the gate scores the update on them; give data "
                             "the model has not seen")
    assert " are in the val split dg@1 trained with; " in lines[1]
    assert snapshot(ws) == before


def test_an_update_without_conditions_is_refused_before_training(ws, tmp_path):
    config = tmp_path / "nogate.yaml"
    config.write_text(f"data: {{source: npz, path: {ws / 'shifted.npz'}}}\n")
    with Store.open(ws) as store, pytest.raises(ConfigError, match=r"^evaluate\.gate: an update must "
                                                                   r"pass the gate, and .*nogate\.yaml "
                                                                   r"names no conditions"):
        update_config(store, "dg@production", config)


def test_an_update_source_cannot_be_searched_or_transferred():
    with pytest.raises(ConfigError) as caught:
        load_config({"update": {"source": "dg@1"}, "transfer": {"source": "other@1"},
                     "tune": {"space": {"train.lr": {"log_uniform": [0.001, 0.1]}}}})
    assert "tune: an update keeps the source's architecture" in str(caught.value)
    assert "transfer.source: an update continues dg@1; it cannot also start from other@1" in str(caught.value)


def test_a_bundle_without_replay_buffer_updates_without_replay_and_says_so(ws, capsys):
    with Store.open(ws) as store:
        bundle = store.resolve("dg@production").bundle_path
    shutil.move(bundle / REPLAY, ws / "kept.npz")
    try:
        code = main(["-w", str(ws), "update", "dg@production", "--data", str(ws / "shifted.npz"), "-q"])
    finally:
        shutil.move(ws / "kept.npz", bundle / REPLAY)
    out, err = capsys.readouterr()
    assert code in (0, 1) and "420 new + 0 replayed samples" in out
    assert err.startswith("warning: update: dg@2 has no replay buffer (registered before dlforge "
                          "kept one, or with update.replay_size 0), so this update trains on the "
                          "new data only")


def digit_pngs(folder: Path, rows, *, shift: int, offset: int = 0) -> None:
    """Digits `rows` shifted `shift` pixels right as PNG files in class folders (the class
    named by the digit + `offset`)."""
    from PIL import Image

    d = load_digits()
    x = np.roll(np.rint(d.images * (255 / 16)).astype(np.uint8), shift, axis=2)
    for i in rows:
        (folder / str(d.target[i] + offset)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i]).save(folder / str(d.target[i] + offset) / f"{i}.png")


def watch_state(ws: Path, folder: Path) -> Path:
    """The folder where `dlforge update --watch FOLDER` of model dg keeps its state and batches."""
    return ws / "updates" / "dg" / hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]


def test_watch_folds_a_batch_of_image_files_through_the_gate(ws, tmp_path, capsys):
    digit_pngs(tmp_path / "in", range(600, 750), shift=2)  # rows the other updates did not use
    before = snapshot(ws)
    code = main(["-w", str(ws), "update", "dg@production", "--watch", str(tmp_path / "in"),
                 "--max-batches", "1", "--set", "update.watch.poll_seconds=0.1"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"watching {tmp_path / 'in'} for new images (0 batches folded in before); "
                      f"Ctrl-C stops after the batch")
    assert out[1].startswith(f"batch 1: 150 files -> dg@{len(before[0]) + 1} from dg@")
    promoted = out[1].endswith("promoted to production")
    assert promoted or "; refused (" in out[1]
    assert code == (0 if promoted else 1)  # a refused batch exits 1, as a refused update does
    state = sorted((ws / "updates" / "dg").glob("*/state.json"))
    assert len(state) == 1
    assert out[2] == f"stopped after 1 batches{'' if promoted else ' (1 refused)'}; state in {state[0]}"
    assert len(snapshot(ws)[0]) == len(before[0]) + 1


def test_a_ctrl_c_while_a_batch_records_its_run_stops_the_watch_after_it(ws, tmp_path, capsys,
                                                                         monkeypatch):
    # the hold around the completed write dropped the signal: the watch went on to batch 2
    digit_pngs(tmp_path / "in", range(750, 1050), shift=2)  # two batches of 150
    real_finish = Store.finish_run

    def ctrl_c_as_it_completes(self, run_id, status, *args, **kwargs):
        if status == "completed":
            os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C during the write
            time.sleep(0.05)  # the handler runs at the next bytecode: held
        return real_finish(self, run_id, status, *args, **kwargs)

    monkeypatch.setattr(Store, "finish_run", ctrl_c_as_it_completes)
    before = snapshot(ws)
    code = main(["-w", str(ws), "update", "dg@production", "--watch", str(tmp_path / "in"),
                 "--max-batches", "2", "--set", "update.watch.poll_seconds=0.1", "--set",
                 "update.watch.batch_size=150"])
    out = capsys.readouterr().out.splitlines()
    assert code in (0, 1)  # the gate decides
    assert [line.split(":")[0] for line in out[1:-1]] == ["batch 1"]
    assert out[-1].startswith("stopped after 1 batches")
    after = snapshot(ws)
    assert (len(after[0]), after[2]) == (len(before[0]) + 1, before[2] + 1)


def test_fresh_data_of_a_few_classes_is_gated_on_the_models_labels(ws, capsys):
    d = load_digits()
    rows = np.flatnonzero(np.isin(d.target, [3, 5]))[:150]
    x = np.roll(np.rint(d.images * (255 / 16)).astype(np.uint8), 1, axis=2)[rows, None]
    np.savez(ws / "three_five.npz", x_train=x, y_train=d.target[rows])
    splits = load_and_split(load_config({"data": {"source": "npz", "path": str(ws / "three_five.npz")}}))[1]
    with Store.open(ws) as store:
        seen_before = read_replay(store.resolve("dg@production").bundle_path).seen
    code = main(["-w", str(ws), "update", "dg@production", "--data", str(ws / "three_five.npz"), "-q"])
    out = capsys.readouterr().out.splitlines()
    assert code in (0, 1)  # the gate decides; either way it scored the rows as 3 and 5
    assert f" on {len(splits.test)} rows (test split of run " in out[1]
    with Store.open(ws) as store:
        buffer = read_replay(store.list_versions("dg")[-1].bundle_path)
    added = buffer.seen - seen_before
    assert added.tolist() == [0, 0, 0, *np.bincount(splits.train.y).tolist()[:1], 0,
                              *np.bincount(splits.train.y).tolist()[1:], 0, 0, 0, 0]


def test_rows_the_champion_trained_on_are_refused_too_when_the_source_is_another_version(ws, capsys):
    """The gate compares the update with the alias's holder: its training rows count too."""
    with Store.open(ws) as store:
        store.set_alias("dg", "veteran", 2)  # dg@2 trained on shifted.npz's rows; dg@1 did not
    before = snapshot(ws)
    config = ws / "veteran-gate.yaml"
    config.write_text(f"seed: 7\ndata: {{source: npz, path: {ws / 'shifted.npz'}}}\n"  # another split
                      "evaluate: {gate: {alias: veteran, conditions: ['accuracy >= champion']}}\n")
    code = main(["-w", str(ws), "update", "dg@1", "--data", str(config), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert [line.split(" are in the ")[1] for line in err.splitlines()] == [
        "train split dg@2 trained with; the gate scores the update on them; give data the model "
        "has not seen",
        "val split dg@2 trained with; the gate scores the update on them; give data the model "
        "has not seen"]
    assert snapshot(ws) == before


@pytest.fixture
def reads(monkeypatch):
    """How many times each data set is read from its source, by data.path (or data.name)."""
    import dlforge.data.prepare as prepare

    counted, original = Counter(), prepare.load_dataset

    def counting(cfg):
        counted[cfg.path or cfg.name] += 1
        return original(cfg)

    monkeypatch.setattr(prepare, "load_dataset", counting)
    return counted


def own_store(tmp_path: Path, reads: Counter) -> Path:
    """A workspace of its own holding dg@1, promoted to production by its run (the versions
    the module's other tests register and promote would change the gate), with `reads` cleared."""
    ws = tmp_path / "ws"
    run(BASE, workspace=ws, progress=False)
    reads.clear()
    return ws


def test_an_update_reads_each_data_set_once(tmp_path, capsys, reads):
    ws = own_store(tmp_path, reads)
    path = digits_npz(tmp_path / "once.npz", slice(750, 1100), shift=3)
    code = main(["-w", str(ws), "update", "dg@production", "--data", str(path), "-q"])
    out = capsys.readouterr().out.splitlines()
    assert (code, out[-1]) == (0, "dg@production -> version 2")  # passed the gate
    assert out[0].startswith("update: dg@2 from dg@1: 244 new + 244 replayed samples (replay share 0.50)")
    assert reads == {str(path): 1, "digits": 1}  # the fresh data; dg@1's (forgetting, champion)


def test_a_watch_reads_the_lineages_data_once_for_all_its_batches(tmp_path, capsys, reads):
    ws = own_store(tmp_path, reads)
    digit_pngs(tmp_path / "in", range(1100, 1300), shift=3)
    code = main(["-w", str(ws), "update", "dg@production", "--watch", str(tmp_path / "in"), "-q",
                 "--max-batches", "2", "--set", "update.watch.poll_seconds=0.1",
                 "--set", "update.watch.batch_size=100", "--set", "update.watch.min_files=100"])
    state = watch_state(ws, tmp_path / "in")
    assert (code, *capsys.readouterr()) == (0, f"stopped after 2 batches; state in {state / 'state.json'}\n", "")
    assert snapshot(ws)[0] == [(1, ()), (2, ()), (3, ("production",))]  # each batch passed the gate
    assert reads == {str(state / "batch-0001"): 1, str(state / "batch-0002"): 1, "digits": 1}


def test_a_watch_whose_every_batch_failed_exits_1_saying_so(ws, tmp_path, capsys):
    rows = np.flatnonzero(np.isin(load_digits().target, [0, 1]))[:30]
    digit_pngs(tmp_path / "in", rows, shift=1, offset=10)  # classes 10 and 11: not the model's
    with Store.open(ws) as store:
        source = store.resolve("dg@production").ref
    before = snapshot(ws)
    code = main(["-w", str(ws), "update", "dg@production", "--watch", str(tmp_path / "in"), "-q",
                 "--max-batches", "1", "--set", "update.watch.poll_seconds=0.1",
                 "--set", "update.watch.min_files=2"])
    out, err = capsys.readouterr()
    state = watch_state(ws, tmp_path / "in") / "state.json"
    assert code == 1
    assert out.splitlines()[-1] == f"stopped after 1 batches (1 failed); state in {state}"
    assert err == (f"error: update --watch: every batch failed (1 of 1; the last: update: none of "
                   f"the data's classes ['10', '11'] is one of {source}'s ['0', '1', '2', '3', '4', "
                   f"'5', '6', '7', '8', '9']; train a model for new classes with `dlforge finetune "
                   f"CONFIG --from {source}`); fix or remove their files, then fold them in again "
                   f"with --retry-failed\n")
    assert snapshot(ws) == before


def test_a_watch_whose_every_batch_the_gate_refused_exits_1_as_a_refused_update(ws, tmp_path, capsys):
    digit_pngs(tmp_path / "in", range(1300, 1450), shift=1)  # rows no other test uses
    before = snapshot(ws)
    code = main(["-w", str(ws), "update", "dg@production", "--watch", str(tmp_path / "in"), "-q",
                 "--max-batches", "1", "--set", "update.watch.poll_seconds=0.1",
                 "--set", "update.watch.min_files=2", "--require", "accuracy >= champion + 1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == f"stopped after 1 batches (1 refused); state in {watch_state(ws, tmp_path / 'in') / 'state.json'}\n"
    assert err.startswith("error: update --watch: no batch passed the gate (1 refused of 1; the last "
                          "refused (accuracy ")
    assert err.endswith("); the alias did not move\n") and len(err.splitlines()) == 1
    after = snapshot(ws)
    assert after[0][:-1] == before[0] and after[0][-1][1] == ()  # registered, not serving
