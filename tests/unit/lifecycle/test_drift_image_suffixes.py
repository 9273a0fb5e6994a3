"""`dlforge drift --data FOLDER` reads the image files training and `dlforge predict` read."""

from __future__ import annotations

from dlforge.lifecycle.drift_data import _image_files


def test_drift_reads_the_image_folder_suffixes(tmp_path):
    # its own list had .gif and .webp (which training never reads) and no .tif/.tiff
    for name in ("a/1.tif", "a/2.TIFF", "b/3.png", "b/4.gif", "b/5.webp"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [f[len(str(tmp_path)) + 1:] for f in _image_files(tmp_path)] == [
        "a/1.tif", "a/2.TIFF", "b/3.png"]

