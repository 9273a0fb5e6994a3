"""`dlforge predict` streams: batches of --batch-size, outputs written as they come, atomically."""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pytest
from cli_predict_models import DIGITS, image_model, rows, table_model, text_model, write_pngs

from dlforge.cli import main
from dlforge.registry import Predictor, load


@pytest.fixture
def ws(tmp_path):
    return tmp_path / "ws"


@pytest.fixture
def batch_sizes(monkeypatch):
    """The size of every batch the Predictor receives."""
    seen: list[int] = []
    original = Predictor.predict

    def spy(self, inputs, top_k=None):
        seen.append(len(inputs))
        return original(self, inputs, top_k=top_k)

    monkeypatch.setattr(Predictor, "predict", spy)
    return seen


def predict(ws, *args) -> int:
    return main(["-w", str(ws), "predict", *map(str, args)])


def test_csv_rows_stream_across_files_in_batches(ws, tmp_path, batch_sizes, capsys):
    table_model(ws, tmp_path)
    first, second = rows(100, seed=3), rows(50, seed=4)
    first.to_csv(tmp_path / "a.csv", index=False)
    second.to_csv(tmp_path / "b.csv", index=False)
    out = tmp_path / "out.csv"
    assert predict(ws, "tab", tmp_path / "a.csv", tmp_path / "b.csv", "-o", out, "--batch-size", 64) == 0
    assert batch_sizes == [64, 36, 50]
    written = pd.read_csv(out)
    expected = load("tab", workspace=ws).predict(pd.concat([first, second], ignore_index=True))
    assert list(written.columns) == ["input", "label", "score", "threshold"]
    assert list(written["input"]) == [f"row[{i}]" for i in range(150)]
    assert list(written["label"]) == [r["label"] for r in expected]
    assert written["score"].tolist() == pytest.approx([r["score"] for r in expected], abs=1e-6)
    assert re.fullmatch(rf"wrote 150 predictions to {re.escape(str(out))} \([\d,]+ inputs/s\)\n",
                        capsys.readouterr().err)


def test_image_folder_streams_in_batches_of_64(ws, tmp_path, batch_sizes, capsys):
    image_model(ws, tmp_path)
    files = write_pngs(tmp_path / "scans", 300)
    assert predict(ws, "img", tmp_path / "scans", "--format", "jsonl", "--batch-size", 64, "--top-k", 4) == 0
    assert batch_sizes == [64, 64, 64, 64, 44]
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = load("img", workspace=ws).predict([str(f) for f in files], top_k=4)
    assert [r["input"] for r in records] == [str(f) for f in files]
    assert [r["label"] for r in records] == [r["label"] for r in expected]
    for got, want in zip(records, expected, strict=True):
        assert got["scores"] == pytest.approx(want["scores"], abs=1e-6)


def test_an_unreadable_image_names_the_file_and_leaves_no_output(ws, tmp_path, capsys):
    image_model(ws, tmp_path)
    write_pngs(tmp_path / "scans", 5)
    (tmp_path / "scans" / "part0" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "results" / "out.csv"
    out.parent.mkdir()
    out.write_text("old results\n")
    assert predict(ws, "img", tmp_path / "scans", "-o", out, "--batch-size", 2) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'scans' / 'part0' / 'broken.png'}: cannot read image (")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert out.read_text() == "old results\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.csv"]  # no temporary file left


def test_skip_bad_records_the_error_and_goes_on(ws, tmp_path, capsys):
    image_model(ws, tmp_path)
    files = write_pngs(tmp_path / "scans", 4)
    bad = files[1]  # sorts between good files
    bad.write_bytes(b"not a png")
    out = tmp_path / "out.csv"
    assert predict(ws, "img", tmp_path / "scans", "-o", out, "--skip-bad", "--top-k", 1) == 0
    written = pd.read_csv(out, keep_default_na=False)
    good = [f for f in files if f != bad]
    assert len(good) == 3
    expected = load("img", workspace=ws).predict([str(f) for f in good], top_k=1)
    assert list(written.columns) == ["input", "label", "scores_zero", "scores_one", "scores_two",
                                     "scores_three", "error"]
    assert list(written["input"]) == [str(f) for f in files]
    by_input = written.set_index("input")
    assert by_input.loc[str(bad), "label"] == ""
    assert by_input.loc[str(bad), "error"].startswith(f"{bad}: cannot read image (")
    assert [by_input.loc[str(f), "label"] for f in good] == [r["label"] for r in expected]
    assert (by_input.loc[[str(f) for f in good], "error"] == "").all()
    # top-k 1: one score per row, the other class columns empty
    assert (by_input.loc[[str(f) for f in good]].filter(like="scores_") != "").sum(axis=1).tolist() == [1, 1, 1]
    assert re.fullmatch(rf"wrote 3 predictions to {re.escape(str(out))} \([\d,]+ inputs/s\); "
                        r"skipped 1 bad input\(s\), see the error column\n", capsys.readouterr().err)


def test_skip_bad_records_malformed_csv_lines_in_their_place(ws, tmp_path, capsys):
    table_model(ws, tmp_path)
    data = rows(10, seed=7)
    path = tmp_path / "rows.csv"
    lines = data.to_csv(index=False).splitlines(keepends=True)
    lines.insert(4, "1.0,2.0,x,extra,fields\n")  # between data rows 2 and 3: it becomes row[3]
    lines.append("3.0,4.0,1,more\n")  # the last line: row[11]
    path.write_text("".join(lines))
    out = tmp_path / "out.jsonl"
    assert predict(ws, "tab", path, "--skip-bad", "-o", out, "--format", "jsonl", "-b", 4) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in records] == [f"row[{i}]" for i in range(12)]
    assert records[3] == {"input": "row[3]",
                          "error": f"{path}: malformed CSV line with 5 fields, the header has 3"}
    assert records[11] == {"input": "row[11]",
                           "error": f"{path}: malformed CSV line with 4 fields, the header has 3"}
    good = records[:3] + records[4:11]
    expected = load("tab", workspace=ws).predict(data)
    assert [r["label"] for r in good] == [r["label"] for r in expected]
    assert [r["score"] for r in good] == pytest.approx([r["score"] for r in expected], abs=1e-6)
    assert re.fullmatch(rf"wrote 10 predictions to {re.escape(str(out))} \([\d,]+ inputs/s\); "
                        r"skipped 2 bad input\(s\), see the error field\n", capsys.readouterr().err)


