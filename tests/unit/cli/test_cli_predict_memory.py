"""Streaming prediction keeps memory flat: peak memory does not grow with the number of rows."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from cli_predict_models import table_model

from dlforge.cli.predict_cmds import stream_predictions
from dlforge.cli.predict_io import columns_for, open_sink
from dlforge.cli.predict_stream import open_inputs
from dlforge.registry import Predictor, load


def write_rows(path, n: int) -> None:
    rng = np.random.default_rng(n)
    pd.DataFrame({"a": rng.normal(0, 1, n).round(4), "b": rng.normal(5, 2, n).round(4),
                  "shop": rng.choice(["1", "2", "x"], n)}).to_csv(path, index=False)


def streamed_peak(predictor, csv, out, batch_size: int) -> tuple[int, int]:
    """(peak bytes allocated by Python while predicting `csv` into `out`, rows written)."""
    tracemalloc.start()
    try:
        stream = open_inputs(predictor, [str(csv)], [], batch_size=batch_size)
        with open_sink(out, "csv", columns_for(predictor.task)) as sink:
            stats = stream_predictions(predictor, stream, sink, top_k=None)
        return tracemalloc.get_traced_memory()[1], stats.written
    finally:
        tracemalloc.stop()


def test_peak_memory_for_20000_rows_stays_near_that_for_2000(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    table_model(ws, tmp_path)
    predictor = load("tab", workspace=ws)
    largest = []
    original = Predictor.predict
    monkeypatch.setattr(Predictor, "predict",
                        lambda self, x, top_k=None: largest.append(len(x)) or original(self, x, top_k))
    write_rows(tmp_path / "small.csv", 2_000)
    write_rows(tmp_path / "large.csv", 20_000)
    streamed_peak(predictor, tmp_path / "small.csv", tmp_path / "warm-up.csv", 500)  # lazy imports
    small, n_small = streamed_peak(predictor, tmp_path / "small.csv", tmp_path / "small-out.csv", 500)
    large, n_large = streamed_peak(predictor, tmp_path / "large.csv", tmp_path / "large-out.csv", 500)
    assert (n_small, n_large) == (2_000, 20_000)
    assert max(largest) == 500
    assert large < 1.5 * small, (small, large)
    written = pd.read_csv(tmp_path / "large-out.csv")
    assert written["input"].tolist() == [f"row[{i}]" for i in range(20_000)]
    # the same labels as one call on the whole table
    expected = original(predictor, pd.read_csv(tmp_path / "large.csv", dtype={"shop": str}))
    assert written["label"].tolist() == [r["label"] for r in expected]
    assert written["score"].tolist() == pytest.approx([r["score"] for r in expected], abs=1e-6)
