"""fetch() and the IDX download path against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from dlforge.config.schema import DataConfig
from dlforge.data.sources import idx, load_dataset
from dlforge.data.sources.download import fetch
from dlforge.errors import DataError


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _Handler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www over HTTP on a free port; yield (base url, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    _Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train: int = 6, n_test: int = 4) -> dict[str, bytes]:
    """Write the four gzip IDX files; return the decompressed bytes by file name."""
    rng = np.random.default_rng(0)
    contents = {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(np.arange(n_test) % 10),
    }
    for name, data in contents.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(data))
    return contents


def test_fetch_downloads_and_verifies(server, tmp_path):
    base, root = server
    (root / "a.bin").write_bytes(b"hello")
    dest = tmp_path / "cache" / "a.bin"
    out = fetch(f"{base}/a.bin", dest, hashlib.sha256(b"hello").hexdigest(), progress=False)
    assert out == dest
    assert dest.read_bytes() == b"hello"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]  # no temp file left


def test_fetch_checksum_mismatch_leaves_no_file(server, tmp_path):
    base, root = server
    (root / "a.bin").write_bytes(b"hello")
    cache = tmp_path / "cache"
    actual = hashlib.sha256(b"hello").hexdigest()
    with pytest.raises(DataError) as exc:
        fetch(f"{base}/a.bin", cache / "a.bin", "0" * 64, progress=False)
    assert str(exc.value) == (
        f"{base}/a.bin: checksum mismatch: expected sha256 {'0' * 64}, got {actual}; "
        f"the download was discarded (retry, or set data.path to a verified local copy)"
    )
    assert list(cache.iterdir()) == []


def test_fetch_reuses_a_verified_copy_without_a_request(server, tmp_path):
    base, root = server
    (root / "a.bin").write_bytes(b"hello")
    dest = tmp_path / "cache" / "a.bin"
    fetch(f"{base}/a.bin", dest, hashlib.sha256(b"hello").hexdigest(), progress=False)
    fetch(f"{base}/a.bin", dest, hashlib.sha256(b"hello").hexdigest(), progress=False)
    assert _Handler.requests == ["/a.bin"]


def test_fetch_http_error_names_url_and_fix(server, tmp_path):
    base, _ = server
    with pytest.raises(DataError) as exc:
        fetch(f"{base}/missing.bin", tmp_path / "c" / "missing.bin", progress=False)
    assert str(exc.value) == (
        f"{base}/missing.bin: download failed (File not found); check the network, or set "
        f"data.path to a local copy"
    )
    assert list((tmp_path / "c").iterdir()) == []


def test_mnist_downloads_into_cache_and_verifies_decompressed_bytes(server, monkeypatch, tmp_path):
    base, root = server
    contents = write_idx_set(root)
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    monkeypatch.setitem(idx.CHECKSUMS, "mnist", sums)
    monkeypatch.setenv("DLFORGE_MNIST_URL", base + "/")
    cache = tmp_path / "cache"
    ds = load_dataset(DataConfig(source="idx", name="mnist", cache_dir=str(cache)))
    assert ds.x.shape == (10, 1, 28, 28)
    assert ds.y.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    assert ds.split.tolist() == ["train"] * 6 + ["test"] * 4
    assert ds.provenance.files == sums
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(f"{n}.gz" for n in contents)
    # A second load reads the cache: no new request.
    n_requests = len(_Handler.requests)
    load_dataset(DataConfig(source="idx", name="mnist", cache_dir=str(cache)))
    assert len(_Handler.requests) == n_requests == 4


def test_mnist_archive_is_checked_against_upstream_md5(server, monkeypatch, tmp_path):
    base, root = server
    write_idx_set(root)
    monkeypatch.setenv("DLFORGE_MNIST_URL", base)
    cache = tmp_path / "cache"
    served = hashlib.md5((root / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    with pytest.raises(DataError) as exc:  # the test's archive is not the official one
        load_dataset(DataConfig(source="idx", name="mnist", cache_dir=str(cache)))
    assert str(exc.value) == (
        f"{base}/train-images-idx3-ubyte.gz: checksum mismatch: expected md5 "
        f"f68b3c2dcbeaaa9fbdd348bbdeb94873 (the official archive), got {served}; the download "
        f"was discarded (a mirror set in $DLFORGE_MNIST_URL may serve recompressed files: set "
        f"data.path to a verified local copy)")
    assert list((cache / "mnist").iterdir()) == []
    official = {p.name[:-3]: hashlib.md5(p.read_bytes()).hexdigest() for p in root.glob("*.gz")}
    monkeypatch.setitem(idx.ARCHIVE_MD5, "mnist", official)
    ds = load_dataset(DataConfig(source="idx", name="mnist", cache_dir=str(cache)))
    assert ds.x.shape == (10, 1, 28, 28)


def test_idx_download_checksum_mismatch_leaves_no_file(server, monkeypatch, tmp_path):
    base, root = server
    contents = write_idx_set(root)
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    sums["train-images-idx3-ubyte"] = "f" * 64
    monkeypatch.setitem(idx.CHECKSUMS, "fashion_mnist", sums)
    monkeypatch.setenv("DLFORGE_FASHION_MNIST_URL", base)
    cache = tmp_path / "cache"
    actual = hashlib.sha256(contents["train-images-idx3-ubyte"]).hexdigest()
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(source="idx", name="fashion_mnist", cache_dir=str(cache)))
    assert str(exc.value) == (
        f"{base}/train-images-idx3-ubyte.gz: checksum mismatch: expected sha256 {'f' * 64} "
        f"(decompressed), got {actual}; the download was discarded (set data.path to a "
        f"verified local copy)"
    )
    assert list((cache / "fashion_mnist").iterdir()) == []


def test_cifar_archive_downloads_verifies_and_extracts(server, monkeypatch, tmp_path):
    import pickle
    import tarfile

    from dlforge.data.sources import cifar

    base, root = server
    batches = tmp_path / "b" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = {b"labels": [1], b"data": np.zeros((1, 3072), np.uint8)}
        (batches / name).write_bytes(pickle.dumps(data, protocol=2))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (batches / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(cifar.SPECS["cifar10"], "sha256", digest)
    monkeypatch.setenv("DLFORGE_CIFAR10_URL", f"{base}/cifar-10-python.tar.gz")
    cache = tmp_path / "cache"
    ds = load_dataset(DataConfig(source="cifar", name="cifar10", cache_dir=str(cache)))
    assert len(ds) == 6 and ds.split.tolist() == ["train"] * 5 + ["test"]
    assert sorted(p.name for p in (cache / "cifar10").iterdir()) == [
        "cifar-10-batches-py", "cifar-10-python.tar.gz"]
    load_dataset(DataConfig(source="cifar", name="cifar10", cache_dir=str(cache)))
    assert _Handler.requests == ["/cifar-10-python.tar.gz"]


def test_the_bar_shows_a_bracketed_file_name_verbatim(monkeypatch):
    from dlforge.data.sources.download import _Progress

    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    with _Progress("https://example.org/f[bold].gz", total=10, enabled=True) as progress:
        bar = progress._bar
        assert bar.columns[0].render(bar.tasks[0]).plain == "download f[bold].gz"
