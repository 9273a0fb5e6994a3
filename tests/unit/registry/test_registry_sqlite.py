"""SQLite specifics of the store: many processes on one file, corrupt files, URL handling."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dlforge.errors import ConfigError, StoreError
from dlforge.registry import Store
from dlforge.registry.engine import mask_url
from dlforge.registry.refs import parse_ref


def test_default_store_is_a_wal_sqlite_file_in_the_workspace(tmp_path):
    store = Store.open(tmp_path / "ws")
    assert store.url == f"sqlite:///{tmp_path / 'ws' / 'dlforge.db'}"
    assert store.artifacts_dir == tmp_path / "ws" / "artifacts"
    with store._engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 60000


def test_corrupt_store_file_is_a_one_line_store_error(tmp_path):
    db = tmp_path / "dlforge.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as info:
        Store.open(tmp_path)
    assert str(info.value) == (f"store: cannot open sqlite:///{db}: file is not a database; "
                               "move it away or pass --store-url")


def test_missing_directory_is_a_store_error_naming_the_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}"
    with pytest.raises(StoreError) as info:
        Store(url)
    assert str(info.value) == (f"store: cannot open {url}: unable to open database file; "
                               "check that its directory exists and is writable, or pass --store-url")


def test_unparseable_url_is_a_store_error():
    with pytest.raises(StoreError) as info:
        Store("not a url")
    assert str(info.value).startswith("store: cannot parse URL 'not a url': ")
    assert str(info.value).endswith("expected e.g. sqlite:///path/dlforge.db or "
                                    "postgresql+psycopg://user@host/dbname")


def test_passwords_are_masked():
    assert mask_url("postgresql://ann:s3cret@db:5432/dlforge") == "postgresql://ann:***@db:5432/dlforge"


def test_a_failed_move_leaves_no_version_and_keeps_the_bundle(tmp_path, monkeypatch):
    from dlforge.registry import artifacts

    store = Store.open(tmp_path / "ws")
    src = tmp_path / "bundle"
    src.mkdir()

    def boom(_src, _dest):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "move_into_place", boom)
    with pytest.raises(OSError, match="disk full"):
        store.register("digits", None, src, {})
    assert src.is_dir()
    assert store.list_models() == []


def test_a_failed_commit_moves_the_bundle_back(tmp_path, monkeypatch):
    from sqlalchemy.orm import Session

    store = Store.open(tmp_path / "ws")
    src = tmp_path / "bundle"
    src.mkdir()
    (src / "f").write_text("x")

    def fail_commit(self):
        raise RuntimeError("connection lost")

    monkeypatch.setattr(Session, "commit", fail_commit)
    monkeypatch.setattr("sqlalchemy.orm.SessionTransaction.commit", fail_commit)
    with pytest.raises(RuntimeError, match="connection lost"):
        store.register("digits", None, src, {})
    monkeypatch.undo()
    assert (src / "f").read_text() == "x"
    assert not (tmp_path / "ws" / "artifacts" / "models" / "digits" / "v1").exists()
    assert store.list_models() == []


def test_an_orphaned_bundle_dir_is_set_aside_not_overwritten(tmp_path):
    store = Store.open(tmp_path / "ws")
    orphan = tmp_path / "ws" / "artifacts" / "models" / "digits" / "v1"
    orphan.mkdir(parents=True)
    (orphan / "who").write_text("orphan")
    src = tmp_path / "bundle"
    src.mkdir()
    (src / "who").write_text("new")
    v = store.register("digits", None, src, {})
    assert (v.bundle_path / "who").read_text() == "new"
    aside = list((orphan.parent / ".orphans").iterdir())
    assert [(p.name[:3], (p / "who").read_text()) for p in aside] == [("v1-", "orphan")]


@pytest.mark.parametrize(("ref", "parsed"), [
    ("digits", ("digits", "latest")), ("digits@3", ("digits", 3)),
    ("digits@production", ("digits", "production")), ("fashion-mnist.v2@latest",
                                                       ("fashion-mnist.v2", "latest")),
])
def test_parse_ref(ref, parsed):
    assert parse_ref(ref) == parsed


def test_parse_ref_refuses_a_dangling_at():
    with pytest.raises(ConfigError) as info:
        parse_ref("digits@")
    assert str(info.value) == ("model reference: nothing after '@' in 'digits@'; use name, "
                               "name@3, name@production or name@latest")


def test_parse_ref_refuses_more_than_one_at(tmp_path, capsys):
    # `digits@1@2` was looked up as the alias '1@2': "Model 'digits' has no alias '1@2'"
    from dlforge.cli import main

    message = ("model reference: more than one '@' in 'digits@1@2'; use name, name@3, "
               "name@production or name@latest")
    with pytest.raises(ConfigError) as info:
        parse_ref("digits@1@2")
    assert str(info.value) == message
    assert main(["-w", str(tmp_path), "models", "show", "digits@1@2"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_a_moved_workspace_keeps_its_bundles(tmp_path):
    import shutil

    store = Store.open(tmp_path / "old")
    src = tmp_path / "bundle"
    src.mkdir()
    store.register("digits", None, src, {})
    store.close()
    shutil.move(tmp_path / "old", tmp_path / "new")
    v = Store.open(tmp_path / "new").resolve("digits")
    assert v.bundle_path == tmp_path / "new" / "artifacts" / "models" / "digits" / "v1"
    assert v.bundle_path.is_dir()


def test_numpy_and_non_finite_values_are_stored_as_plain_json(tmp_path):
    import numpy as np

    store = Store.open(tmp_path)
    run = store.create_run("r", {"lr": np.float32(0.5), "sizes": (np.int64(2), 3)}, None, "v", 0)
    store.finish_run(run.id, "completed", [{"loss": np.float64("inf")}], {"f1": np.float32(0.25)})
    got = store.get_run(run.id)
    assert (got.config, got.history, got.metrics) == (
        {"lr": 0.5, "sizes": [2, 3]}, [{"loss": None}], {"f1": 0.25})
    assert type(got.metrics["f1"]) is float


def test_a_store_lacking_a_column_is_refused_on_open_and_left_as_it_is(tmp_path, capsys):
    # a store of another dlforge version: `models list` worked, `models show` failed with
    # "no such column: model_versions.metrics; ... another process may hold it locked"
    import sqlite3

    from dlforge.cli import main

    Store.open(tmp_path).close()
    with sqlite3.connect(tmp_path / "dlforge.db") as db:
        db.execute("ALTER TABLE model_versions DROP COLUMN metrics")
        db.execute("INSERT INTO model_aliases VALUES ('m', 'prod', 1, '2026-01-01')")
    url = f"sqlite:///{tmp_path / 'dlforge.db'}"
    with pytest.raises(StoreError) as err:
        Store.open(tmp_path)
    assert str(err.value) == (f"store: {url} lacks the column(s) model_versions.metrics of this "
                              "dlforge's tables (made by another dlforge version?); open it with "
                              "the dlforge that made it, or pass --store-url for another store")
    assert main(["-w", str(tmp_path), "models", "list"]) == 1
    assert capsys.readouterr().err == f"error: {err.value}\n"
    with sqlite3.connect(tmp_path / "dlforge.db") as db:
        assert db.execute("SELECT name, alias, version FROM model_aliases").fetchall() == [("m", "prod", 1)]


def test_a_read_only_store_says_so_and_keeps_its_aliases(tmp_path, capsys):
    # was "...; check the database (another process may hold it locked) or pass --store-url"
    import sqlite3

    from dlforge.cli import main

    Store.open(tmp_path).close()
    with sqlite3.connect(tmp_path / "dlforge.db") as db:
        db.execute("INSERT INTO model_versions (name, version, bundle_path, metrics, created_at) "
                   "VALUES ('m', 1, 'b', '{}', '2026-01-01')")
        db.execute("INSERT INTO model_aliases VALUES ('m', 'prod', 1, '2026-01-01')")
    url = f"sqlite:///file:{tmp_path / 'dlforge.db'}?mode=ro&uri=true"
    assert main(["-w", str(tmp_path), "--store-url", url, "models", "unalias", "m", "prod"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: store: sqlite:///file%3A") and err.endswith(
        "dlforge.db?mode=ro&uri=true: attempt to write a readonly database; give this user write "
        "access to the database (and, for SQLite, its directory) or pass --store-url\n")
    with sqlite3.connect(tmp_path / "dlforge.db") as db:
        assert db.execute("SELECT name, alias, version FROM model_aliases").fetchall() == [("m", "prod", 1)]


def _store_with_an_alias(ws):
    store = Store.open(ws)
    (ws / "bundle").mkdir()
    store.register("m", None, ws / "bundle", {})
    store.set_alias("m", "prod", 1)
    store.close()


def test_opening_a_current_store_takes_no_write_lock(tmp_path, monkeypatch):
    # every open took BEGIN IMMEDIATE: `models list` behind a stuck writer waited the whole
    # busy timeout (60 s) and then failed with "database is locked"
    import sqlite3

    from dlforge.registry import engine

    _store_with_an_alias(tmp_path)
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_S", 0.2)
    writer = sqlite3.connect(tmp_path / "dlforge.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        store = Store.open(tmp_path)
        assert [(m.name, m.aliases) for m in store.list_models()] == [("m", {"prod": 1})]
        with pytest.raises(StoreError) as info:  # writers still wait for the lock, then say so
            store.remove_alias("m", "prod")
        assert str(info.value) == (f"store: sqlite:///{tmp_path / 'dlforge.db'}: database is "
                                   "locked; check the database (another process may hold it "
                                   "locked) or pass --store-url")
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_store_on_a_read_only_file_system_reads_and_refuses_writes(tmp_path, monkeypatch):
    # a workspace on a read-only mount: SQLite cannot create the WAL index beside the file,
    # and every command, `predict` included, failed with "unable to open database file"
    import os
    from types import SimpleNamespace

    _store_with_an_alias(tmp_path)
    real = os.statvfs
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(
        f_flag=real(p).f_flag | (os.ST_RDONLY if str(p) == str(tmp_path) else 0)))
    store = Store.open(tmp_path)
    assert store._engine.url.query == {"mode": "ro", "immutable": "1", "uri": "true"}
    assert store.resolve("m@prod").version == 1
    with pytest.raises(StoreError) as info:
        store.remove_alias("m", "prod")
    assert str(info.value) == (f"store: sqlite:///{tmp_path / 'dlforge.db'}: attempt to write a "
                               "readonly database; give this user write access to the database "
                               "(and, for SQLite, its directory) or pass --store-url")
