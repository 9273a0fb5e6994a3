"""The IMDB movie-review sentiment set (Maas et al., 2011: 25,000 train and 25,000 test
reviews, half positive) from its `aclImdb` layout.

Layout: `aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt`, one UTF-8 review per file
(`train/unsup`, the unlabelled reviews, is not read). Where it is looked for, in order:
`data.path` (the `aclImdb` directory, its parent, or the downloaded `aclImdb_v1.tar.gz`,
extracted into the cache); the cache (`<cache>/imdb`); else the official archive is
downloaded into the cache, verified (sha256) and extracted with tarfile's "data" filter
(labelled reviews only). `$DLFORGE_IMDB_URL` replaces the download URL (a mirror).

Texts: HTML line breaks (`<br />`) become spaces. Classes: `neg`, `pos` (binary, positive
`pos` unless `data.positive_class` says otherwise); the test files are marked `split="test"`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlforge.config.schema import DataConfig
from dlforge.data.dataset import Dataset, Provenance
from dlforge.data.sources.common import existing_path, extract_folder, sha256_bytes, split_names
from dlforge.data.sources.download import fetch
from dlforge.data.sources.infer import label_task
from dlforge.errors import DataError
from dlforge.workspace import cache_dir

DIRNAME = "aclImdb"
URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
URL_ENV = "DLFORGE_IMDB_URL"
CLASSES = ("neg", "pos")
SPLITS = ("train", "test")


def load(cfg: DataConfig) -> Dataset:
    """Load the labelled reviews: train then test, test rows marked split="test".

    Raises:
        DataError: no aclImdb layout at `data.path`, a class folder without reviews, a review
            that is not UTF-8, or a failed or mismatching download.

    Example:
        >>> ds = load(DataConfig(source="imdb", path="aclImdb"))  # doctest: +SKIP
        >>> ds.task.class_names, len(ds)  # doctest: +SKIP
        (('neg', 'pos'), 50000)
    """
    root = locate(cfg)
    texts: list[str] = []
    labels: list[int] = []
    counts: dict[str, int] = {}
    digest = {}
    for split in SPLITS:
        start = len(texts)
        for label, name in enumerate(CLASSES):
            found = _read_folder(root / split / name)
            digest[f"{split}/{name}"] = sha256_bytes("\n".join(found).encode())
            texts += found
            labels += [label] * len(found)
        counts[split] = len(texts) - start
    y, task = label_task(np.asarray(labels, dtype=np.int64), cfg, where="the labels of imdb",
                         class_names=CLASSES)
    return Dataset(
        x=np.asarray(texts, dtype=object), y=y, task=task, modality="text",
        provenance=Provenance(source="imdb", files=digest, details={"root": str(root)}),
        split=split_names(counts),
    )


def locate(cfg: DataConfig) -> Path:
    """The `aclImdb` directory, extracted or downloaded when needed."""
    cached = cache_dir(cfg.cache_dir) / "imdb"
    if cfg.path:
        path = existing_path(cfg, kind="aclImdb directory or aclImdb_v1.tar.gz")
        if path.is_file():
            return extract_folder(path, cached, DIRNAME, "aclImdb", keep=_labelled)
        for candidate in (path, path / DIRNAME):
            if _complete(candidate):
                return candidate
        raise DataError(f"data.path: {cfg.path!r} has no aclImdb layout (train/pos, train/neg, "
                        f"test/pos, test/neg folders of .txt reviews); give the aclImdb directory "
                        f"or aclImdb_v1.tar.gz")
    if _complete(cached / DIRNAME):
        return cached / DIRNAME
    url = os.environ.get(URL_ENV) or URL
    archive = fetch(url, cached / url.rsplit("/", 1)[-1], SHA256)
    return extract_folder(archive, cached, DIRNAME, "aclImdb", keep=_labelled)


def _labelled(rel: str) -> bool:
    """Archive paths below aclImdb/ worth extracting: the labelled reviews, not `unsup`."""
    parts = rel.split("/")
    return parts[0] in SPLITS and (len(parts) == 1 or parts[1] in CLASSES)


def _complete(root: Path) -> bool:
    return all((root / split / name).is_dir() for split in SPLITS for name in CLASSES)


def _read_folder(folder: Path) -> list[str]:
    """The reviews of one class folder, in file-name order, line breaks as spaces."""
    paths = sorted(folder.glob("*.txt"))
    if not paths:
        raise DataError(f"{folder}: no .txt reviews; an aclImdb class folder holds one review "
                        f"per file")
    texts = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                            f"offset {exc.start})") from None
        texts.append(text.replace("<br />", " ").strip())
    return texts
