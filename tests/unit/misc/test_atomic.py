from __future__ import annotations

import os
import stat

import pytest

from dlforge.atomic import atomic_dir, atomic_path, write_json, write_text


def test_written_files_and_dirs_get_the_umask_mode_not_private_temp_modes(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "report.html", "<html></html>")
        with atomic_dir(tmp_path / "bundle") as d:
            (d / "weights").write_bytes(b"w")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "bundle").stat().st_mode) == 0o755


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    write_json(tmp_path / "m.json", {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "m.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_atomic_dir_refuses_to_replace_and_cleans_up_on_failure(tmp_path):
    (tmp_path / "v1").mkdir()
    with pytest.raises(FileExistsError), atomic_dir(tmp_path / "v1"):
        pass
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "v2") as d:
        (d / "half").write_text("x")
        raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1"]


def test_remove_leftovers_deletes_only_the_temporaries_of_killed_writes(tmp_path):
    from dlforge.atomic import remove_leftovers

    (tmp_path / "checkpoints").mkdir()
    for name in ("checkpoints/last.pt", "checkpoints/.last.pt.k3j2.tmp", "notes.tmp", ".report.html.x.tmp"):
        (tmp_path / name).write_text("x")
    (tmp_path / ".bundle.a1.tmp").mkdir()
    (tmp_path / ".bundle.a1.tmp" / ".model.json.b2.tmp").write_text("half")
    removed = remove_leftovers(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in removed] == [
        ".bundle.a1.tmp", ".report.html.x.tmp", "checkpoints/.last.pt.k3j2.tmp"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "checkpoints", "checkpoints/last.pt", "notes.tmp"]
