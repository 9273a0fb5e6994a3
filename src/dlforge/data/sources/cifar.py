"""CIFAR-10 and CIFAR-100 from the upstream "python version" batch files.

The batches are pickled dicts (the upstream format). They are read with a restricted Unpickler
that can only rebuild numpy arrays, so a tampered file cannot run code.

Where the batches are looked for, in order: `data.path` (the batch directory, its parent, or the
downloaded .tar.gz); the cache (`<cache>/<name>`); else the canonical archive is downloaded into
the cache, verified (sha256) and extracted with tarfile's "data" filter.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.data.sources.common import existing_path, extract_folder, sha256_bytes, split_names
from dlforge.data.sources.download import fetch
from dlforge.data.sources.infer import label_task
from dlforge.errors import DataError
from dlforge.workspace import cache_dir

SPECS: dict[str, dict[str, Any]] = {
    "cifar10": {
        "dir": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": ("batches.meta", "label_names"),
        "labels": "labels",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "sha256": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        "env": "DLFORGE_CIFAR10_URL",
    },
    "cifar100": {
        "dir": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": ("meta", "fine_label_names"),
        "labels": "fine_labels",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "sha256": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        "env": "DLFORGE_CIFAR100_URL",
    },
}
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's array rebuilder, any version


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except what rebuilding numpy arrays needs."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _RECONSTRUCT
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "_codecs" and name == "encode":  # protocol-2 pickles store bytes this way
            return _latin1_encode
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed in a CIFAR batch")
    return text.encode("latin1")


def read_batch(path: Path) -> dict[str, Any]:
    """Unpickle one batch file safely; keys are returned as str.

    Raises:
        DataError: the file is not a CIFAR batch.
    """
    try:
        with open(path, "rb") as fh:
            obj = _ArrayUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a CIFAR python batch ({exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: not a CIFAR python batch (a {type(obj).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def load(cfg: DataConfig) -> Dataset:
    """Load `data.name` (cifar10 | cifar100): images (N, 3, 32, 32) uint8, test rows marked."""
    name = str(cfg.name)
    spec = SPECS[name]
    root = locate(cfg)
    files: dict[str, str] = {}
    xs, ys, counts = [], [], {}
    for split in ("train", "test"):
        start = sum(len(y) for y in ys)
        for fname in spec[split]:
            x, y = _read_images(root / fname, spec["labels"], files)
            xs.append(x)
            ys.append(y)
        counts[split] = sum(len(y) for y in ys) - start
    meta_file, meta_key = spec["meta"]
    meta = _read_recorded(root / meta_file, files)
    if meta_key not in meta:
        raise DataError(f"{root / meta_file}: no {meta_key!r} entry; keys are {sorted(meta)}")
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[meta_key]]
    y, task = label_task(np.concatenate(ys), cfg, where=f"the labels of {name}",
                         class_names=class_names)
    return Dataset(
        x=np.concatenate(xs), y=y, task=task, modality="image",
        provenance=Provenance(source=f"cifar:{name}", files=files, details={"name": name}),
        split=split_names(counts),
    )


def _read_recorded(path: Path, files: dict[str, str]) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path.parent}: missing CIFAR batch file {path.name}")
    files[path.name] = sha256_bytes(path.read_bytes())
    return read_batch(path)


def _read_images(path: Path, label_key: str, files: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_recorded(path, files)
    if "data" not in batch or label_key not in batch:
        raise DataError(f"{path}: needs 'data' and {label_key!r} entries; keys are {sorted(batch)}")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(
            f"{path}: data has shape {data.shape} and {len(labels)} labels; expected (N, 3072) "
            f"and N labels"
        )
    return data.reshape(-1, 3, 32, 32), labels


def locate(cfg: DataConfig) -> Path:
    """The directory holding the batch files, extracting or downloading them when needed."""
    name = str(cfg.name)
    spec = SPECS[name]
    if cfg.path:
        path = existing_path(cfg, kind=f"{spec['dir']} directory or its .tar.gz")
        if path.is_file():
            return extract_folder(path, cache_dir(cfg.cache_dir) / name, spec["dir"], "CIFAR")
        for candidate in (path, path / spec["dir"]):
            if (candidate / spec["meta"][0]).is_file():
                return candidate
        raise DataError(
            f"data.path: {cfg.path!r} has no CIFAR batches ({spec['meta'][0]}, "
            f"{', '.join(spec['train'] + spec['test'])}); give the {spec['dir']} directory"
        )
    cached = cache_dir(cfg.cache_dir) / name
    if (cached / spec["dir"] / spec["meta"][0]).is_file():
        return cached / spec["dir"]
    url = os.environ.get(spec["env"]) or spec["url"]
    archive = fetch(url, cached / url.rsplit("/", 1)[-1], spec["sha256"])
    return extract_folder(archive, cached, spec["dir"], "CIFAR")
