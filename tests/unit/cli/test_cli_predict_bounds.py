"""`dlforge predict` refuses image files too large for the model from their headers."""

from __future__ import annotations

import pandas as pd
import pytest
from cli_predict_models import image_model, write_pngs
from PIL import ImageFile

from dlforge.cli import main


@pytest.fixture
def ws(tmp_path):
    return tmp_path / "ws"


def predict(ws, *args) -> int:
    return main(["-w", str(ws), "predict", *map(str, args)])


def test_a_decompression_bomb_stops_predict_without_being_decoded(ws, tmp_path, blank_png,
                                                                   monkeypatch, capsys):
    image_model(ws, tmp_path)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(blank_png(20000, 20000))

    def refuse(self):
        raise AssertionError(f"decoded a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    assert predict(ws, "img", bomb) == 1
    assert capsys.readouterr().err == (f"error: {bomb}: image is 400000000 pixels; the limit is "
                                       "89478485 pixels; resize it first\n")


def test_skip_bad_records_an_image_too_large_for_the_model(ws, tmp_path, blank_png):
    image_model(ws, tmp_path)
    files = write_pngs(tmp_path / "scans", 2)
    wide = tmp_path / "scans" / "wide.png"
    wide.write_bytes(blank_png(513, 4))
    out = tmp_path / "out.csv"
    assert predict(ws, "img", tmp_path / "scans", "-o", out, "--skip-bad") == 0
    written = pd.read_csv(out, keep_default_na=False).set_index("input")
    assert written.loc[str(wide), "error"] == (f"{wide}: image is 513x4 pixels; the limit is 512 "
                                               "pixels a side (64x the model's 8x8 input); "
                                               "resize it first")
    assert (written.loc[[str(f) for f in files], "error"] == "").all()
