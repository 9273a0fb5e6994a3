"""`dlforge predict` reads .json and .jsonl inputs as the server reads a request body."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from cli_predict_models import DIGITS, rows, table_model, text_model

from dlforge.cli import main
from dlforge.registry import Predictor


@pytest.fixture
def ws(tmp_path):
    return tmp_path / "ws"


def predict(ws, *args) -> int:
    return main(["-w", str(ws), "predict", *map(str, args)])


def write_jsonl(path, items) -> None:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_jsonl_rows_stream_across_files_in_batches_as_csv_rows_do(ws, tmp_path, monkeypatch, capsys):
    table_model(ws, tmp_path)
    first, second = rows(100, seed=3), rows(50, seed=4)
    pd.concat([first, second]).to_csv(tmp_path / "all.csv", index=False)
    write_jsonl(tmp_path / "a.jsonl", records(first))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in records(second)) + "\n\n")
    seen: list[int] = []
    original = Predictor.predict
    monkeypatch.setattr(Predictor, "predict", lambda self, x, top_k=None: seen.append(len(x))
                        or original(self, x, top_k=top_k))
    assert predict(ws, "tab", tmp_path / "a.jsonl", tmp_path / "b.jsonl", "-f", "jsonl", "-b", 64) == 0
    from_json = capsys.readouterr().out
    assert seen == [64, 36, 50]
    assert predict(ws, "tab", tmp_path / "all.csv", "-f", "jsonl", "-b", 64) == 0
    assert from_json == capsys.readouterr().out
    assert [json.loads(line)["input"] for line in from_json.splitlines()] == [f"row[{i}]" for i in range(150)]


def test_a_json_array_a_request_body_and_row_arrays_predict_alike(ws, tmp_path, capsys):
    table_model(ws, tmp_path)
    frame = rows(5, seed=1)
    (tmp_path / "rows.json").write_text(json.dumps(records(frame)))
    (tmp_path / "body.json").write_text(json.dumps({"inputs": frame.values.tolist(), "top_k": 1}))
    outputs = []
    for name in ("rows.json", "body.json"):
        assert predict(ws, "tab", tmp_path / name, "-f", "csv") == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[0] == "input,label,score,threshold"
    assert len(outputs[0].splitlines()) == 6


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"a": 1, "b": 2, "shop": "x"}', '', '{"a": true, "b": 2, "shop": "x"}'],
         "input: '{tmp}/rows.jsonl' line 3: column 'a': expected numbers, got true (row 1; 1 "
         "boolean value(s)); only a column that was boolean in training takes true/false: send a "
         "number"),
        (['{"a": 1, "b": 2, "shop": "x"}', '{"a": NaN, "b": 2, "shop": "x"}'],
         "input: '{tmp}/rows.jsonl' line 2: not valid JSON (NaN is not valid JSON)"),
        (['{"a": 1, "b": 2, "shop": "x"}', '', '{"a": 1, "b": [2], "shop": "x"}'],
         "input: '{tmp}/rows.jsonl' line 3: row[1].b: a cell must be a number, string, boolean or "
         "null; got an array"),
        (['[1, 2]'], "input: '{tmp}/rows.jsonl' line 1: row[0]: a row array needs 3 values in the "
                     "order a, b, shop; got 2 values"),
        (['"a text"'], "input: '{tmp}/rows.jsonl' line 1: row[0]: table models take rows as objects "
                       "(column -> value) or arrays; got a string"),
    ],
)
def test_refused_as_the_server_refuses_them_with_nothing_written(ws, tmp_path, capsys, lines, message):
    table_model(ws, tmp_path)
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    assert predict(ws, "tab", tmp_path / "rows.jsonl", "-o", tmp_path / "out.csv") == 1
    assert capsys.readouterr().err == "error: " + message.format(tmp=tmp_path) + "\n"
    assert not (tmp_path / "out.csv").exists()


def test_skip_bad_records_unreadable_lines_in_their_place(ws, tmp_path, capsys):
    table_model(ws, tmp_path)
    good = records(rows(2))
    (tmp_path / "rows.jsonl").write_text("\n".join([json.dumps(good[0]), "{oops", json.dumps(good[1]),
                                                    '{"a": true, "b": 1, "shop": "x"}']) + "\n")
    assert predict(ws, "tab", tmp_path / "rows.jsonl", "-f", "jsonl", "--skip-bad", "-b", 2) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in out] == ["row[0]", "row[1]", "row[2]", "row[3]"]
    assert [r.get("error") for r in out] == [
        None, f"{tmp_path / 'rows.jsonl'} line 2: not valid JSON (Expecting property name enclosed in "
              "double quotes: line 1 column 2 (char 1))", None,
        f"{tmp_path / 'rows.jsonl'} line 4: column 'a': expected numbers, got true (row 3; 1 "
        "boolean value(s)); only a column that was boolean in training takes true/false: send a "
        "number"]


def test_a_json_row_refused_in_a_later_file_names_that_file_and_its_row(ws, tmp_path, capsys):
    table_model(ws, tmp_path)
    good = records(rows(3))
    write_jsonl(tmp_path / "a.jsonl", good)
    (tmp_path / "b.json").write_text(json.dumps([good[0], {**good[1], "a": False}]))
    assert predict(ws, "tab", tmp_path / "a.jsonl", tmp_path / "b.json", "-b", 64) == 1
    assert capsys.readouterr().err == (
        f"error: input: '{tmp_path / 'b.json'}': column 'a': expected numbers, got false (row 4; "
        "1 boolean value(s)); only a column that was boolean in training takes true/false: send "
        "a number\n")


def test_a_request_body_top_k_applies_to_its_inputs_over_the_option(ws, tmp_path, capsys):
    table_model(ws, tmp_path, "multi", DIGITS)
    frame = rows(2, seed=1)
    (tmp_path / "body.json").write_text(json.dumps({"inputs": records(frame), "top_k": 1}))
    write_jsonl(tmp_path / "rows.jsonl", records(frame))
    assert predict(ws, "multi", tmp_path / "body.json", tmp_path / "rows.jsonl", "-f", "jsonl",
                   "--top-k", 2) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(r["scores"]) for r in out] == [1, 1, 2, 2]


def test_text_models_take_strings_from_jsonl(ws, tmp_path, capsys):
    text_model(ws, tmp_path)
    write_jsonl(tmp_path / "texts.jsonl", ["good film", "bad film"])
    assert predict(ws, "txt", tmp_path / "texts.jsonl", "-f", "csv") == 0
    assert [line.split(",")[0] for line in capsys.readouterr().out.splitlines()] == ["input", "row[0]", "row[1]"]
    write_jsonl(tmp_path / "texts.jsonl", ["good film", {"review": "bad film"}])
    assert predict(ws, "txt", tmp_path / "texts.jsonl") == 1
    assert capsys.readouterr().err == (f"error: input: '{tmp_path / 'texts.jsonl'}' line 2: row[1]: this "
                                       "model takes strings (the texts); got an object\n")


# top_k values a request body may not hold, as sent and as the message shows them (the server's too)
TOP_K_REFUSED = [("0", "0"), ('"2"', '"2"'), ("true", "true"), ("2.5", "2.5"), ("2.0", "2.0"),
                 ("[2]", "an array")]


@pytest.mark.parametrize(
    ("files", "content", "message"),
    [
        (["rows.json", "rows.csv"], "[]", "input: {tmp}/rows.json, {tmp}/rows.csv mix JSON and other "
                                          "files; give CSV files or JSON/JSONL files in one call, not both"),
        (["rows.json"], '{"rows": []}', "input: '{tmp}/rows.json': expected an array of inputs or an "
                                        'object {{"inputs": [...]}}; got an object without an "inputs" array'),
        (["rows.json"], "[1,", "input: '{tmp}/rows.json': not valid JSON (Expecting value: line 1 "
                               "column 4 (char 3))"),
        *[(["rows.json"], f'{{"inputs": [], "top_k": {value}}}', "input: '{tmp}/rows.json': top_k: must "
           f"be a JSON integer of at least 1 (got {shown}); give a whole number such as 3, or leave "
           "it out for --top-k") for value, shown in TOP_K_REFUSED],
        (["rows.json"], '{"inputs": [], "topk": 1}', "input: '{tmp}/rows.json': topk: Extra inputs "
         'are not permitted (the server refuses it too; a request body holds "inputs" and '
         '"top_k"); remove it'),
        (["rows.txt"], "[]", "input: '{tmp}/rows.txt' is not a CSV, JSON or JSONL file; this model "
                             "takes table or text rows"),
    ],
)
def test_bad_files_are_one_line(ws, tmp_path, capsys, files, content, message):
    table_model(ws, tmp_path)
    rows(2).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / files[0]).write_text(content)
    assert predict(ws, "tab", *(tmp_path / f for f in files)) == 1
    assert capsys.readouterr().err == "error: " + message.format(tmp=tmp_path) + "\n"
