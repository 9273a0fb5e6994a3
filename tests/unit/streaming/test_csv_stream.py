"""A numeric CSV streamed straight from the file: the in-memory run's splits and batches, bad
files refused in one line, and memory bounded by the batch, not the file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tests.unit.streaming.rss_pass import streamed_pass

from dlforge.config import load_config
from dlforge.data import csv_stream
from dlforge.data.prepare import prepare_data
from dlforge.errors import DataError


def write_csv(path, rows, *, split=False):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(3, 2, rows).round(3), "n": np.arange(rows),
                          "b": rng.uniform(-1, 9, rows).round(3)})
    frame.loc[[4, 11], "b"] = np.nan
    frame["y"] = np.array(["lo", "mid", "hi"])[np.arange(rows) % 3]
    if split:
        frame["part"] = np.where(np.arange(rows) % 5 == 0, "test", "train")
    text = frame.to_csv(index=False)
    path.write_text(text.replace("\n", "\n\n", 3))  # blank lines are skipped, as by pandas
    return path


def config(path, streaming, **data):
    return load_config({"seed": 4, "data": {"source": "csv", "path": str(path),
                                            "label_columns": ["y"], "streaming": streaming, **data},
                        "preprocess": {"table": {"impute": "mean"}},
                        "model": {"type": "mlp"}, "train": {"batch_size": 8}})


@pytest.mark.parametrize("data", [{}, {"split_column": "part", "limit": 50, "classes": ["hi", "lo"]}])
def test_a_streamed_csv_trains_on_the_in_memory_runs_batches(tmp_path, data):
    path = write_csv(tmp_path / "t.csv", 90, split=bool(data))
    streamed, memory = config(path, True, **data), config(path, False, **data)
    got, want = prepare_data(streamed), prepare_data(memory)
    assert got.stream is not None and len(got.stream) == len(want.splits.train) > 0
    assert list(got.stream.split.ids) == list(want.splits.train.ids)
    for name in ("val", "test"):
        part, expected = getattr(got.splits, name), getattr(want.splits, name)
        assert list(part.ids) == list(expected.ids) and len(part.ids) > 0
        pd.testing.assert_frame_equal(part.x, expected.x.astype(np.float64))
    for epoch in (0, 1):
        batches, expected = ([b for b in _epoch(d, c, epoch)] for d, c in
                             ((got, streamed), (want, memory)))
        assert len(batches) == len(expected) > 0
        for (gx, gy), (wx, wy) in zip(batches, expected, strict=True):
            torch.testing.assert_close(gx, wx, rtol=1e-5, atol=1e-5)
            assert torch.equal(gy, wy)


def _epoch(data, cfg, epoch):
    loader = data.loaders_for(cfg).train
    loader.set_epoch(epoch)
    return list(loader)


def test_a_text_feature_column_is_refused_in_one_line(tmp_path):
    path = write_csv(tmp_path / "t.csv", 30)
    frame = pd.read_csv(path)
    frame["a"] = frame["a"].astype(object)
    frame.loc[7, "a"] = "oops"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"^data: column 'a' of t\.csv is not numeric \(lines "
                                        r"2-31\); a streamed CSV holds numeric features only"):
        prepare_data(config(path, True))


def test_quoted_line_breaks_are_refused(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('a,y\n1,"lo\nw"\n2,hi\n3,lo\n')
    with pytest.raises(DataError, match=r"^data\.path: q\.csv has 3 rows in 4 lines; quoted line "
                                        r"breaks cannot be streamed"):
        prepare_data(config(path, True))


def test_a_true_false_column_streams_as_booleans_and_takes_true_false_at_predict(tmp_path):
    path = write_csv(tmp_path / "t.csv", 60)
    frame = pd.read_csv(path)
    frame["member"] = np.arange(60) % 3 == 0
    frame.to_csv(path, index=False)
    got, want = prepare_data(config(path, True)), prepare_data(config(path, False))
    flags = [[(s["name"], s["boolean"]) for s in d.preprocessor.numeric] for d in (got, want)]
    assert flags[0] == flags[1] == [("a", False), ("n", False), ("b", False), ("member", True)]
    for mine, theirs in zip(got.preprocessor.numeric, want.preprocessor.numeric, strict=True):
        assert mine == {**theirs, "scale": pytest.approx(theirs["scale"], rel=1e-12)}
    pd.testing.assert_frame_equal(got.splits.test.x[["member"]], want.splits.test.x[["member"]])
    rows = [{"a": 3.0, "n": 1, "b": 2.0, "member": flag} for flag in (True, False)]
    np.testing.assert_array_equal(got.preprocessor.transform(rows), want.preprocessor.transform(rows))
    batch, _ = next(iter(got.loaders_for(config(path, True)).train))
    assert batch.shape == (8, 4)


def test_a_column_true_false_in_one_chunk_and_numbers_in_another_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_stream, "CHUNK_ROWS", 20)
    path = write_csv(tmp_path / "t.csv", 40)
    frame = pd.read_csv(path)
    frame["member"] = (["True", "False"] * 10) + ["1", "0"] * 10
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        prepare_data(config(path, True))
    assert str(info.value) == ("data: column 'member' of t.csv holds true/false in some rows and "
                               "numbers in others; a streamed CSV column holds one or the other: "
                               "write it as 1/0, or set data.streaming: false")


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize(("content", "message"), [
    (b"", "data.path: '{path}' is empty; give a CSV file with a header line of column names "
          "and one row per sample"),
    (b"a,b,y\n", "data.path: '{path}' has a header but no rows"),
    (b"a,a,y\n1,2,lo\n3,4,hi\n", "data.path: t.csv names a column more than once ('a' in "
                                  "columns 1, 2); give every column of the header line its own name"),
    (b"a,y,y\n1,lo,hi\n3,hi,lo\n", "data.path: t.csv names a column more than once ('y' in "
                                    "columns 2, 3); give every column of the header line its own name"),
    (b"a,b,y\n1,2,lo\n3,4,caf\xe9\n", "data.path: '{path}' is not UTF-8 text (byte 0xe9 is not "
                                       "UTF-8); save it as UTF-8"),
])
def test_a_csv_that_cannot_be_a_table_is_one_line_in_memory_and_streamed(tmp_path, streaming,
                                                                          content, message):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        prepare_data(config(path, streaming))
    assert str(info.value) == message.format(path=path)


@pytest.mark.parametrize("streaming", [False, True])
def test_bad_values_are_named_by_their_row_in_the_file_in_memory_and_streamed(tmp_path, streaming):
    path = write_csv(tmp_path / "t.csv", 60)
    frame = pd.read_csv(path)
    frame.loc[41, "a"] = np.inf  # streamed, the validated sample is not in file order
    frame.to_csv(path, index=False)
    cfg = load_config({"seed": 4, "data": {"source": "csv", "path": str(path), "label_columns": ["y"],
                                           "streaming": streaming}, "model": {"type": "mlp"}})
    with pytest.raises(DataError) as info:
        prepare_data(cfg)
    assert str(info.value).splitlines() == [
        "data: column 'a' has 1 infinite values (rows 41); replace them or drop those rows",
        "data: column 'b' has 2 missing values (rows 4, 11); set preprocess.table.impute to "
        "median or mean"]


def test_a_csv_saved_with_excels_byte_order_mark_streams_as_in_memory(tmp_path):
    path = write_csv(tmp_path / "t.csv", 60)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # before the first column's name
    got, want = prepare_data(config(path, True)), prepare_data(config(path, False))
    assert list(got.stream.split.ids) == list(want.splits.train.ids) and len(got.stream) > 0


@pytest.mark.parametrize("streaming", [False, True])
def test_a_semicolon_separated_csv_is_named_as_such(tmp_path, streaming):
    path = tmp_path / "t.csv"
    path.write_text("a;b;y\n1;2;lo\n3;4;hi\n")
    with pytest.raises(DataError) as info:
        prepare_data(config(path, streaming))
    key = "data" if streaming else "data.label_columns"
    assert str(info.value) == (f"{key}: column 'y' not in t.csv; columns are: a;b;y (one column: "
                               "dlforge reads comma-separated files; this header looks "
                               "';'-separated: convert the file)")


ROWS, COLUMNS, CAP_MB = 200_000, 32, 24  # 200,000 x 32 float64: 49 MiB parsed, 70 MiB of text


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_peak_rss_grows_less_than_the_cap_over_a_csv_larger_than_it(tmp_path_factory, workers):
    path = tmp_path_factory.getbasetemp() / "big.csv"
    if not path.exists():
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(ROWS, COLUMNS)).round(6),
                             columns=[f"f{i}" for i in range(COLUMNS)])
        frame["y"] = np.arange(ROWS) % 2
        frame.to_csv(path, index=False)
    got = streamed_pass({"data": {"source": "csv", "path": str(path), "label_columns": ["y"],
                                  "streaming": True, "workers": workers},
                         "model": {"type": "mlp"}, "train": {"batch_size": 512}})
    assert got["samples"] == got["train"] == ROWS * 7 // 10
    assert got["train"] * COLUMNS * 8 / 2**20 > 1.4 * CAP_MB  # the parsed training split: 1.5x the cap
    assert got["after"] - got["before"] < CAP_MB, got
    if workers:
        assert got["readers"] < got["before"] + CAP_MB, got


@pytest.mark.parametrize("streaming", [False, True])
def test_leading_blank_lines_and_blank_header_cells_load_as_pandas_reads_them(tmp_path, streaming):
    """A spreadsheet's export: blank lines first, a header ending in empty cells."""
    rows = "".join(f"{i % 7},{i % 5},{'lo' if i % 2 else 'hi'},,\n" for i in range(40))
    path = tmp_path / "t.csv"
    path.write_text("\n\na,b,y,,\n" + rows)
    data = prepare_data(config(path, streaming, feature_columns=["a", "b"]))
    assert list(data.splits.val.x.columns) == ["a", "b"]
    train = len(data.stream) if streaming else len(data.splits.train)
    assert train + len(data.splits.val) + len(data.splits.test) == 40
    assert data.dataset.task.class_names == ("hi", "lo")


