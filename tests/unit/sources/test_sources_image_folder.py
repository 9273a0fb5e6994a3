"""Image folders and decode_image, on tiny generated PNG/JPEG/BMP files."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image, ImageFile

from dlforge.config import load_config
from dlforge.config.schema import DataConfig
from dlforge.data.images import SizeLimit, decode_image
from dlforge.data.prepare import load_and_split
from dlforge.data.sources import load_dataset
from dlforge.data.sources.image_folder import folder_index
from dlforge.errors import DataError


def img(path, value: int, size=(4, 3), fmt=None, mode="L"):
    """Write a (width, height) = size image filled with `value`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


def test_class_folders_become_sorted_classes(tmp_path):
    img(tmp_path / "dog" / "a.png", 10)
    img(tmp_path / "cat" / "b.PNG", 20)
    img(tmp_path / "cat" / "c.bmp", 30)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))
    assert ds.x.shape == (3, 1, 3, 4) and ds.x.dtype == np.uint8
    assert ds.x[:, 0, 0, 0].tolist() == [20, 30, 10]
    assert ds.task.kind == "binary" and ds.task.class_names == ("cat", "dog")
    assert ds.y.tolist() == [0, 0, 1] and ds.split is None and ds.skipped == []
    assert sorted(ds.provenance.files) == ["cat/b.PNG", "cat/c.bmp", "dog/a.png"]


def test_images_in_nested_folders_of_a_class_folder_are_that_class_s(tmp_path):
    # were left out silently (and a class with only nested images was called empty), while
    # `dlforge predict` on the same folder searched its nested folders
    img(tmp_path / "cat" / "a.png", 10)
    img(tmp_path / "cat" / "indoor" / "b.png", 20)
    img(tmp_path / "dog" / "x" / "y" / "c.png", 30)
    img(tmp_path / "dog" / ".cache" / "d.png", 40)  # a hidden folder is not data
    for load in (load_dataset, folder_index):  # in memory and streamed
        ds = load(DataConfig(source="image_folder", path=str(tmp_path)))
        assert ds.ids.tolist() == ["cat/a.png", "cat/indoor/b.png", "dog/x/y/c.png"]
        assert ds.task.class_names == ("cat", "dog") and ds.y.tolist() == [0, 0, 1]
    assert load_dataset(DataConfig(source="image_folder", path=str(tmp_path))).x[:, 0, 0, 0] \
        .tolist() == [10, 20, 30]


def test_train_and_test_folders_mark_the_split_and_rgb(tmp_path):
    img(tmp_path / "train" / "a" / "1.png", 0, mode="RGB")
    img(tmp_path / "train" / "b" / "2.jpg", 255, mode="RGB", fmt="PNG")
    img(tmp_path / "train" / "c" / "3.png", 100, mode="RGB")
    img(tmp_path / "test" / "b" / "4.png", 255, mode="RGB")
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path), color="rgb"))
    assert ds.x.shape == (4, 3, 3, 4)
    assert ds.x[0, :, 0, 0].tolist() == [255, 0, 0]  # test/b/4.png comes first (sorted folders)
    assert ds.split.tolist() == ["test", "train", "train", "train"]
    assert ds.task.class_names == ("a", "b", "c") and ds.y.tolist() == [1, 0, 1, 2]


def test_corrupt_file_is_skipped_and_listed(tmp_path):
    img(tmp_path / "a" / "ok.png", 1)
    img(tmp_path / "b" / "ok.png", 2)
    (tmp_path / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))
    assert len(ds) == 2
    assert [s["path"] for s in ds.skipped] == ["b/broken.jpg"]
    assert ds.skipped[0]["reason"].startswith("cannot read image (")


def test_sizes_differ_without_image_size(tmp_path):
    img(tmp_path / "a" / "1.png", 1, size=(4, 3))
    img(tmp_path / "b" / "2.png", 2, size=(5, 6))
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))
    assert str(exc.value) == (
        "data.image_size: images differ in size (3x4 in a/1.png, 6x5 in b/2.png); "
        "set data.image_size: [height, width] to resize them"
    )
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path), image_size=(8, 7)))
    assert ds.x.shape == (2, 1, 8, 7)


def test_no_images_and_mixed_layout(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))
    assert str(exc.value) == (
        f"data.path: no images (png, jpg, jpeg, bmp, tif, tiff) under {str(tmp_path)!r}; expected one "
        f"sub-folder per class"
    )
    img(tmp_path / "train" / "a" / "1.png", 1)
    with pytest.raises(DataError, match=r"mixes split folders \(train\) and class folders \(a\)"):
        load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))