def test_json_file_is_one_array_written_incrementally(ws, tmp_path):
    table_model(ws, tmp_path)
    data = rows(10, seed=5)
    data.to_csv(tmp_path / "rows.csv", index=False)
    assert predict(ws, "tab", tmp_path / "rows.csv", "-o", tmp_path / "out.json", "-b", 3, "-q") == 0
    expected = [{"input": f"row[{i}]", **r} for i, r in enumerate(load("tab", workspace=ws).predict(data))]
    text = (tmp_path / "out.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"  # the layout of one json.dumps
    assert [r["input"] for r in json.loads(text)] == [r["input"] for r in expected]
    assert [r["label"] for r in json.loads(text)] == [r["label"] for r in expected]


def test_stdout_json_is_exactly_one_json_document(ws, tmp_path, capsys):
    text_model(ws, tmp_path)
    texts = ["good film", "bad plot", "boring"]
    assert predict(ws, "txt", "--text", texts[0], "--text", texts[1], "--text", texts[2],
                   "--format", "json", "-b", 2) == 0
    expected = [{"input": f"text[{i}]", **r}
                for i, r in enumerate(load("txt", workspace=ws).predict(texts))]
    captured = capsys.readouterr()
    assert captured.out == json.dumps(json.loads(captured.out), indent=2) + "\n"  # the layout of one dump
    got = json.loads(captured.out)
    assert [r["input"] for r in got] == ["text[0]", "text[1]", "text[2]"]
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=1e-6)
    assert re.fullmatch(r"predicted 3 inputs \([\d,]+ inputs/s\)\n", captured.err)


def test_text_column_of_csv_files_and_an_empty_file(ws, tmp_path, capsys):
    text_model(ws, tmp_path)
    pd.DataFrame({"id": [1, 2, 3], "review": ["good film", None, "bad"]}).to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "empty.csv").write_text("id,review\n")
    assert predict(ws, "txt", tmp_path / "empty.csv", tmp_path / "r.csv", "-f", "csv", "-b", 2, "-q") == 0
    written = pd.read_csv(io.StringIO(capsys.readouterr().out))
    expected = load("txt", workspace=ws).predict(["good film", "", "bad"])
    assert list(written["input"]) == ["row[0]", "row[1]", "row[2]"]
    assert written["score"].tolist() == pytest.approx([r["score"] for r in expected], abs=1e-6)


