"""End to end: the real `dlforge` command on shipped data, in a temporary workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def cli(workspace: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLFORGE_WORKSPACE": str(workspace), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "dlforge", *args], capture_output=True, text=True,
                          env=env, timeout=600, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"dlforge {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("digits-ws")
    proc = cli(workspace, "run", "examples/digits.yaml", "--quiet",
                   "--set", "train.epochs=4", "--set", "name=digits")
    return workspace, proc


def test_digits_run_trains_registers_and_reports(digits_run):
    workspace, proc = digits_run
    from dlforge.registry import Store

    store = Store.open(workspace)
    version = store.resolve("digits@staging")
    assert version.version == 1
    accuracy = dict(version.metrics["headline"])["accuracy"]
    assert accuracy > 0.5  # ten classes: chance is 0.1; 4 epochs of a small CNN do far better
    run = store.get_run(version.run_id)
    assert run.status == "completed"
    report = Path(run.report_path).read_text()
    assert report.count("data:image/png;base64,") >= 4  # curves, LR, confusion matrix, misclassified
    assert "http://" not in report and "https://" not in report
    assert f"report: {run.report_path}" in proc.stdout


def test_digits_predict_matches_in_process(digits_run, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    import dlforge

    workspace, _ = digits_run
    images = np.rint(load_digits().images[:5] * (255 / 16)).astype(np.uint8)
    files = []
    for i, image in enumerate(images):
        files.append(tmp_path / f"digit{i}.png")
        Image.fromarray(image, mode="L").save(files[-1])
    proc = cli(workspace, "predict", "digits@staging", *map(str, files), "--format", "json")
    from_cli = json.loads(proc.stdout)
    in_process = dlforge.load("digits@staging", workspace=workspace).predict(images[:, None], top_k=3)
    assert [row["label"] for row in from_cli] == [row["label"] for row in in_process]
    for cli_row, row in zip(from_cli, in_process, strict=True):
        assert cli_row["scores"] == pytest.approx(row["scores"], abs=1e-6)


def test_sms_spam_run_reports_spam_recall_first(tmp_path):
    workspace = tmp_path / "ws"
    cli(workspace, "run", "examples/sms_spam.yaml", "--quiet", "--set", "train.epochs=3")
    from dlforge.registry import Store

    version = Store.open(workspace).resolve("sms-spam")
    headline = version.metrics["headline"]
    assert [name for name, _ in headline[:2]] == ["recall[spam]", "precision[ham]"]
    assert dict(headline)["recall[spam]"] > 0.5
    texts = ["WINNER!! You have won a 1000 cash prize. Call 09061701461 to claim now",
             "Are we still meeting for lunch tomorrow?"]
    proc = cli(workspace, "predict", "sms-spam", "--text", texts[0], "--text", texts[1],
                   "--format", "json")
    import dlforge

    in_process = dlforge.load("sms-spam", workspace=workspace).predict(texts)
    assert [r["label"] for r in json.loads(proc.stdout)] == [r["label"] for r in in_process]


def test_digits_search_example_records_trials_registers_and_reports(tmp_path):
    workspace = tmp_path / "ws"
    proc = cli(workspace, "run", "examples/digits_search.yaml", "--quiet",
               "--set", "tune.n_trials=3", "--set", "train.epochs=2")
    from dlforge.registry import Store

    store = Store.open(workspace)
    assert sorted(r.kind for r in store.list_runs()) == ["train", "trial", "trial", "trial"]
    version = store.resolve("digits-search@staging")
    run = store.get_run(version.run_id)
    assert (version.version, run.kind, run.status) == (1, "train", "completed")
    tune = run.metrics["tune"]
    assert (tune["metric"], tune["direction"]) == ("val_accuracy", "maximize")
    counts = tune["counts"]
    assert (counts["failed"], counts["running"], counts["complete"] + counts["pruned"]) == (0, 0, 3)
    assert counts["complete"] >= 2  # the median pruner waits for 2 complete trials
    assert sorted(tune["best_params"]) == ["model.dense", "model.dropout", "train.batch_size",
                                           "train.lr"]
    report = Path(run.report_path).read_text()
    assert f"Search trials ({tune['study']})" in report
    assert "Optimization history: val_accuracy per trial" in report
    assert f"report: {run.report_path}" in proc.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "no-such.yaml"], 2, "error: config file 'no-such.yaml' does not exist"),
        (["run", "--set", "model.type=vgg"], 2, "error: model: unknown type; allowed:"),
        (["run", "--set", "train.lr=-1"], 2, "error: train.lr: must be greater than 0 (got -1)"),
        (["run", "--set", "data.source=csv", "--set", "data.path=/nope.csv"], 1, "error: data.path:"),
        (["predict", "ghost", "x.png"], 1, "error: No model named 'ghost'"),
        (["models", "show", "ghost@production"], 1, "error: No model named 'ghost'"),
        (["runs", "show", "nope"], 1, "error: No run with id 'nope'"),
        (["run", "--bogus"], 2, "error: No such option: --bogus (see 'dlforge run -h')\n"),
        (["predict"], 2, "error: Missing argument 'MODEL' (see 'dlforge predict -h')\n"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_trace(tmp_path, args, code, message):
    workspace = tmp_path / "ws"
    proc = cli(workspace, *args, check=False)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr
    models_dir = workspace / "artifacts" / "models"
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


def test_corrupt_store_is_a_clear_error(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "dlforge.db").write_bytes(b"this is not a database" * 100)
    proc = cli(workspace, "models", "list", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: store: cannot open"), proc.stderr
    assert (workspace / "dlforge.db").read_bytes() == b"this is not a database" * 100


def test_wrong_image_size_is_a_clear_error(digits_run, tmp_path):
    from PIL import Image

    workspace, _ = digits_run
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8), mode="L").save(tmp_path / "big.png")
    proc = cli(workspace, "predict", "digits@staging", str(tmp_path / "big.png"), check=False)
    assert proc.returncode == 1
    assert proc.stderr == f"error: input: {tmp_path / 'big.png'} is 28x28 pixels; the model takes 8x8 images\n"
