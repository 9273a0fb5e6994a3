"""`dlforge data shard`: writes the manifest, refuses an existing --output (--out its hidden old name), texts and categories (exit codes)."""

from __future__ import annotations

import json

import pytest
import yaml

from dlforge.cli import main
from dlforge.errors import clipped


def config(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": data}))
    return str(path)


def test_the_shards_of_a_config_and_their_manifest(tmp_path, capsys):
    wine = config(tmp_path, {"source": "builtin", "name": "wine"})
    assert main(["data", "shard", wine, "--output", str(tmp_path / "s"), "--shard-size", "50"]) == 0
    assert capsys.readouterr().err.strip() == (
        f"wrote {tmp_path / 's'}: train 124 (3 shards), val 27 (1 shards), test 27 (1 shards); "
        f"0.02 MiB decoded")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert (manifest["modality"], manifest["x"], len(manifest["columns"])) == (
        "table", {"dtype": "float64", "shape": [13]}, 13)


def test_an_existing_out_and_texts_are_usage_errors(tmp_path, capsys):
    (tmp_path / "s").mkdir()
    wine = config(tmp_path, {"source": "builtin", "name": "wine"})
    assert main(["data", "shard", wine, "--output", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --output: {tmp_path / 's'} already exists; remove it or choose another directory")
    csv = tmp_path / "t.csv"
    csv.write_text("text,label\n" + "".join(f"word {i},{'ab'[i % 2]}\n" for i in range(40)))
    texts = config(tmp_path, {"source": "csv", "path": str(csv), "text_column": "text"})
    assert main(["data", "shard", texts, "--output", str(tmp_path / "t")]) == 2
    assert capsys.readouterr().err == (
        "error: data.text_column: texts cannot be sharded, only images and numeric tables (got "
        "'text'); train on them in memory\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "s", "t.csv"]


@pytest.mark.parametrize(("data", "message"), [
    ({"source": "csv", "text_column": "text"}, "data.text_column: texts cannot be sharded, only "
     "images and numeric tables (got 'text'); train on them in memory"),
    ({"source": "imdb"}, "data.source: texts cannot be sharded, only images and numeric tables "
     "(got 'imdb'); train on them in memory"),
    ({"source": "csv", "categorical_columns": ["city"]}, "data.categorical_columns: shards hold "
     "numeric tables only (got ['city']); encode them as numbers, or train in memory"),
])
def test_texts_and_categories_are_refused_before_the_data_is_read(tmp_path, capsys, monkeypatch,
                                                                  data, message):
    import dlforge.data.prepare as prepare

    def never(cfg):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(prepare, "load_dataset", never)
    path = config(tmp_path, {"path": str(tmp_path / "missing.csv"), **data})
    assert main(["data", "shard", path, "--output", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "s").exists()


def test_the_data_validations_warnings_are_printed_with_the_shards(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    for i in range(12):
        for name in "ab":
            (tmp_path / "img" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 4), 20 * i + (name == "b"), np.uint8)).save(
                tmp_path / "img" / name / f"{i}.png")
    (tmp_path / "img" / "a" / "empty.png").touch()
    folder = config(tmp_path, {"source": "image_folder", "path": str(tmp_path / "img")})
    assert main(["data", "shard", folder, "--output", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "warning: data: 1 files could not be read and were skipped (first: a/empty.png: cannot "
        "read image (the file is empty: 0 bytes))",
        f"wrote {tmp_path / 's'}: train 16 (1 shards), val 4 (1 shards), test 4 (1 shards); "
        f"0.00 MiB decoded"]


def test_an_out_folder_created_while_sharding_keeps_the_shards_beside_it(tmp_path, capsys,
                                                                       monkeypatch):
    """Another process made --out meanwhile: the shards were lost with 'internal error:
    FileExistsError'."""
    import dlforge.data.shards as shards

    real, out = shards._write_split, tmp_path / "s"

    def another_process_makes_the_folder(*args):
        out.mkdir(exist_ok=True)
        return real(*args)

    monkeypatch.setattr(shards, "_write_split", another_process_makes_the_folder)
    wine = config(tmp_path, {"source": "builtin", "name": "wine"})
    assert main(["data", "shard", wine, "--output", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"error: --output: {out} was created by another process while this one worked; it is "
        f"left as it is, and the files written are in {out}-2\n")
    assert list(out.iterdir()) == []
    assert json.loads((tmp_path / "s-2" / "manifest.json").read_text())["splits"]["train"]["count"] == 124


def test_a_dangling_symlink_out_is_taken_before_anything_is_read(tmp_path, capsys):
    """It passed exists(), and the rename at the end failed: an internal error, work deleted."""
    (tmp_path / "s").symlink_to(tmp_path / "nowhere")
    wine = config(tmp_path, {"source": "builtin", "name": "wine"})
    assert main(["data", "shard", wine, "--output", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err == (
        f"error: --output: {tmp_path / 's'} already exists; remove it or choose another directory\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "s"]


def test_out_stays_a_hidden_name_of_output(tmp_path, capsys):
    # every other command says --output; scripts written with --out keep working
    wine = config(tmp_path, {"source": "builtin", "name": "wine"})
    assert main(["data", "shard", wine, "--out", str(tmp_path / "s")]) == 0
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["splits"]["train"]["count"] == 124
    capsys.readouterr()
    assert main(["data", "shard", wine, "--out", str(tmp_path / "a"), "-o", str(tmp_path / "b")]) == 2
    assert main(["data", "shard", wine]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: Invalid value for '--output': give it once (--out is its old name) (see 'dlforge "
        "data shard -h')",
        "error: Missing option '--output' / '-o' (see 'dlforge data shard -h')"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "s"]


def test_help_names_output_not_out():
    from typer.testing import CliRunner

    from dlforge.cli.app import app

    text = CliRunner().invoke(app, ["data", "shard", "-h"]).output
    assert "--output" in text and "--out " not in text


@pytest.mark.parametrize("case", ["under a file", "too long"])
def test_an_out_that_cannot_be_created_is_a_usage_error_before_any_work(tmp_path, capsys, case):
    # it exited 1 after the shards were written, naming a hidden temporary path
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" / "s" if case == "under a file" else tmp_path / ("s" * 300)
    wine = config(tmp_path, {"source": "builtin", "name": "wine"})
    assert main(["data", "shard", wine, "--output", str(out)]) == 2
    if case == "under a file":
        expected = f"{str(out)!r} lies under {str(tmp_path / 'f')!r}, a file"
    else:
        expected = f"{clipped(str(out), 120)!r} cannot be looked up (File name too long)"
    assert capsys.readouterr().err == (
        f"error: --output: {expected}; give the path of a directory to create\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "f"]