@pytest.mark.parametrize("blank", [[25, 26], list(range(40, 60))])  # in one chunk; a whole chunk
def test_a_true_false_column_with_blanks_is_categorical_streamed_as_in_memory(tmp_path, monkeypatch,
                                                                               blank):
    monkeypatch.setattr(csv_stream, "CHUNK_ROWS", 20)  # chunks without a blank read as bool
    path = write_csv(tmp_path / "t.csv", 60)
    frame = pd.read_csv(path)
    frame["member"] = pd.Series(np.arange(60) % 3 == 0, dtype=object)
    frame.loc[blank, "member"] = None
    frame.to_csv(path, index=False)
    streamed, memory = config(path, True), config(path, False)
    got, want = prepare_data(streamed), prepare_data(memory)
    assert got.preprocessor.categorical == want.preprocessor.categorical == [
        {"name": "member", "fill": "False", "categories": ["False", "True"]}]
    assert [s["name"] for s in got.preprocessor.numeric] == ["a", "n", "b"]
    pd.testing.assert_frame_equal(got.splits.test.x, want.splits.test.x.astype({"n": np.float64}))
    for (gx, gy), (wx, wy) in zip(_epoch(got, streamed, 0), _epoch(want, memory, 0), strict=True):
        torch.testing.assert_close(gx, wx, rtol=1e-5, atol=1e-5)
        assert torch.equal(gy, wy)