def test_a_class_folder_without_images_is_refused_where_it_is_trained_on(tmp_path):
    img(tmp_path / "train" / "cat" / "1.png", 1)
    img(tmp_path / "train" / "dog" / "2.png", 2)
    (tmp_path / "train" / "bird").mkdir()
    (tmp_path / "train" / "eel").mkdir()
    (tmp_path / "train" / "eel" / "notes.txt").write_text("not an image")
    img(tmp_path / "test" / "dog" / "3.png", 3)
    cfg = DataConfig(source="image_folder", path=str(tmp_path))
    expected = "\n".join(
        f"data.path: class folder {str(tmp_path / part)!r} holds no images (png, jpg, jpeg, bmp, tif, tiff); "
        f"add its images, remove the empty folder, or leave the class out with data.classes"
        for part in ("train/bird", "train/eel"))
    for load in (load_dataset, folder_index):  # in memory and streamed
        with pytest.raises(DataError) as exc:
            load(cfg)
        assert str(exc.value) == expected
    with pytest.raises(DataError) as exc:  # a class kept by data.classes must have images
        load_dataset(cfg.model_copy(update={"classes": ["bird", "dog"]}))
    assert str(exc.value) == expected.splitlines()[0]
    (tmp_path / "train" / "bird").rmdir()
    with pytest.raises(DataError) as exc:  # no split folders: every class folder is trained on
        load_dataset(DataConfig(source="image_folder", path=str(tmp_path / "train")))
    assert str(exc.value) == expected.splitlines()[1]


def test_an_empty_class_folder_under_test_or_val_is_a_warning(tmp_path):
    for split in ("train", "test"):
        img(tmp_path / split / "cat" / "1.png", 1)
        img(tmp_path / split / "cat" / "2.png", 2)
    for i in range(4):
        img(tmp_path / "train" / "dog" / f"{i}.png", 10 + i)
    (tmp_path / "test" / "dog").mkdir()
    (tmp_path / "val" / "dog").mkdir(parents=True)
    img(tmp_path / "val" / "cat" / "5.png", 5)
    cfg = load_config({"data": {"source": "image_folder", "path": str(tmp_path)}})
    for streaming in (False, True):
        run = cfg.model_copy(update={"data": cfg.data.model_copy(update={"streaming": streaming})})
        dataset, splits, report = load_and_split(run)
        assert dataset.task.class_names == ("cat", "dog")
        assert [len(splits.train), len(splits.val), len(splits.test)] == [6, 1, 2]
        assert [w for w in report.warnings if "'dog'" in w] == [
            "data: class 'dog' has no samples in the val split",
            "data: class 'dog' has no samples in the test split"]


def test_an_empty_class_folder_left_out_by_data_classes_is_fine(tmp_path):
    img(tmp_path / "cat" / "1.png", 1)
    img(tmp_path / "dog" / "2.png", 2)
    (tmp_path / "bird").mkdir()
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path), classes=["cat", "dog"]))
    assert ds.task.class_names == ("cat", "dog") and ds.y.tolist() == [0, 1]


def test_decode_image_converts_resizes_and_reports(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (255, 0, 0)).save(buf, format="PNG")
    gray = decode_image(buf.getvalue(), color="grayscale", size=None)
    assert gray.shape == (1, 2, 2) and gray[0, 0, 0] == 76  # ITU-R 601-2 luma of pure red
    rgb = decode_image(buf.getvalue(), color="rgb", size=(4, 6))
    assert rgb.shape == (3, 4, 6) and rgb[:, 1, 1].tolist() == [255, 0, 0]
    with pytest.raises(DataError) as info:
        decode_image(b"nope", color="rgb", size=None)
    assert str(info.value) == ("<bytes>: cannot read image (not an image: its first bytes match no "
                               "format Pillow reads, such as PNG or JPEG)")
    (tmp_path / "empty.png").touch()
    with pytest.raises(DataError) as info:
        decode_image(tmp_path / "empty.png", color="rgb", size=None)
    assert str(info.value) == f"{tmp_path / 'empty.png'}: cannot read image (the file is empty: 0 bytes)"
    missing = tmp_path / "x.png"
    with pytest.raises(DataError, match=r"x\.png: cannot read image \(.*No such file"):
        decode_image(missing, color="rgb", size=None)


def test_decode_image_refuses_an_image_over_the_pixel_cap_from_its_header(tmp_path, blank_png,
                                                                          monkeypatch):
    def refuse(self):
        raise AssertionError(f"decoded a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    with pytest.raises(DataError, match=r"^<bytes>: image is 400000000 pixels; the limit is "
                                        r"89478485 pixels; resize it first$"):
        decode_image(blank_png(20000, 20000), color="rgb", size=(8, 8))
    path = tmp_path / "big.png"
    path.write_bytes(blank_png(12000, 12000))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: image is 12000x12000 pixels "
                                        r"\(144000000\); the limit is 89478485 pixels; resize it first$"):
        decode_image(path, color="grayscale", size=None)


