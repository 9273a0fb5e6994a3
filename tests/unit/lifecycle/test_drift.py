"""Drift of a registered model's inputs: the reference in the bundle, the verdicts, the served
sample, and bad input that leaves the store and files untouched."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from drift_models import images, registered, rows

from dlforge.errors import DataError, NotFoundError
from dlforge.lifecycle.drift import check_drift
from dlforge.lifecycle.drift_run import drift_of_data, drift_of_served
from dlforge.lifecycle.reservoir import Reservoir, read_sample, served_sample_path
from dlforge.registry import load_bundle


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = registered(tmp_path_factory.mktemp("drift"))
    rows(200, seed=1).drop(columns=["b"]).rename(columns={"a": "x"}).to_csv(root / "renamed.csv", index=False)
    np.save(root / "images.npy", images(200, seed=1))
    np.save(root / "bright.npy", images(200, seed=1, brighter=40))
    np.save(root / "big.npy", np.zeros((5, 1, 16, 16), dtype=np.uint8))
    return root


def verdicts(result, names):
    return {name: result.features[name]["drifted"] for name in names}


def test_the_bundle_reference_summarises_every_training_feature(root):
    ref = json.loads((root / "ws/artifacts/models/churn/v1/reference.json").read_text())
    assert (ref["modality"], ref["rows"], ref["columns"]) == ("table", 400, ["a", "b", "color"])
    assert sorted(ref["features"]) == ["a", "b", "color", "emb_pc1", "emb_pc2", "emb_pc3", "emb_pc4",
                                       "predicted_class", "score"]
    assert sorted(ref["features"]["color"]["counts"]) == ["blue", "green", "red"]
    assert len(ref["embedding"]["components"]) == 4 and len(ref["embedding"]["components"][0]) == 8


def test_a_table_with_one_shifted_column_drifts_on_that_column_only(root):
    same = drift_of_data("churn@1", root / "same.csv", workspace=root / "ws").result
    moved = drift_of_data("churn@1", root / "shifted.csv", workspace=root / "ws").result
    assert (same.verdict, same.drifted, same.exit_code, same.decided_by) == ("no drift", [], 0, "tests")
    assert verdicts(moved, ["a", "b", "color"]) == {"a": True, "b": False, "color": False}
    assert (moved.verdict, moved.exit_code) == ("drift", 3)
    assert moved.settings["bonferroni_level"] == pytest.approx(0.05 / 9)


def test_brighter_images_drift_in_pixel_intensity_and_write_a_report(root, tmp_path):
    same = drift_of_data("digits", root / "images.npy", workspace=root / "ws")
    bright = drift_of_data("digits", root / "bright.npy", workspace=root / "ws", report=tmp_path / "r.html")
    assert same.result.drifted == [] and same.report == root / "ws/reports/drift-digits-v1.html"
    assert verdicts(bright.result, ["pixel_mean", "pixel_std"]) == {"pixel_mean": True, "pixel_std": False}
    page = bright.report.read_text()
    assert "drift of digits@1" in page and page.count("<img") == 8 and "pixel_mean" in page


def test_an_image_folder_is_read_with_its_class_subfolders(root, tmp_path):
    from PIL import Image

    x = images(40, seed=1)
    for i, image in enumerate(x):
        folder = tmp_path / "scans" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0]).save(folder / f"{i:02d}.png")
    from_files = drift_of_data("digits", tmp_path / "scans", workspace=root / "ws").result
    np.save(tmp_path / "same.npy", x[np.r_[1:40:2, 0:40:2]])  # the order of the sorted files
    from_array = drift_of_data("digits", tmp_path / "same.npy", workspace=root / "ws").result
    assert from_files.rows == 40 and from_files.features == from_array.features
    (tmp_path / "none" / "a").mkdir(parents=True)
    with pytest.raises(DataError) as info:
        drift_of_data("digits", tmp_path / "none", workspace=root / "ws")
    assert str(info.value) == (f"--data: {tmp_path / 'none'} holds no image files (.png, .jpg, "
                               f".jpeg, .bmp, .tif, .tiff), in it or in its subfolders; give a "
                               f"folder of images")


def test_min_drifted_sets_the_overall_verdict(root):
    from dlforge.config.drift_schema import DriftConfig

    moved = drift_of_data("churn@1", root / "shifted.csv", workspace=root / "ws",
                          cfg=DriftConfig(min_drifted=9)).result
    assert moved.drifted and moved.verdict == "no drift"


def snapshot(ws):
    return {p: p.stat().st_mtime_ns for p in ws.rglob("*") if p.is_file()}


def test_other_columns_are_one_line_naming_both_and_write_nothing(root):
    before = snapshot(root / "ws")
    with pytest.raises(DataError) as info:
        drift_of_data("churn@1", root / "renamed.csv", workspace=root / "ws")
    assert str(info.value) == (f"drift: {root / 'renamed.csv'} has columns ['x', 'color'] but the model "
                               "was trained on columns ['a', 'b', 'color'] (missing ['a', 'b'])")
    assert snapshot(root / "ws") == before and before


def test_other_image_sizes_are_one_line_naming_both(root):
    with pytest.raises(DataError, match=re.escape(
            "big.npy holds 16x16 (1 channel) images but the model was trained on 8x8 (1 channel) images")):
        drift_of_data("digits", root / "big.npy", workspace=root / "ws")


def test_a_bundle_without_reference_says_how_to_get_one(root):
    with pytest.raises(NotFoundError, match=re.escape(
            "model churn@2: its bundle has no reference.json (registered before bundles kept "
            "training statistics); train and register it again to check drift")):
        drift_of_data("churn@2", root / "same.csv", workspace=root / "ws")


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda doc: {"x": 1}, "'features' is missing or not a dict"),
    (lambda doc: [], "expected an object, got list"),
    (lambda doc: {**doc, "sample_shape": None}, "'sample_shape' is missing or not a list"),
    (lambda doc: {**doc, "features": {**doc["features"], "a": {"kind": "numeric", "n": 3}}},
     "feature 'a' lacks mean, std, quantiles, edges, hist"),
    (lambda doc: {**doc, "features": {**doc["features"], "color": {"n": 3}}},
     "feature 'color' has no kind numeric or categorical"),
])
def test_a_hand_edited_reference_is_one_line_naming_the_file(root, edit, problem):
    file = root / "ws/artifacts/models/churn/v1/reference.json"
    original = file.read_text()
    file.write_text(json.dumps(edit(json.loads(original))))
    try:
        with pytest.raises(DataError) as info:
            drift_of_data("churn@1", root / "same.csv", workspace=root / "ws")
    finally:
        file.write_text(original)
    assert str(info.value) == (f"bundle: {file} is incomplete or corrupt ({problem}); train and "
                               f"register the model again to check drift")


def test_inputs_of_another_shape_or_too_few_are_refused(root):
    bundle = load_bundle(root / "ws/artifacts/models/digits/v1")
    ref = json.loads((root / "ws/artifacts/models/digits/v1/reference.json").read_text())
    with pytest.raises(DataError, match=re.escape("drift: the inputs of x have shape (1, 4, 4) after "
                                                  "preprocessing, the reference of m (1, 8, 8)")):
        check_drift(ref, np.zeros((5, 1, 4, 4), np.float32), bundle, model="m", source="x")
    with pytest.raises(DataError, match="drift: x has 1 input"):
        check_drift(ref, np.zeros((1, 1, 8, 8), np.float32), bundle, model="m", source="x")


def test_the_served_sample_is_read_from_the_workspace(root):
    with pytest.raises(NotFoundError, match="served sample: .*v1.npz does not exist"):
        drift_of_served("digits", workspace=root / "ws")
    reservoir = Reservoir(100)
    bundle = load_bundle(root / "ws/artifacts/models/digits/v1")
    reservoir.add(bundle.preprocessor.transform(images(300, seed=2, brighter=60)))
    reservoir.save(served_sample_path(root / "ws", "digits", 1))
    result = drift_of_served("digits", workspace=root / "ws").result
    assert result.rows == 100 and result.source.startswith("served sample (100 of 300 inputs served")
    assert result.features["pixel_mean"]["drifted"] is True


def test_the_reservoir_is_bounded_uniform_and_continues_after_a_restart(tmp_path):
    reservoir = Reservoir(500, seed=0)
    for start in range(0, 10_000, 100):
        reservoir.add(np.arange(start, start + 100, dtype=np.float32)[:, None])
    sample = reservoir.sample()
    assert reservoir.seen == 10_000 and sample.shape == (500, 1) and len(np.unique(sample)) == 500
    assert 4000 < sample.mean() < 6000  # uniform over all 10,000, not the first or last 500
    reservoir.save(tmp_path / "s.npz")
    again = Reservoir.load(tmp_path / "s.npz", 500)
    assert again.seen == 10_000 and np.array_equal(again.sample(), sample)
    x, seen = read_sample(tmp_path / "s.npz")
    assert seen == 10_000 and x.shape == (500, 1)
