"""`dlforge drift`: verdict tables, JSON, exit codes for scripts, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlforge.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "lifecycle"))
from drift_models import registered, rows  # noqa: E402
from test_cli_commands import TINY as CLI_TINY  # noqa: E402

# test_cli_commands' tiny digits run, one epoch, no alias, a drift section of its own
TINY = {**{k: v for k, v in CLI_TINY.items() if k != "registry"},
        "train": {"epochs": 1, "batch_size": 32}, "drift": {"alpha": 0.01}}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = registered(tmp_path_factory.mktemp("cli-drift"))
    rows(20, seed=1).drop(columns=["color"]).to_csv(root / "no_color.csv", index=False)
    return root


def drift(root, capsys, *args):
    code = main(["-w", str(root / "ws"), "drift", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_no_drift_exits_0_and_drift_exits_3(root, capsys):
    code, out, _ = drift(root, capsys, "churn@1", "--data", str(root / "same.csv"))
    assert code == 0 and "verdict: no drift (0 of 9 features drift)" in out
    code, out, _ = drift(root, capsys, "churn@1", "--data", str(root / "shifted.csv"))
    assert code == 3 and "verdict: drift (" in out and "drift-churn-v1.html" in out


def test_json_holds_every_feature_with_p_value_and_effect_size(root, capsys):
    code, out, _ = drift(root, capsys, "churn@1", "--data", str(root / "shifted.csv"), "--json")
    doc = json.loads(out)
    assert code == 3 and doc["verdict"] == "drift" and doc["rows"] == 200
    assert doc["features"]["a"]["method"] == "ks" and doc["features"]["a"]["drifted"] is True
    assert {"p_value", "effect", "effect_name", "distance", "psi"} <= set(doc["features"]["color"])


def test_bad_input_is_one_line_and_exit_1(root, capsys):
    code, out, err = drift(root, capsys, "churn@1", "--data", str(root / "no_color.csv"))
    assert (code, out) == (1, "")
    assert err == (f"error: drift: {root / 'no_color.csv'} has columns ['a', 'b'] but the model was "
                   "trained on columns ['a', 'b', 'color'] (missing ['color'])\n")
    code, _, err = drift(root, capsys, "churn@2", "--data", str(root / "same.csv"))
    assert code == 1 and err.startswith("error: model churn@2: its bundle has no reference.json")
    code, _, err = drift(root, capsys, "churn@1")
    assert code == 2 and "give exactly one of --data and --served" in err
    code, _, err = drift(root, capsys, "churn@1", "--served")
    assert code == 1 and err.startswith("error: served sample: ") and "v1.npz does not exist" in err


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "is empty; give a CSV file with a header line of column names and one row per sample"),
    (b"a,b,color\n", "has a header but no rows"),
    (b"a,b,color\n1,2,r\xe9d\n", "is not UTF-8 text (byte 0xe9 is not UTF-8); save it as UTF-8"),
])
def test_an_unreadable_csv_is_one_line_naming_data(root, capsys, tmp_path, content, problem):
    # were "internal error: EmptyDataError" / "UnicodeDecodeError" (pandas read it unchecked)
    (tmp_path / "new.csv").write_bytes(content)
    code, out, err = drift(root, capsys, "churn@1", "--data", str(tmp_path / "new.csv"))
    assert (code, out, err) == (1, "", f"error: --data: {str(tmp_path / 'new.csv')!r} {problem}\n")


@pytest.mark.parametrize(("report", "what"), [("r", "is a directory"), ("f/r.html", "lies under {f!r}, a file")])
def test_a_report_that_cannot_be_a_file_is_refused_first(root, capsys, tmp_path, report, what):
    (tmp_path / "r").mkdir()
    (tmp_path / "f").write_text("keep")
    code, _, err = drift(root, capsys, "churn@1", "--data", str(root / "same.csv"),
                         "--report", str(tmp_path / report))
    assert code == 2 and err == (f"error: --report: {str(tmp_path / report)!r} "
                                 f"{what.format(f=str(tmp_path / 'f'))}; give the path of a file "
                                 "to write, such as drift.html\n")
    assert (tmp_path / "f").read_text() == "keep" and list((tmp_path / "r").iterdir()) == []


def test_a_run_registers_a_reference_and_its_config_sets_the_thresholds(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert main(["-w", str(tmp_path / "ws"), "run", str(config), "--quiet"]) == 0
    capsys.readouterr()
    ref = json.loads(next((tmp_path / "ws/artifacts/models").rglob("reference.json")).read_text())
    assert ref["modality"] == "image" and ref["sample_shape"] == [1, 8, 8]
    assert ref["features"]["predicted_class"]["n"] == ref["rows"] == 210  # the training split (70% of 300)
    code, out, _ = drift(tmp_path, capsys, "tiny", "--data", str(config), "--split", "test", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["rows"] == 45 and doc["settings"]["alpha"] == 0.01
    assert np.isclose(doc["settings"]["bonferroni_level"], 0.01 / len(doc["features"]))
