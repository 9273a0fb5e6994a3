"""`dlforge inspect MODEL INPUT`: pictures and statistics of one input; one-line errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_wine

from dlforge.cli import main
from dlforge.pipeline import run

CNN = {"name": "cnn", "data": {"source": "builtin", "name": "digits", "limit": 150},
       "model": {"type": "basic_cnn", "filters": [4, 8], "dense": 16},
       "train": {"epochs": 1}, "evaluate": {"baseline": False}, "review": {"in_run": False}}
MLP = {**CNN, "name": "mlp", "data": {"source": "builtin", "name": "wine"}, "model": {"type": "mlp", "hidden": [8]}}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    run(CNN, workspace=root / "ws", progress=False)
    run(MLP, workspace=root / "ws", progress=False)
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).save(root / "eight.png")
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(root / "ten.png")
    names = load_wine().feature_names
    (root / "row.csv").write_text(",".join(names) + "\n" + ",".join(["1"] * len(names)) + "\n")
    return root


def test_inspect_writes_block_maps_saliency_and_filters(workspace, capsys):
    out = workspace / "out"
    assert main(["-w", str(workspace / "ws"), "inspect", "cnn", str(workspace / "eight.png"),
                 "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == [
        "00-feature-maps-of-features-0.png", "01-feature-maps-of-features-1.png",
        "02-saliency-input-gradients-of-class-" + str(result["saliency_target"]) + ".png",
        "03-first-layer-filters.png", "inspection.json"]
    assert result["blocks"] == {"features.0": [4, 4, 4], "features.1": [8, 2, 2]}
    assert [r["layer"] for r in result["statistics"]][:2] == ["features.0.0", "features.0.1"]
    assert result["notes"] == [] and result["prediction"]["label"] in [str(i) for i in range(10)]


def test_a_model_without_convolutions_says_what_it_shows_instead(workspace, capsys):
    code = main(["-w", str(workspace / "ws"), "inspect", "mlp", str(workspace / "row.csv"),
                 "-o", str(workspace / "mlp-out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert ("no 2-D convolution: per-layer statistics, the first layer's weights and the saliency "
            "are shown instead of feature maps") in captured.err
    # the prediction as columns with 4 decimals, as `dlforge predict` shows it (was a dict's repr)
    assert re.fullmatch(r"mlp on row\.csv: label class_\d(, scores_class_\d 0\.\d{4}){3}",
                        captured.out.splitlines()[0]), captured.out
    assert sorted(p.name for p in (workspace / "mlp-out").iterdir()) == [
        "00-saliency-per-feature-input-gradients.png",
        "01-first-layer-weight-magnitude-per-input-feature-l2-norm.png", "inspection.json"]


def test_an_input_of_the_wrong_size_is_one_line_and_writes_nothing(workspace, capsys):
    out = workspace / "never"
    code = main(["-w", str(workspace / "ws"), "inspect", "cnn", str(workspace / "ten.png"), "-o", str(out)])
    assert code == 1 and not out.exists()
    assert capsys.readouterr().err == (f"error: input: {workspace / 'ten.png'} is 10x10 pixels; the model "
                                       f"takes 8x8 images\n")


def test_a_missing_input_is_one_line(workspace, capsys):
    assert main(["-w", str(workspace / "ws"), "inspect", "cnn", str(workspace / "none.png")]) == 1
    assert capsys.readouterr().err == f"error: INPUT: no file '{workspace / 'none.png'}'\n"
    assert main(["-w", str(workspace / "ws"), "inspect", "cnn", str(workspace)]) == 1
    assert capsys.readouterr().err == (f"error: INPUT: '{workspace}' is a folder; inspect takes one "
                                       f"file (an image, a CSV row or a text, as the model takes)\n")


def test_a_gan_is_refused_in_one_line_and_writes_nothing(tmp_path, capsys):
    from tests.unit.export.export_models import register

    from dlforge.config.schema import DCGANConfig

    register(tmp_path / "ws", "gan", DCGANConfig(width=4, latent_dim=4))
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "eight.png")
    out = tmp_path / "out"
    assert main(["-w", str(tmp_path / "ws"), "inspect", "gan", str(tmp_path / "eight.png"),
                 "-o", str(out)]) == 2  # was an internal error from the generator's forward
    assert capsys.readouterr().err == ("error: model: gan@1 is a GAN (model.type dcgan): it "
                                       "generates images (`dlforge generate`) and predicts nothing\n")
    assert not out.exists()


def test_running_it_again_without_output_writes_beside_the_first(workspace, capsys):
    """The default folder is numbered when it exists (it was refused as an existing --output)."""
    ws = workspace / "ws"
    for _ in range(2):
        assert main(["-w", str(ws), "inspect", "cnn@1", str(workspace / "eight.png")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wrote")]
    assert lines == [f"wrote 5 files to {ws.resolve() / 'inspections' / 'cnn-1-eight'}",
                     f"wrote 5 files to {ws.resolve() / 'inspections' / 'cnn-1-eight-2'}"]
    explicit = ws / "inspections" / "cnn-1-eight"
    assert main(["-w", str(ws), "inspect", "cnn", str(workspace / "eight.png"), "-o", str(explicit)]) == 2
    assert capsys.readouterr().err == (f"error: --output: {explicit} already exists; remove it or "
                                       f"choose another directory\n")


def test_an_inspection_started_beside_another_takes_the_next_folder_when_it_writes(
        workspace, capsys, monkeypatch):
    """The folder was chosen before the model was read; a second inspection writing it first
    made this one fail with 'internal error: FileExistsError'."""
    import dlforge.pipeline.inspect_registered as inspecting

    ws, real = workspace / "ws", inspecting.inspect_model
    taken = ws.resolve() / "inspections" / "cnn-eight"

    def another_writes_meanwhile(*args):
        taken.mkdir(parents=True)
        (taken / "inspection.json").write_text("{}")
        return real(*args)

    monkeypatch.setattr(inspecting, "inspect_model", another_writes_meanwhile)
    assert main(["-w", str(ws), "inspect", "cnn", str(workspace / "eight.png")]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == f"wrote 5 files to {taken}-2"
    assert len(list(taken.with_name("cnn-eight-2").iterdir())) == 5


def test_an_output_folder_created_while_inspecting_keeps_the_files_beside_it(workspace, capsys,
                                                                             monkeypatch):
    """Another process made the --output folder meanwhile: the files were lost with
    'internal error: FileExistsError'."""
    import dlforge.pipeline.inspect_registered as inspecting

    real, out = inspecting.inspect_model, workspace / "taken"

    def another_process_makes_the_folder(*args):
        out.mkdir()
        return real(*args)

    monkeypatch.setattr(inspecting, "inspect_model", another_process_makes_the_folder)
    assert main(["-w", str(workspace / "ws"), "inspect", "cnn", str(workspace / "eight.png"),
                 "-o", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"error: --output: {out} was created by another process while this one worked; it is "
        f"left as it is, and the files written are in {out}-2\n")
    assert list(out.iterdir()) == [] and len(list(workspace.joinpath("taken-2").iterdir())) == 5


def test_a_dangling_symlink_output_is_refused_up_front(workspace, tmp_path, capsys):
    """It passed exists(), and the rename at the end failed with ENOTDIR: an internal error,
    the files deleted."""
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert main(["-w", str(workspace / "ws"), "inspect", "cnn", str(workspace / "eight.png"),
                 "-o", str(tmp_path / "dangling")]) == 2
    assert capsys.readouterr().err == (f"error: --output: {tmp_path / 'dangling'} already exists; "
                                       f"remove it or choose another directory\n")
    assert [p.name for p in tmp_path.iterdir()] == ["dangling"]
