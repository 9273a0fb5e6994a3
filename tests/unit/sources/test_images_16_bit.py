"""16-bit grayscale images decoded to 8 bits: scaled by the 16-bit range, or refused naming the
file when that scaling would leave at most 16 grey levels (8-bit or 12-bit data stored in 16)."""

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


@pytest.mark.parametrize(("values", "levels"), [
    ([0, 50, 128, 200, 255], 1),     # 8-bit data saved as 16 bits: was all black, silently
    ([0, 1000, 2000, 4095], 16),     # 12-bit data (microscopy): was 16 grey levels, silently
])
def test_a_low_range_image_is_refused_naming_the_file(tmp_path, values, levels):
    path = save16(tmp_path / "mask.png", values)
    with pytest.raises(DataError) as err:
        decode_image(path, color="grayscale", size=None)
    assert str(err.value) == (
        f"{path}: a 16-bit image whose values reach only {max(values)} of 65535; scaled by the "
        f"16-bit range it would keep {levels} of 256 grey levels. Save it as 8 bits if its values "
        "fit 0-255, or scale them to 0-65535 (multiply 12-bit values by 16)")


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
