"""16-bit grayscale images decoded to 8 bits: scaled by the 16-bit range, or refused naming the
file when that scaling would turn it black (8-bit data stored in 16 bits)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dlforge.config.schema import DataConfig
from dlforge.data.images import decode_image
from dlforge.data.sources import load_dataset
from dlforge.errors import DataError


def save16(path, values, dtype=np.uint16):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.array([values], dtype=dtype)).save(path)
    return path


def test_full_range_keeps_its_high_byte(tmp_path):
    path = save16(tmp_path / "scan.png", [0, 255, 4096, 30000, 65535])
    assert decode_image(path, color="grayscale", size=None).tolist() == [[[0, 0, 16, 117, 255]]]


def test_8_bit_data_saved_as_16_bits_is_refused_naming_the_file(tmp_path):
    path = save16(tmp_path / "mask.png", [0, 50, 128, 200, 255])  # was all black, silently
    with pytest.raises(DataError) as err:
        decode_image(path, color="grayscale", size=None)
    assert str(err.value) == (
        f"{path}: a 16-bit image whose values reach only 255 of 65535; scaled by the 16-bit "
        "range it would turn black. Save it as 8 bits, or scale its values to 0-65535")


@pytest.mark.parametrize(("values", "expected"), [
    ([0, 256, 300, 1000], [0, 1, 1, 3]),       # a night scene: was refused
    ([0, 1000, 2000, 4095], [0, 3, 7, 15]),    # 12-bit data stored unscaled: 16 grey levels
])
def test_a_dark_16_bit_image_is_scaled_by_the_16_bit_range(tmp_path, values, expected):
    path = save16(tmp_path / "night.png", values)
    assert decode_image(path, color="grayscale", size=None).tolist() == [[expected]]


def test_a_12_bit_pgm_is_scaled_by_the_maximum_its_header_declares(tmp_path):
    path = tmp_path / "scan.pgm"
    path.write_bytes(b"P5\n4 1\n4095\n" + np.array([0, 1000, 2000, 4095], dtype=">u2").tobytes())
    assert decode_image(path, color="grayscale", size=None).tolist() == [[[0, 62, 125, 255]]]


def test_an_all_black_16_bit_image_stays_black(tmp_path):
    path = save16(tmp_path / "dark.png", [0, 0, 0])
    assert decode_image(path, color="grayscale", size=None).tolist() == [[[0, 0, 0]]]


def test_32_bit_values_are_clipped_to_16_bits(tmp_path):
    path = save16(tmp_path / "wide.tif", [-5, 30000, 70000, 2**20], dtype=np.int32)
    assert decode_image(path, color="grayscale", size=None).tolist() == [[[0, 117, 255, 255]]]


def test_image_folder_skips_a_low_range_image_with_the_reason(tmp_path):
    save16(tmp_path / "a" / "ok.png", [0, 30000, 65535])
    save16(tmp_path / "b" / "ok.png", [0, 65535, 65535])
    save16(tmp_path / "b" / "mask.png", [0, 1, 255])
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))
    assert ds.x.shape == (2, 1, 1, 3)
    assert [s["path"] for s in ds.skipped] == ["b/mask.png"]
    assert ds.skipped[0]["reason"].startswith("a 16-bit image whose values reach only 255 of 65535")


def test_image_folder_reads_tiff_files(tmp_path):
    # its list of suffixes had no .tif/.tiff: a folder of 16-bit TIFF scans held "no images"
    save16(tmp_path / "a" / "1.tif", [0, 30000, 65535])
    save16(tmp_path / "b" / "2.TIFF", [65535, 4096, 0])
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))
    assert ds.x.tolist() == [[[[0, 117, 255]]], [[[255, 16, 0]]]]
    assert ds.y.tolist() == [0, 1] and ds.skipped == []


@pytest.mark.parametrize("split", [False, True])
def test_a_class_none_of_whose_images_can_be_read_is_refused(tmp_path, split):
    # it was skipped silently: a 3-class folder trained as 2 classes, exit 0
    root = tmp_path / "train" if split else tmp_path
    save16(root / "a" / "1.png", [0, 30000, 65535])
    save16(root / "b" / "1.png", [0, 65535, 65535])
    save16(root / "c" / "1.png", [0, 1, 255])
    (root / "c" / "2.png").write_bytes(b"")
    if split:  # readable test images of the class do not train it
        save16(tmp_path / "test" / "c" / "3.png", [0, 65535, 65535])
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(source="image_folder", path=str(tmp_path)))
    first = "train/c/1.png" if split else "c/1.png"
    assert str(err.value) == (
        f"data.path: none of the 2 images of class 'c' could be read, so the class would not be "
        f"trained; first problem: {first}: a 16-bit image whose values reach only 255 of 65535; "
        "scaled by the 16-bit range it would turn black. Save it as 8 bits, or scale its values "
        "to 0-65535; fix or replace its images, or leave the class out with data.classes")


def test_a_class_left_out_may_have_no_readable_image(tmp_path):
    save16(tmp_path / "a" / "1.png", [0, 30000, 65535])
    save16(tmp_path / "b" / "1.png", [0, 65535, 65535])
    save16(tmp_path / "c" / "1.png", [0, 1, 255])
    ds = load_dataset(DataConfig(source="image_folder", path=str(tmp_path), classes=["a", "b"]))
    assert ds.y.tolist() == [0, 1] and [s["path"] for s in ds.skipped] == ["c/1.png"]


def test_a_32_bit_float_tiff_is_refused_naming_the_file(tmp_path):
    # Pillow's mode F: converted to 8 bits its 0..1 values turned all black
    path = tmp_path / "depth.tif"
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(path)
    with pytest.raises(DataError) as err:
        decode_image(path, color="rgb", size=None)
    assert str(err.value) == (
        f"{path}: a 32-bit float image; dlforge reads 8- and 16-bit integer pixels only. Save it "
        "as 8 or 16-bit integers (scale 0..1 values to 0-255 or 0-65535)")