def test_categorical_values_are_read_as_text_in_every_chunk(ws, tmp_path):
    # The first chunk holds only '1', '2' and blanks: guessed on its own it would be floats
    # ('1.0', a category the model never saw); read whole, the file is text ('x' below).
    table_model(ws, tmp_path, task=DIGITS)
    data = rows(8, seed=6)
    data["shop"] = ["1", None, "2", "1", "x", "x", "2", "x"]
    data.to_csv(tmp_path / "rows.csv", index=False)
    assert predict(ws, "tab", tmp_path / "rows.csv", "-o", tmp_path / "out.jsonl", "-b", 4, "--top-k", 4) == 0
    got = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    expected = load("tab", workspace=ws).predict(pd.read_csv(tmp_path / "rows.csv"), top_k=4)
    for g, e in zip(got, expected, strict=True):
        assert g["scores"] == pytest.approx(e["scores"], abs=1e-6)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-o", "{tmp}/out.txt"], 2, "error: --output: '{tmp}/out.txt' must end in .csv, .json, .jsonl (got '.txt')"),
        (["--format", "xml"], 2, "error: --format: must be one of table, json, jsonl, csv (got 'xml')"),
        (["-o", "{tmp}/out.jsonl", "--format", "csv"], 2,
         "error: --format: csv disagrees with --output '{tmp}/out.jsonl', whose suffix writes jsonl; "
         "drop --format or make them agree"),
        (["{tmp}/nope.csv"], 1, "error: input: '{tmp}/nope.csv' does not exist"),
        (["{tmp}/bad.csv"], 1, "error: input: '{tmp}/bad.csv' has no column 'b' "
                               "(the model was trained on columns ['a', 'b', 'shop'])"),
        (["{tmp}/header.csv"], 1, "error: input: '{tmp}/header.csv' has no columns 'a', 'b', "
                                  "'shop' (the model was trained on columns ['a', 'b', 'shop'])"),
    ],
)
def test_bad_arguments_are_one_line_before_any_output(ws, tmp_path, capsys, args, code, message):
    table_model(ws, tmp_path)
    rows(3).drop(columns="b").to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "header.csv").write_text("x,y\n")  # one line naming every missing column
    rows(3).to_csv(tmp_path / "good.csv", index=False)
    args = [a.format(tmp=tmp_path) for a in args]
    inputs = [] if any(a.endswith(".csv") and not a.startswith("-") for a in args) else [tmp_path / "good.csv"]
    assert predict(ws, "tab", *inputs, *args) == code
    assert capsys.readouterr().err == message.format(tmp=tmp_path) + "\n"
    assert not (tmp_path / "out.txt").exists() and not (tmp_path / "out.jsonl").exists()


def test_batch_size_must_be_at_least_one(ws, tmp_path, capsys):
    assert predict(ws, "tab", tmp_path / "rows.csv", "--batch-size", "0") == 2
    assert capsys.readouterr().err == ("error: Invalid value for '--batch-size' / '-b': must be at "
                                       "least 1 (got 0) (see 'dlforge predict -h')\n")


def test_help_documents_batching_and_the_table_limit():
    from typer.testing import CliRunner

    from dlforge.cli.app import app

    result = CliRunner().invoke(app, ["predict", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("│", " ").split())  # typer draws a box around it
    assert "--batch-size" in text and "memory holds one batch" in text
    assert "table (keeps every row until the end: for small inputs)" in text
    assert "--skip-bad" in text and "a CSV row with more fields than the header" in text
    assert ("for small inputs), the default. With --output the file's suffix decides; a --format "
            "that disagrees with it is an error.") in text


def test_a_csv_broken_half_way_leaves_no_output(ws, tmp_path, capsys):
    table_model(ws, tmp_path)
    rows(10).to_csv(tmp_path / "rows.csv", index=False)
    with open(tmp_path / "rows.csv", "a") as fh:
        fh.write("1.0,2.0,x,extra,fields\n")
    assert predict(ws, "tab", tmp_path / "rows.csv", "-o", tmp_path / "out.csv", "-b", 4) == 1
    assert capsys.readouterr().err == (f"error: input: cannot read {str(tmp_path / 'rows.csv')!r} as CSV: "
                                       "Error tokenizing data. C error: Expected 3 fields in line 12, saw 5\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "ws"]  # no out.csv, no temporary file


def test_an_input_naming_a_column_twice_is_refused_not_renamed(ws, tmp_path, capsys):
    table_model(ws, tmp_path)
    frame = rows(6)
    frame.insert(1, "dup", frame.iloc[:, 0])
    text = frame.to_csv(index=False).splitlines()
    first = text[0].split(",")[0]
    (tmp_path / "rows.csv").write_text("\n".join([text[0].replace("dup", first, 1), *text[1:]]) + "\n")
    assert predict(ws, "tab", tmp_path / "rows.csv", "-o", tmp_path / "out.csv") == 1
    assert capsys.readouterr().err == (
        f"error: input: rows.csv names a column more than once ({first!r} in columns 1, 2); give "
        f"every column of the header line its own name\n")
    assert not (tmp_path / "out.csv").exists()


def test_a_value_beyond_float32_is_named_by_its_row_in_the_file_not_in_its_batch(ws, tmp_path, capsys):
    table_model(ws, tmp_path)
    frame = rows(10)
    frame.loc[7, "b"] = 1e39
    frame.to_csv(tmp_path / "rows.csv", index=False)
    assert predict(ws, "tab", tmp_path / "rows.csv", "-b", 4, "--format", "csv") == 1
    assert capsys.readouterr().err.startswith(
        "error: column 'b': value 1e+39 (row 7) is not a finite number within float32's range")
    assert predict(ws, "tab", tmp_path / "rows.csv", "-b", 4, "--format", "jsonl", "--skip-bad") == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["input"], r["error"][:36]) for r in out if r.get("error")] == [
        ("row[7]", "column 'b': value 1e+39 (row 7) is n")]