def test_decode_image_keeps_to_a_model_s_size_limit(blank_png):
    assert (SizeLimit.for_input(28, 28), SizeLimit.for_input(200, 100).max_side) == (
        SizeLimit(1792, "64x the model's 28x28 input"), 8192)
    limit = SizeLimit.for_input(8, 8)
    assert decode_image(blank_png(512, 3), color="grayscale", size=(8, 8), limit=limit).shape == (1, 8, 8)
    with pytest.raises(DataError, match=r"^<bytes>: image is 4x513 pixels; the limit is 512 pixels "
                                        r"a side \(64x the model's 8x8 input\); resize it first$"):
        decode_image(blank_png(4, 513), color="grayscale", size=(8, 8), limit=limit)


def test_image_folder_skips_an_image_over_the_pixel_cap(tmp_path, blank_png):
    img(tmp_path / "a" / "1.png", 10)
    img(tmp_path / "b" / "2.png", 20)
    (tmp_path / "b" / "bomb.png").write_bytes(blank_png(20000, 20000))
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))
    assert ds.x.shape == (2, 1, 3, 4)
    assert ds.skipped == [{"path": "b/bomb.png", "reason": "image is 400000000 pixels; the limit "
                                                           "is 89478485 pixels; resize it first"}]


@pytest.mark.parametrize("suffix", ["png", "tif"])
@pytest.mark.parametrize("color", ["grayscale", "rgb"])
def test_16_bit_grayscale_keeps_its_high_byte_not_white(tmp_path, suffix, color):
    # Pillow's own conversion clips 16-bit values at 255: 1000 and 30000 of 65535 became white
    path = tmp_path / f"scan.{suffix}"
    Image.fromarray(np.array([[0, 1000, 30000, 65535]], dtype=np.uint16)).save(path)
    arr = decode_image(path, color=color, size=None)
    assert arr.tolist() == [[[0, 3, 117, 255]]] * (3 if color == "rgb" else 1)


@pytest.mark.parametrize(("tops", "message"), [
    (("Training", "Testing"), "'Training' and 'Testing' look like split folders, not classes; "
     "rename them train/ and test/ (dlforge reads those), or point data.path at one of them"),
    (("Train", "Test"), "'Train' and 'Test' look like split folders, not classes; "
     "rename them train/ and test/ (dlforge reads those), or point data.path at one of them"),
    (("testing", "training", "VALID"), "'training', 'VALID' and 'testing' look like split folders, "
     "not classes; rename them train/, val/ and test/ (dlforge reads those), or point data.path "
     "at one of them"),
    (("Eval",), "'Eval' looks like a split folder, not a class; rename it test/ (dlforge reads "
     "that), or point data.path at it"),
])
def test_split_folders_named_otherwise_are_refused_not_read_as_classes(tmp_path, tops, message):
    # Kaggle's Training/{a,b} + Testing/{a,b} loaded as two classes "Training" and "Testing"
    for top in tops:
        img(tmp_path / top / "a" / "1.png", 10)
        img(tmp_path / top / "b" / "2.png", 20)
    for load in (load_dataset, folder_index):
        with pytest.raises(DataError) as info:
            load(DataConfig(source="image_folder", path=str(tmp_path)))
        assert str(info.value) == f"data.path: {message}"


def test_the_report_names_the_nested_folders_trained_as_their_class(tmp_path):
    from dlforge.data.validate import validate

    img(tmp_path / "cat" / "a.png", 10)
    img(tmp_path / "cat" / "rejected" / "b.png", 20)
    img(tmp_path / "cat" / "x" / "y" / "c.png", 20)
    img(tmp_path / "dog" / "d.png", 30)
    img(tmp_path / "dog" / "e.png", 30)
    img(tmp_path / "dog" / "f.png", 30)
    report = validate(load_dataset(DataConfig(source="image_folder", path=str(tmp_path))))
    assert [w for w in report.warnings if "nested" in w] == [
        "data: images in nested folders are trained as their class folder's: cat (rejected, x/y); "
        "move out any that are not that class"]
    flat = tmp_path / "flat"
    for name in ("cat/a.png", "cat/b.png", "dog/c.png", "dog/d.png"):
        img(flat / name, 10)
    assert not [w for w in validate(load_dataset(DataConfig(
        source="image_folder", path=str(flat)))).warnings if "nested" in w]


def test_the_report_says_when_every_class_holds_only_the_same_nested_folders(tmp_path):
    # root/set1/{cat,dog} + root/set2/{cat,dog}: trained "set1" against "set2" without a word
    from dlforge.data.validate import validate

    for part in ("train", "test"):
        for top in ("set1", "set2"):
            for value, cls in ((10, "cat"), (200, "dog")):
                img(tmp_path / part / top / cls / f"{value}.png", value)
    report = validate(load_dataset(DataConfig(source="image_folder", path=str(tmp_path))))
    assert [w for w in report.warnings if "nested" in w] == [
        "data: images in nested folders are trained as their class folder's: set1 (cat, dog), "
        "set2 (cat, dog); move out any that are not that class",
        "data: every class folder (set1, set2) holds its images only in the same nested folders "
        "(cat, dog); if those are the classes, data.path is one level too high: point it at one "
        "of the class folders"]
