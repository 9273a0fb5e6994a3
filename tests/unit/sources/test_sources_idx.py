"""IDX parsing and the mnist / fashion_mnist loader on tiny generated files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from dlforge.config.schema import DataConfig
from dlforge.data.sources import load_dataset
from dlforge.data.sources.idx import parse_idx
from dlforge.errors import DataError


def idx_bytes(arr: np.ndarray, code: int = 0x08, dtype: str = ">u1") -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(dtype).tobytes()


def write_set(folder, *, gz: bool, train_labels=(0, 1, 2), test_labels=(9, 5)):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": np.arange(len(train_labels) * 4).reshape(-1, 2, 2),
        "train-labels-idx1-ubyte": np.array(train_labels),
        "t10k-images-idx3-ubyte": np.full((len(test_labels), 2, 2), 200),
        "t10k-labels-idx1-ubyte": np.array(test_labels),
    }
    for name, arr in arrays.items():
        data = idx_bytes(arr)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def test_parse_idx_reads_header_and_big_endian_types():
    arr = np.array([[1, -2], [300, 4]])
    out = parse_idx(idx_bytes(arr, code=0x0B, dtype=">i2"))
    assert out.dtype == np.int16 and out.tolist() == [[1, -2], [300, 4]]
    floats = parse_idx(idx_bytes(np.array([0.5, 2.0]), code=0x0D, dtype=">f4"))
    assert floats.dtype == np.float32 and floats.tolist() == [0.5, 2.0]


def test_parse_idx_rejects_bad_magic_and_length():
    with pytest.raises(DataError, match=r"^x.bin: not an IDX file \(magic bytes 1f8b0800\)$"):
        parse_idx(b"\x1f\x8b\x08\x00rest", "x.bin")
    with pytest.raises(DataError, match=r"^y: IDX data has 3 bytes, dims \(2, 2\) need 4$"):
        parse_idx(idx_bytes(np.zeros((2, 2)))[:-1], "y")


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_path_keeps_label_order_and_marks_test(tmp_path, gz):
    root = write_set(tmp_path / "fm", gz=gz)
    ds = load_dataset(DataConfig(source="idx", name="fashion_mnist", path=str(root)))
    assert ds.x.shape == (5, 1, 2, 2) and ds.x.dtype == np.uint8
    assert ds.x[1, 0].tolist() == [[4, 5], [6, 7]]
    assert ds.y.tolist() == [0, 1, 2, 9, 5]
    assert ds.split.tolist() == ["train", "train", "train", "test", "test"]
    assert ds.task.kind == "multiclass"
    assert ds.task.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert ds.provenance.source == "idx:fashion_mnist"
    assert sorted(ds.provenance.files) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                           "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]


def test_mnist_class_names_are_digits(tmp_path):
    ds = load_dataset(DataConfig(source="idx", name="mnist", path=str(write_set(tmp_path / "m", gz=True))))
    assert ds.task.class_names == tuple("0123456789")


def test_found_in_cache_without_download(tmp_path):
    cache = tmp_path / "cache"
    write_set(cache / "mnist", gz=True)
    ds = load_dataset(DataConfig(source="idx", name="mnist", cache_dir=str(cache)))
    assert len(ds) == 5


def test_missing_path_names_data_path(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="idx", name="mnist", path=missing))
    assert str(exc.value) == (
        f"data.path: {missing!r} does not exist; give an existing directory with the IDX files"
    )


def test_incomplete_directory_lists_missing_files(tmp_path):
    root = write_set(tmp_path / "m", gz=True)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="idx", name="mnist", path=str(root)))
    assert str(exc.value) == (
        f"data.path: {str(root)!r} has no t10k-labels-idx1-ubyte (raw or .gz); expected "
        f"train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        f"t10k-labels-idx1-ubyte"
    )


def test_label_out_of_range_is_a_data_error(tmp_path):
    root = write_set(tmp_path / "m", gz=False, test_labels=(3, 12))
    with pytest.raises(DataError, match=r"^the labels of mnist: label 12 is out of range; "
                                        r"the source has 10 classes \(0\.\.9\)$"):
        load_dataset(DataConfig(source="idx", name="mnist", path=str(root)))


def test_task_binary_contradicting_ten_classes(tmp_path):
    root = write_set(tmp_path / "m", gz=False)
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="idx", name="mnist", path=str(root), task="binary"))
    assert str(exc.value) == (
        "data.task: 'binary' needs exactly 2 classes; found 10 in the labels of mnist: "
        "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 (remove data.task, or use data.binary_from)"
    )


def test_system_dir_is_used_for_fashion_mnist_unless_disabled(tmp_path, monkeypatch):
    from dlforge.data.sources import idx

    system = write_set(tmp_path / "system", gz=True, train_labels=(1, 1, 1))
    cache = write_set(tmp_path / "cache" / "fashion_mnist", gz=True, train_labels=(2, 2, 2))
    monkeypatch.setitem(idx.SYSTEM_DIRS, "fashion_mnist", system)
    cfg = DataConfig(source="idx", name="fashion_mnist", cache_dir=str(tmp_path / "cache"))
    assert load_dataset(cfg).y[:3].tolist() == [2, 2, 2]  # DLFORGE_NO_SYSTEM_DATA=1 (conftest)
    monkeypatch.delenv("DLFORGE_NO_SYSTEM_DATA")
    assert load_dataset(cfg).y[:3].tolist() == [1, 1, 1]
    assert cache.exists()
