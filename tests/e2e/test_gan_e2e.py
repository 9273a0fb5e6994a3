"""A GAN run end to end on digits: trains, reports, registers, resumes after kill -9 to the
same weights, and `dlforge generate` draws a grid from the registered model."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from dlforge.cli import main
from dlforge.pipeline import run
from dlforge.registry import Store

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "name": "gan",
    "data": {"source": "builtin", "name": "digits", "limit": 500},
    "preprocess": {"image": {"standardize": False}},
    "model": {"type": "dcgan", "width": 8, "latent_dim": 8, "grid": 16, "classifier_epochs": 1},
    "train": {"epochs": 3, "batch_size": 32, "num_threads": 1, "early_stopping": False,
              "checkpoint": {"monitor": "val_frechet"}},
    "evaluate": {"baseline": False},
    "registry": {"alias": "production"},
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("gan")
    return run(CONFIG, workspace=workspace, progress=False), workspace


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_a_gan_run_reports_and_registers(reference):
    result, workspace = reference
    assert result.model_ref == "gan@1"
    assert [name for name, _ in result.headline] == [
        "frechet", "frechet_floor", "frechet_ceiling", "confidence", "class_coverage"]
    metrics = result.test_metrics
    assert metrics["n_samples"] == 37  # half of the 75 test images of 500
    assert 0 <= metrics["frechet_floor"] < metrics["frechet_ceiling"]
    assert [row["epoch"] for row in result.history] == [0, 1, 2]
    grids = sorted(p.name for p in (result.report_path.parent / "samples").iterdir())
    assert grids == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]
    html = result.report_path.read_text()
    titles = [f"Samples from the fixed latent batch after epoch {e}<" for e in (1, 2, 3, 4)]
    assert [title in html for title in titles] == [True, True, True, False]
    assert "Frechet distance on validation" in html
    with Store.open(workspace) as store:
        assert store.resolve("gan@production").version == 1


def test_generate_writes_a_grid_and_refuses_bad_input(reference, tmp_path, capsys):
    _, workspace = reference
    out = tmp_path / "grid.png"
    assert main(["-w", str(workspace), "generate", "gan@production", "-n", "16", "-o", str(out)]) == 0
    first = out.read_bytes()
    assert png_size(out)[0] > 0
    assert main(["-w", str(workspace), "generate", "gan@production", "-n", "16", "-o", str(out)]) == 0
    assert out.read_bytes() == first  # the same seed draws the same images
    capsys.readouterr()
    assert main(["-w", str(workspace), "generate", "nope", "-o", str(tmp_path / "x.png")]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["-w", str(workspace), "generate", "gan", "-o", str(tmp_path / "x.jpg")]) == 2
    assert "must be a .png file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def test_predict_refuses_a_gan(reference, tmp_path, capsys):
    _, workspace = reference
    Image.new("L", (8, 8)).save(tmp_path / "zero.png")
    capsys.readouterr()
    assert main(["-w", str(workspace), "predict", "gan@1", str(tmp_path / "zero.png")]) == 2
    assert capsys.readouterr().err == ("error: model: gan@1 is a GAN (model.type dcgan): it "
                                       "generates images (`dlforge generate`) and predicts "
                                       "nothing\n")


def test_generate_refuses_a_model_that_is_not_a_gan(tmp_path, capsys):
    cfg = {"name": "cnn", "data": {"source": "builtin", "name": "digits", "limit": 200},
           "train": {"epochs": 1, "num_threads": 1}, "evaluate": {"baseline": False}}
    run(cfg, workspace=tmp_path, progress=False)
    capsys.readouterr()
    assert main(["-w", str(tmp_path), "generate", "cnn", "-o", str(tmp_path / "g.png")]) == 2
    assert capsys.readouterr().err == ("error: model: cnn is not a GAN (model.type dcgan), so it "
                                       "generates no images; use `dlforge predict` for it\n")
    assert not (tmp_path / "g.png").exists()


def test_a_killed_gan_run_resumes_to_the_same_weights(reference, tmp_path):
    config, workspace = tmp_path / "gan.yaml", tmp_path / "ws"
    config.write_text(yaml.safe_dump(CONFIG))
    # mid-epoch hits: 1 = the classifier's epoch, 2 = GAN epoch 0, 3 = GAN epoch 1
    env = {**os.environ, "DLFORGE_FAULT_AT": "mid-epoch@3", "DLFORGE_WORKSPACE": str(workspace)}
    proc = subprocess.run([sys.executable, "-m", "dlforge", "run", str(config), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Store.open(workspace) as store:
        (killed,) = store.list_runs()
    checkpoint = torch.load(workspace / "artifacts" / "runs" / killed.id / "checkpoints" / "last.pt",
                            weights_only=True)
    assert checkpoint["epoch"] == 0

    resumed = run(workspace=workspace, resume=killed.id, progress=False)

    want = load_file(reference[0].bundle_path / "weights.safetensors")
    got = load_file(resumed.bundle_path / "weights.safetensors")
    assert want.keys() == got.keys() and len(want) > 10
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert resumed.test_metrics == reference[0].test_metrics
