"""CIFAR-10/100 python batches, generated in the upstream layout (pickled dicts, bytes keys)."""

from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from dlforge.config.schema import DataConfig
from dlforge.data.sources import load_dataset
from dlforge.data.sources.cifar import read_batch
from dlforge.errors import DataError

NAMES10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def dump(path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))  # upstream batches are protocol-2 pickles


def batch(labels, value: int, key: bytes = b"labels") -> dict:
    data = np.full((len(labels), 3072), value, dtype=np.uint8)
    data[:, 1024:2048] = 7  # the green plane
    return {b"batch_label": b"x", key: list(labels), b"data": data}


def write_cifar10(folder):
    folder.mkdir(parents=True)
    for i in range(1, 6):
        dump(folder / f"data_batch_{i}", batch([i % 10, (i + 1) % 10], value=i))
    dump(folder / "test_batch", batch([3], value=99))
    dump(folder / "batches.meta", {b"label_names": [n.encode() for n in NAMES10]})
    return folder


def test_cifar10_batches_from_path(tmp_path):
    root = write_cifar10(tmp_path / "cifar-10-batches-py")
    ds = load_dataset(DataConfig(source="cifar", name="cifar10", path=str(tmp_path)))
    assert ds.x.shape == (11, 3, 32, 32) and ds.x.dtype == np.uint8
    assert ds.x[0, 0, 0, 0] == 1 and ds.x[0, 1, 5, 5] == 7 and ds.x[10, 2, 31, 31] == 99
    assert ds.y.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 3]
    assert ds.split.tolist() == ["train"] * 10 + ["test"]
    assert ds.task.class_names == tuple(NAMES10)
    assert ds.provenance.source == "cifar:cifar10" and len(ds.provenance.files) == 7
    assert root.exists()


def test_cifar100_uses_fine_labels(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    fine = [f"c{i:02d}" for i in range(100)]
    dump(root / "train", batch([5, 99], 1, key=b"fine_labels") | {b"coarse_labels": [0, 1]})
    dump(root / "test", batch([42], 2, key=b"fine_labels") | {b"coarse_labels": [3]})
    dump(root / "meta", {b"fine_label_names": [n.encode() for n in fine],
                         b"coarse_label_names": [b"a"]})
    ds = load_dataset(DataConfig(source="cifar", name="cifar100", path=str(root)))
    assert ds.y.tolist() == [5, 99, 42] and len(ds.task.class_names) == 100
    assert ds.task.class_names[99] == "c99"


def test_archive_path_is_extracted_into_cache(tmp_path):
    write_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    cache = tmp_path / "cache"
    ds = load_dataset(DataConfig(source="cifar", name="cifar10", path=str(archive),
                                 cache_dir=str(cache)))
    assert len(ds) == 11
    assert sorted(os.listdir(cache / "cifar10" / "cifar-10-batches-py"))[:2] == [
        "batches.meta", "data_batch_1"]


def test_archive_with_unsafe_member_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/../../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DataError, match=r"evil\.tar\.gz: cannot extract the archive"):
        load_dataset(DataConfig(source="cifar", name="cifar10", path=str(archive),
                                cache_dir=str(tmp_path / "cache")))
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "cache" / "cifar10" / "cifar-10-batches-py").exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_batch_unpickler_refuses_code(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Evil()}))
    with pytest.raises(DataError) as exc:
        read_batch(path)
    assert str(exc.value) == (
        f"{path}: not a CIFAR python batch (global {os.system.__module__}.system is not allowed "
        f"in a CIFAR batch)"
    )


def test_directory_without_batches(tmp_path):
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="cifar", name="cifar10", path=str(tmp_path)))
    assert str(exc.value) == (
        f"data.path: {str(tmp_path)!r} has no CIFAR batches (batches.meta, data_batch_1, "
        f"data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch); give the "
        f"cifar-10-batches-py directory"
    )
