"""The imdb source on aclImdb trees and archives the tests write, and its checksummed
download from a local HTTP server."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
from tests.unit.sources.test_sources_download import _Handler, server  # noqa: F401 (fixture)

from dlforge.config.schema import DataConfig
from dlforge.data.sources import imdb, load_dataset
from dlforge.errors import DataError

REVIEWS = {
    "train/pos": ["A fine film.<br />Loved it.", "Great cast"],
    "train/neg": ["Dull and long"],
    "train/unsup": ["not labelled"],
    "test/pos": ["Wonderful"],
    "test/neg": ["Awful<br />plot", "Boring"],
}


def write_acl_imdb(parent: Path) -> Path:
    root = parent / "aclImdb"
    for folder, texts in REVIEWS.items():
        (root / folder).mkdir(parents=True)
        for i, text in enumerate(texts):
            (root / folder / f"{i}_7.txt").write_text(text, encoding="utf-8")
    return root


def write_archive(parent: Path, dest: Path) -> Path:
    root = write_acl_imdb(parent)
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(root, arcname="aclImdb")
    return dest


def test_reads_the_labelled_reviews_train_then_test(tmp_path):
    ds = load_dataset(DataConfig(source="imdb", path=str(write_acl_imdb(tmp_path))))
    assert ds.modality == "text" and ds.task.kind == "binary"
    assert ds.task.class_names == ("neg", "pos")
    assert ds.x.tolist() == ["Dull and long", "A fine film. Loved it.", "Great cast",
                             "Awful plot", "Boring", "Wonderful"]
    assert ds.y.tolist() == [0, 1, 1, 0, 0, 1]
    assert ds.split.tolist() == ["train"] * 3 + ["test"] * 3
    assert ds.provenance.source == "imdb"


def test_the_parent_of_acl_imdb_works_too(tmp_path):
    write_acl_imdb(tmp_path)
    assert len(load_dataset(DataConfig(source="imdb", path=str(tmp_path)))) == 6


def test_an_archive_path_is_extracted_into_the_cache_without_unsup(tmp_path):
    archive = write_archive(tmp_path / "src", tmp_path / "aclImdb_v1.tar.gz")
    cache = tmp_path / "cache"
    ds = load_dataset(DataConfig(source="imdb", path=str(archive), cache_dir=str(cache)))
    assert len(ds) == 6
    assert sorted(p.name for p in (cache / "imdb" / "aclImdb" / "train").iterdir()) == ["neg", "pos"]


def test_a_folder_without_the_layout_names_data_path(tmp_path):
    (tmp_path / "aclImdb" / "train" / "pos").mkdir(parents=True)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(source="imdb", path=str(tmp_path)))
    assert str(info.value) == (
        f"data.path: {str(tmp_path)!r} has no aclImdb layout (train/pos, train/neg, test/pos, "
        f"test/neg folders of .txt reviews); give the aclImdb directory or aclImdb_v1.tar.gz")


def test_an_empty_class_folder_and_a_non_utf8_review_are_data_errors(tmp_path):
    root = write_acl_imdb(tmp_path)
    for f in (root / "test" / "neg").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"test/neg: no \.txt reviews; an aclImdb class folder"):
        load_dataset(DataConfig(source="imdb", path=str(root)))
    (root / "test" / "neg" / "0_1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match=r"0_1\.txt: not UTF-8 text \(byte 0xe9 at offset 3\)$"):
        load_dataset(DataConfig(source="imdb", path=str(root)))


def test_downloads_verifies_extracts_and_then_reuses_the_cache(server, monkeypatch, tmp_path):  # noqa: F811
    base, www = server
    archive = write_archive(tmp_path / "src", www / "aclImdb_v1.tar.gz")
    monkeypatch.setattr(imdb, "SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    monkeypatch.setenv("DLFORGE_IMDB_URL", f"{base}/aclImdb_v1.tar.gz")
    cache = tmp_path / "cache"
    assert len(load_dataset(DataConfig(source="imdb", cache_dir=str(cache)))) == 6
    assert len(load_dataset(DataConfig(source="imdb", cache_dir=str(cache)))) == 6
    assert _Handler.requests == ["/aclImdb_v1.tar.gz"]


def test_a_download_with_the_wrong_checksum_leaves_nothing(server, monkeypatch, tmp_path):  # noqa: F811
    base, www = server
    write_archive(tmp_path / "src", www / "aclImdb_v1.tar.gz")
    monkeypatch.setenv("DLFORGE_IMDB_URL", f"{base}/aclImdb_v1.tar.gz")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=rf"^{base}/aclImdb_v1\.tar\.gz: checksum mismatch: "
                                        rf"expected sha256 {imdb.SHA256}, got [0-9a-f]{{64}}"):
        load_dataset(DataConfig(source="imdb", cache_dir=str(cache)))
    assert not (cache / "imdb" / "aclImdb").exists()
    assert list((cache / "imdb").glob("*.tar.gz")) == []
