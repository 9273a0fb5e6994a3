"""The watch loop of `dlforge update --watch` with a scripted fold (no training): batches,
the state file, and a real SIGTERM/SIGINT to a subprocess in the middle of a batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dlforge.config.update_schema import WatchConfig
from dlforge.errors import ConfigError, DataError
from dlforge.lifecycle import watch as watch_module
from dlforge.lifecycle.watch import IMAGES, ROWS, StopFlag, WatchState, materialise, pending, watch

signatures, stable = watch_module.signatures, watch_module.stable

ROOT = Path(__file__).resolve().parents[3]


def add_images(folder: Path, cls: str, names: list[str]) -> None:
    (folder / cls).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (folder / cls / name).write_bytes(b"png")
        os.utime(folder / cls / name, (1000 + i, 1000 + i))


def test_batches_are_bounded_recorded_and_never_folded_twice(tmp_path):
    folder, home = tmp_path / "in", tmp_path / "home"
    add_images(folder, "a", [f"{i}.png" for i in range(5)])
    add_images(folder, "b", ["x.png", "y.jpg", "notes.txt"])
    folds, lines = [], []
    state = WatchState.load(home / "state.json")
    count = watch(folder, IMAGES, lambda p: folds.append(sorted(str(f.relative_to(p)) for f in
                                                                p.rglob("*.*"))) or "ok",
                  WatchConfig(batch_size=4, min_files=3, poll_seconds=0.01), state=state,
                  batches=home, echo=lines.append, stop=StopFlag(), max_batches=2)
    assert count == 2 and lines == ["batch 1: 4 files -> ok", "batch 2: 3 files -> ok"]
    assert folds == [["a/0.png", "a/1.png", "b/x.png", "b/y.jpg"], ["a/2.png", "a/3.png", "a/4.png"]]
    saved = json.loads((home / "state.json").read_text())["batches"]
    assert [(b["batch"], len(b["files"]), b["outcome"]) for b in saved] == [(1, 4, "ok"), (2, 3, "ok")]
    assert pending(folder, IMAGES, WatchState.load(home / "state.json").done) == []


def test_a_failing_batch_is_recorded_with_its_error_and_the_watch_goes_on(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.csv").write_text(f"a,label\n{i},x\n")

    def fold(path: Path) -> str:
        raise DataError(f"update: bad rows in {path.name}\nsecond line")

    lines = []
    watch(folder, ROWS, fold, WatchConfig(batch_size=2, min_files=1, poll_seconds=0.01),
          state=WatchState(tmp_path / "s.json"),
          batches=tmp_path / "b", echo=lines.append, stop=StopFlag(), max_batches=2)
    assert lines == ["batch 1: 2 files -> error: update: bad rows in rows.csv",
                     "batch 2: 1 files -> error: update: bad rows in rows.csv"]
    assert (tmp_path / "b" / "batch-0001" / "rows.csv").read_text() == "a,label\n0,x\n1,x\n"


def test_a_config_mistake_stops_the_watch_and_leaves_the_batch_pending(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "0.csv").write_text("a,label\n0,x\n")

    def fold(path: Path) -> str:
        raise ConfigError("evaluate.gate: no conditions; give --require")

    state, lines = WatchState(tmp_path / "s.json"), []
    with pytest.raises(ConfigError, match="^evaluate.gate: no conditions"):
        watch(folder, ROWS, fold, WatchConfig(batch_size=2, min_files=1, poll_seconds=0.01), state=state,
              batches=tmp_path / "b", echo=lines.append, stop=StopFlag(), max_batches=2)
    assert lines == [] and state.batches == [] and not (tmp_path / "s.json").exists()
    assert pending(folder, ROWS, state.done) == ["0.csv"]


def test_images_in_nested_folders_of_a_class_folder_are_watched_and_copied(tmp_path):
    # the watch read only incoming/<class>/*.png, as training did
    folder = tmp_path / "in"
    add_images(folder, "a", ["1.png"])
    add_images(folder / "a", "day2", ["2.png"])
    add_images(folder / "a", ".tmp", ["3.png"])
    names = pending(folder, IMAGES, set())
    assert names == ["a/1.png", "a/day2/2.png"]
    dest = materialise(folder, names, tmp_path / "batch", IMAGES)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.png")) == names


def test_materialise_starts_a_half_copied_batch_afresh(tmp_path):
    add_images(tmp_path / "in", "a", ["1.png"])
    (tmp_path / "b" / "stale").mkdir(parents=True)
    dest = materialise(tmp_path / "in", ["a/1.png"], tmp_path / "b", IMAGES)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["a", "a/1.png"]


def test_a_broken_state_file_is_a_one_line_error(tmp_path):
    (tmp_path / "s.json").write_text("{")
    with pytest.raises(DataError, match=r"^--watch: .*s\.json is not a watch state file"):
        WatchState.load(tmp_path / "s.json")


SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dlforge.config.update_schema import WatchConfig
    from dlforge.lifecycle.watch import ROWS, StopFlag, WatchState, watch

    folder, home = Path(sys.argv[1]), Path(sys.argv[2])

    def fold(path):
        print("folding", flush=True)
        time.sleep(1.5)   # the signal arrives here, in the middle of the batch
        return "done"

    with StopFlag().catching() as stop:
        n = watch(folder, ROWS, fold, WatchConfig(batch_size=2, min_files=1, poll_seconds=0.05),
                  state=WatchState.load(home / "state.json"), batches=home, stop=stop,
                  echo=lambda line: print(line, flush=True))
    print(f"stopped after {n} by signal {stop.signal}", flush=True)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_batch_finishes_and_records_the_batch_then_stops(tmp_path, sig):
    folder, home = tmp_path / "in", tmp_path / "home"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.csv").write_text("a,label\n1,x\n")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder), str(home)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "folding\n"
    time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["batch 1: 2 files -> done", f"stopped after 1 by signal {int(sig)}"]
    saved = json.loads((home / "state.json").read_text())["batches"]
    assert [b["files"] for b in saved] == [["0.csv", "1.csv"]]
    again = pending(folder, ROWS, WatchState.load(home / "state.json").done)
    assert again == ["2.csv", "3.csv", "4.csv"]  # the next watch starts with these


def test_a_file_is_taken_once_its_size_and_mtime_held_for_one_poll(tmp_path):
    (tmp_path / "a.csv").write_text("a,label\n1,x\n")
    (tmp_path / "b.csv").write_text("a,label\n2,y\n")
    os.utime(tmp_path / "a.csv", (1000, 1000))
    os.utime(tmp_path / "b.csv", (1001, 1001))
    first = signatures(tmp_path, ROWS, set())
    assert first == {"a.csv": (12, 1000 * 10**9), "b.csv": (12, 1001 * 10**9)}
    assert stable(first, {}) == []  # a first sight is never enough
    with (tmp_path / "b.csv").open("a") as f:  # b is still being copied
        f.write("3,y\n")
    os.utime(tmp_path / "b.csv", (1001, 1001))  # same mtime, other size: still not taken
    second = signatures(tmp_path, ROWS, set())
    assert stable(second, first) == ["a.csv"]
    assert stable(signatures(tmp_path, ROWS, set()), second) == ["a.csv", "b.csv"]


def test_the_watch_waits_one_poll_before_taking_new_files(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "0.csv").write_text("a,label\n0,x\n")
    polls, lines = [], []
    stop = StopFlag()

    def fold(path: Path) -> str:
        stop.signal = 15
        return "ok"

    def counted(*args):
        polls.append(1)
        return signatures(*args)

    monkeypatch.setattr(watch_module, "signatures", counted)
    watch(tmp_path / "in", ROWS, fold, WatchConfig(batch_size=2, min_files=1, poll_seconds=0.01),
          state=WatchState(tmp_path / "s.json"), batches=tmp_path / "b", echo=lines.append, stop=stop)
    assert (len(polls), lines) == (2, ["batch 1: 1 files -> ok"])


@pytest.mark.parametrize(("content", "why"), [
    ("", "No columns to parse from file"),
    ('a,label\n1,"x\n', "Error tokenizing data. C error: EOF inside string starting at row 1"),
])
def test_an_unreadable_csv_fails_its_batch_naming_the_file(tmp_path, content, why):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "0.csv").write_text(content)
    with pytest.raises(DataError) as caught:
        materialise(folder, ["0.csv"], tmp_path / "b", ROWS)
    assert str(caught.value) == (f"--watch: {folder / '0.csv'} is not a readable CSV file ({why}); "
                                 f"fix or remove it, then retry its batch with --retry-failed")


def test_failed_batches_are_listed_apart_and_retried_only_when_asked(tmp_path):
    folder, lines = tmp_path / "in", []
    folder.mkdir()
    (folder / "0.csv").write_text("")
    os.utime(folder / "0.csv", (1000, 1000))
    (folder / "1.csv").write_text("a,label\n1,x\n")
    os.utime(folder / "1.csv", (1001, 1001))
    state = WatchState.load(tmp_path / "s.json")
    watch(folder, ROWS, lambda p: "ok", WatchConfig(batch_size=2, min_files=1, poll_seconds=0.01),
          state=state, batches=tmp_path / "b", echo=lines.append, stop=StopFlag(), max_batches=1)
    assert lines == [f"batch 1: 2 files -> error: --watch: {folder / '0.csv'} is not a readable CSV "
                     f"file (No columns to parse from file); fix or remove it, then retry its "
                     f"batch with --retry-failed"]
    saved = WatchState.load(tmp_path / "s.json")
    assert (saved.batches, [b["files"] for b in saved.failed]) == ([], [["0.csv", "1.csv"]])
    assert pending(folder, ROWS, saved.done) == []  # not retried by a restart
    (folder / "0.csv").write_text("a,label\n0,x\n")
    assert saved.retry_failed() == ["0.csv", "1.csv"]
    again = WatchState.load(tmp_path / "s.json")
    assert (again.failed, [b["batch"] for b in again.retried], again.next_number) == ([], [1], 2)
    assert pending(folder, ROWS, again.done) == ["1.csv", "0.csv"]  # the fixed file is newer
