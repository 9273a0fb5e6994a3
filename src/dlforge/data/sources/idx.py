"""MNIST and Fashion-MNIST from IDX files (gzip-compressed or raw).

Where the files are looked for, in order: `data.path`; Debian's `/usr/share/datasets/
fashion-mnist` (fashion_mnist only; skipped when $DLFORGE_NO_SYSTEM_DATA=1); the cache
(`<cache>/<name>`); else they are downloaded into the cache.

Checksums are of the DECOMPRESSED IDX bytes, not of the .gz files: Debian recompressed the
archives, so .gz checksums differ between copies while the decompressed content is the official
bytes everywhere. `CHECKSUMS` is module-level so tests can swap it. Where no decompressed
checksum is known (MNIST), the downloaded archive is checked against the MD5 that upstream
publishes for it (`ARCHIVE_MD5`, the values torchvision verifies), then its IDX header parsed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.data.sources.common import existing_path, sha256_bytes, split_names
from dlforge.data.sources.download import fetch
from dlforge.data.sources.infer import label_task
from dlforge.errors import DataError
from dlforge.workspace import cache_dir

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SYSTEM_DIRS = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
URL_ENV = {"mnist": "DLFORGE_MNIST_URL", "fashion_mnist": "DLFORGE_FASHION_MNIST_URL"}
# sha256 of the decompressed files; Fashion-MNIST's computed from Debian's copy of the official
# release. MNIST's decompressed checksums are not known here with certainty, so they are None.
CHECKSUMS: dict[str, dict[str, str | None]] = {
    "fashion_mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    "mnist": {name: None for pair in FILES.values() for name in pair},
}
# MD5 of the official .gz archives, used when CHECKSUMS has no decompressed value.
ARCHIVE_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    },
}
CLASS_NAMES = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
}
# IDX type codes (the third magic byte) -> big-endian numpy dtypes.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, name: str = "<idx>") -> np.ndarray:
    """Parse IDX bytes: magic (0, 0, type code, ndim), ndim big-endian uint32 dims, then data.

    Raises:
        DataError: not IDX, unknown type code, or the data length does not match the dims.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{name}: not an IDX file (magic bytes {data[:4].hex() or 'missing'})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: IDX header truncated ({len(data)} bytes for {ndim} dims)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{name}: IDX data has {len(data) - header} bytes, dims {dims} need {expected}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def load(cfg: DataConfig) -> Dataset:
    """Load `data.name` (mnist | fashion_mnist): train then test, test rows marked split="test"."""
    name = str(cfg.name)
    root = locate(cfg)
    files: dict[str, str] = {}
    xs, ys, counts = [], [], {}
    for split, (images_name, labels_name) in FILES.items():
        images = _read(root, images_name, files)
        labels = _read(root, labels_name, files)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{root}: {images_name} has shape {images.shape} and {labels_name} {labels.shape}; "
                f"expected (N, H, W) images and N labels"
            )
        xs.append(images.astype(np.uint8)[:, None, :, :])
        ys.append(labels)
        counts[split] = len(labels)
    y, task = label_task(np.concatenate(ys), cfg, where=f"the labels of {name}",
                         class_names=CLASS_NAMES[name])
    return Dataset(
        x=np.concatenate(xs), y=y, task=task, modality="image",
        provenance=Provenance(source=f"idx:{name}", files=files, details={"name": name}),
        split=split_names(counts),
    )


def locate(cfg: DataConfig) -> Path:
    """The directory holding the four IDX files, downloading them if no copy is found."""
    name = str(cfg.name)
    if cfg.path:
        root = existing_path(cfg, kind="directory with the IDX files")
        missing = [f for f in _all_files() if _find(root, f) is None]
        if missing:
            raise DataError(
                f"data.path: {cfg.path!r} has no {', '.join(missing)} (raw or .gz); expected "
                f"{', '.join(_all_files())}"
            )
        return root
    system = SYSTEM_DIRS.get(name)
    if system and os.environ.get("DLFORGE_NO_SYSTEM_DATA") != "1" and _complete(system):
        return system
    cached = cache_dir(cfg.cache_dir) / name
    if _complete(cached):
        return cached
    download(name, cached)
    return cached


def download(name: str, dest: Path, *, progress: bool = True) -> None:
    """Fetch the four .gz files into `dest`, verifying the decompressed bytes when known.

    Raises:
        DataError: a download failed, or its content is not the official one (the file is
            removed so the next attempt downloads again).
    """
    base = os.environ.get(URL_ENV[name]) or URLS[name]
    for fname in _all_files():
        url = base.rstrip("/") + f"/{fname}.gz"
        path = fetch(url, dest / f"{fname}.gz", progress=progress)
        expected = CHECKSUMS[name].get(fname)
        if expected is None:
            _check_archive_md5(path, url, ARCHIVE_MD5.get(name, {}).get(fname), URL_ENV[name])
        try:
            content = gzip.decompress(path.read_bytes())
        except (OSError, EOFError) as exc:
            path.unlink(missing_ok=True)
            raise DataError(f"{url}: not a gzip file ({exc}); the download was discarded") from None
        actual = sha256_bytes(content)
        if expected is not None and actual != expected:
            path.unlink(missing_ok=True)
            raise DataError(
                f"{url}: checksum mismatch: expected sha256 {expected} (decompressed), got "
                f"{actual}; the download was discarded (set data.path to a verified local copy)"
            )
        parse_idx(content, url)


def _check_archive_md5(path: Path, url: str, expected: str | None, url_env: str) -> None:
    """Compare a downloaded archive with upstream's published MD5; discard it on a mismatch."""
    if expected is None:
        return
    actual = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    if actual != expected:
        path.unlink(missing_ok=True)
        raise DataError(f"{url}: checksum mismatch: expected md5 {expected} (the official archive), "
                        f"got {actual}; the download was discarded (a mirror set in ${url_env} "
                        f"may serve recompressed files: set data.path to a verified local copy)")


def _all_files() -> list[str]:
    return [f for pair in FILES.values() for f in pair]


def _find(root: Path, fname: str) -> Path | None:
    for candidate in (root / fname, root / f"{fname}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _complete(root: Path) -> bool:
    return root.is_dir() and all(_find(root, f) is not None for f in _all_files())


def _read(root: Path, fname: str, files: dict[str, str]) -> np.ndarray:
    """Parse one IDX file (raw or .gz) and record the sha256 of its decompressed bytes."""
    path = _find(root, fname)
    assert path is not None  # locate() checked every file is there
    raw = path.read_bytes()
    try:
        data = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    files[fname] = sha256_bytes(data)
    return parse_idx(data, str(path))
