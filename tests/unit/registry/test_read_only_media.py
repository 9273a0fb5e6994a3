"""How a SQLite store on a read-only file system is opened (engine._on_read_only_media)."""

from __future__ import annotations

import os
import sqlite3
from types import SimpleNamespace

from sqlalchemy import create_engine, make_url, text

from dlforge.registry.engine import _on_read_only_media


def _read_only_under(monkeypatch, folder):
    real = os.statvfs
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(
        f_flag=real(p).f_flag | (os.ST_RDONLY if str(p) == str(folder) else 0)))


def _writer_with_unsaved_wal(db):
    # a writer elsewhere (a trainer on the same volume) whose last change is still in db-wal
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE aliases (name TEXT, version INTEGER)")
    conn.execute("INSERT INTO aliases VALUES ('prod', 1)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("UPDATE aliases SET version = 2")
    return conn


def test_a_store_with_its_wal_beside_it_is_opened_read_only_not_immutable(tmp_path, monkeypatch):
    # immutable=1 ignores db-wal: a serve container on a ':ro' volume read prod -> 1 after the
    # writer had moved it to 2
    db = tmp_path / "dlforge.db"
    writer = _writer_with_unsaved_wal(db)
    try:
        assert (tmp_path / "dlforge.db-wal").exists() and (tmp_path / "dlforge.db-shm").exists()
        _read_only_under(monkeypatch, tmp_path)
        url = _on_read_only_media(make_url(f"sqlite:///{db}"))
        assert url.database == f"file:{db}"
        assert dict(url.query) == {"mode": "ro", "uri": "true"}
        with create_engine(url).connect() as conn:
            assert conn.execute(text("SELECT version FROM aliases")).scalar() == 2
    finally:
        writer.close()


def test_a_store_with_only_a_wal_or_only_a_shm_is_not_immutable(tmp_path, monkeypatch):
    db = tmp_path / "dlforge.db"
    sqlite3.connect(db).close()
    _read_only_under(monkeypatch, tmp_path)
    for suffix in ("-wal", "-shm"):
        side = tmp_path / f"dlforge.db{suffix}"
        side.write_bytes(b"")
        assert dict(_on_read_only_media(make_url(f"sqlite:///{db}")).query) == {
            "mode": "ro", "uri": "true"}
        side.unlink()
    assert dict(_on_read_only_media(make_url(f"sqlite:///{db}")).query) == {
        "mode": "ro", "immutable": "1", "uri": "true"}


def test_a_symlinked_store_is_judged_by_the_folder_of_its_real_file(tmp_path, monkeypatch):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ws").mkdir()
    real = tmp_path / "ro" / "dlforge.db"
    sqlite3.connect(real).close()
    link = tmp_path / "ws" / "dlforge.db"
    link.symlink_to(real)
    (tmp_path / "ws" / "dlforge.db-wal").write_bytes(b"")  # beside the link, not the real file
    _read_only_under(monkeypatch, tmp_path / "ro")
    url = _on_read_only_media(make_url(f"sqlite:///{link}"))
    assert url.database == f"file:{real}"
    assert dict(url.query) == {"mode": "ro", "immutable": "1", "uri": "true"}
    (tmp_path / "ro" / "dlforge.db-shm").write_bytes(b"")
    assert dict(_on_read_only_media(make_url(f"sqlite:///{link}")).query) == {
        "mode": "ro", "uri": "true"}


def test_a_writable_folder_keeps_the_plain_url(tmp_path):
    db = tmp_path / "dlforge.db"
    sqlite3.connect(db).close()
    url = make_url(f"sqlite:///{db}")
    assert _on_read_only_media(url) is url
