"""An image folder streamed straight from its files: the in-memory run's splits and batches,
a corrupt file named when its batch is read, and memory bounded by the batch, not the folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tests.unit.streaming.rss_pass import streamed_pass

from dlforge.config import load_config
from dlforge.data.prepare import load_and_split, prepare_data
from dlforge.errors import DataError

CLASSES = ("cat", "dog", "owl")


def write_folder(root, count, side=4, noise=False):
    """`count` PNGs, sample i's pixels all i % 251 (or seeded noise), classes round robin."""
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / CLASSES[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (rng.integers(0, 256, (side, side)) if noise
                  else np.full((side, side), i % 251)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")
    return root


def config(root, streaming, **data):
    return load_config({"seed": 3, "data": {"source": "image_folder", "path": str(root),
                                            "streaming": streaming, **data},
                        "model": {"type": "mlp"}, "train": {"batch_size": 8},
                        "augment": {"hflip": {"p": 0.5}}})


def train_batches(data, cfg, epoch):
    loader = data.loaders_for(cfg).train
    loader.set_epoch(epoch)
    return [(xb, yb) for xb, yb in loader]


@pytest.mark.parametrize("data", [{}, {"limit": 40, "classes": ["cat", "owl"]}])
def test_a_streamed_folder_trains_on_the_in_memory_runs_batches(tmp_path, data):
    root = write_folder(tmp_path / "photos", 75)
    streamed, memory = config(root, True, **data), config(root, False, **data)
    got, want = prepare_data(streamed), prepare_data(memory)
    assert got.stream is not None and want.stream is None
    assert len(got.stream) == len(want.splits.train) > 0
    for name in ("val", "test"):
        part, expected = getattr(got.splits, name), getattr(want.splits, name)
        assert list(part.ids) == list(expected.ids) and len(part.ids) > 0
        assert np.array_equal(part.x, expected.x)
    assert list(got.stream.split.ids) == list(want.splits.train.ids)
    for epoch in (0, 2):
        batches, expected = train_batches(got, streamed, epoch), train_batches(want, memory, epoch)
        assert len(batches) == len(expected) > 0
        for (gx, gy), (wx, wy) in zip(batches, expected, strict=True):
            torch.testing.assert_close(gx, wx, rtol=1e-5, atol=1e-5)
            assert torch.equal(gy, wy)


def test_the_splits_are_those_of_the_in_memory_source(tmp_path):
    root = write_folder(tmp_path / "photos", 30)
    _, got, _ = load_and_split(config(root, True))
    _, want, _ = load_and_split(config(root, False))
    assert got.info["streamed"] == {"train": len(want.train), "in_memory": len(want.train)}
    assert sorted(got.train.ids) == sorted(want.train.ids) and len(got.train.ids) == 20
    assert list(got.val.ids) == list(want.val.ids)


def test_a_corrupt_file_is_named_when_its_batch_is_read(tmp_path):
    root = write_folder(tmp_path / "photos", 30)
    data = prepare_data(config(root, True))
    bad = str(data.stream.split.ids[5])
    (root / bad).write_bytes(b"not a png")
    with pytest.raises(DataError, match=rf"^data\.path: {bad}: .*; remove or fix the file"):
        data.stream.split.take(np.array([5]))


def test_images_of_another_size_need_image_size(tmp_path):
    root = write_folder(tmp_path / "photos", 30)
    data = prepare_data(config(root, True))
    odd = str(data.stream.split.ids[2])
    Image.fromarray(np.zeros((6, 5), dtype=np.uint8)).save(root / odd)
    with pytest.raises(DataError, match=rf"^data\.image_size: {odd} is 6x5, the folder's first "
                                        r"image 4x4; set data\.image_size: \[height, width\]"):
        data.stream.split.take(np.array([2]))


FILES, SIDE, CAP_MB = 6_000, 64, 24  # 6,000 x 64 x 64: 23 MiB as uint8, 94 MiB as float32


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_peak_rss_grows_less_than_the_cap_over_a_folder_larger_than_it(tmp_path_factory, workers):
    root = tmp_path_factory.getbasetemp() / "big_folder"
    if not root.exists():
        write_folder(root, FILES, side=SIDE, noise=True)
    got = streamed_pass({"data": {"source": "image_folder", "path": str(root), "streaming": True,
                                  "workers": workers},
                         "model": {"type": "mlp"}, "train": {"batch_size": 256}})
    assert got["samples"] == got["train"] == FILES * 7 // 10  # the default 70/15/15 split
    assert 4 * got["train"] * SIDE * SIDE / 2**20 > 2.5 * CAP_MB  # training floats: 2.7x the cap
    assert got["after"] - got["before"] < CAP_MB, got
    if workers:
        assert got["readers"] < got["before"] + CAP_MB, got
