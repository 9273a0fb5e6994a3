"""`dlforge predict` with a directory where a file is expected, and a file where a directory
is: one line each (an --output refused before anything is predicted), nothing written."""

from __future__ import annotations

import pytest
from cli_predict_models import rows, table_model

from dlforge.cli import main


@pytest.fixture
def ws(tmp_path):
    table_model(tmp_path / "ws", tmp_path)
    rows(4).to_csv(tmp_path / "rows.csv", index=False)
    return tmp_path / "ws"


def test_a_directory_named_like_a_csv_input(ws, tmp_path, capsys):
    (tmp_path / "in.csv").mkdir()
    assert main(["-w", str(ws), "predict", "tab", str(tmp_path / "in.csv")]) == 1
    assert capsys.readouterr().err == \
        f"error: input: {str(tmp_path / 'in.csv')!r} is a directory; give a CSV file\n"


@pytest.mark.parametrize(("output", "what"), [
    ("out.csv", "is a directory"),                       # out.csv/ exists as a folder
    ("rows.csv/p.csv", "lies under {rows!r}, a file"),   # was an internal error at the end
])
def test_an_output_that_cannot_be_a_file_is_refused_before_predicting(ws, tmp_path, capsys,
                                                                       monkeypatch, output, what):
    import dlforge.cli.predict_cmds as cmds

    (tmp_path / "out.csv").mkdir()
    monkeypatch.setattr(cmds, "stream_predictions", lambda *a, **k: pytest.fail("predicted"))
    target = tmp_path / output
    assert main(["-w", str(ws), "predict", "tab", str(tmp_path / "rows.csv"), "-o", str(target)]) == 2
    assert capsys.readouterr().err == (
        f"error: --output: {str(target)!r} {what.format(rows=str(tmp_path / 'rows.csv'))}; give "
        "the path of a file to write, such as predictions.csv\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "rows.csv", "ws"]
    assert list((tmp_path / "out.csv").iterdir()) == []


def test_an_output_name_too_long_is_refused_like_one_under_a_file(ws, tmp_path, capsys):
    # exited 1 through main()'s OSError line while an --output under a file exits 2
    target = tmp_path / ("p" * 300 + ".csv")
    assert main(["-w", str(ws), "predict", "tab", str(tmp_path / "rows.csv"), "-o", str(target)]) == 2
    assert capsys.readouterr().err == (
        f"error: --output: {str(target)[:117] + '...'!r} cannot be looked up (File name too "
        "long); give the path of a file to write, such as predictions.csv\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "ws"]
