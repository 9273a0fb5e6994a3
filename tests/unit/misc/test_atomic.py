from __future__ import annotations

import ctypes
import errno
import os
import stat

import pytest

from dlforge.atomic import atomic_dir, atomic_path, staged_dir, write_json, write_text


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


def test_two_numbered_writers_started_together_both_keep_their_output(tmp_path):
    """Both chose 'review' before writing; the second failed with FileExistsError at the end."""
    (tmp_path / "review-2").mkdir()  # an empty folder is skipped, not replaced by the rename
    with staged_dir(tmp_path / "review", numbered=True) as first, \
            staged_dir(tmp_path / "review", numbered=True) as second:
        (first.tmp / "who").write_text("first")
        (second.tmp / "who").write_text("second")
        assert first.path == second.path == tmp_path / "review"
    assert (second.path, first.path) == (tmp_path / "review", tmp_path / "review-3")  # second finished first
    assert [(p.name, sorted(f.read_text() for f in p.iterdir())) for p in sorted(tmp_path.iterdir())] == [
        ("review", ["second"]), ("review-2", []), ("review-3", ["first"])]


def test_a_named_target_taken_while_writing_is_file_exists_and_leaves_no_temp(tmp_path):
    with pytest.raises(FileExistsError, match="review already exists"), \
            staged_dir(tmp_path / "review") as staged:
        (staged.tmp / "a").write_text("mine")
        (tmp_path / "review").mkdir()
        (tmp_path / "review" / "b").write_text("theirs")  # rename would fail with ENOTEMPTY
    assert [p.name for p in tmp_path.iterdir()] == ["review"]
    assert [p.name for p in (tmp_path / "review").iterdir()] == ["b"]


def test_a_named_target_taken_while_writing_keeps_the_work_beside_it_when_asked(tmp_path):
    """Without `keep` the work is deleted (above): a review's training was lost that way."""
    from dlforge.atomic import TargetTaken

    (tmp_path / "review-2").mkdir()  # taken too (empty), so the work goes to review-3
    with pytest.raises(TargetTaken) as info, staged_dir(tmp_path / "review", keep=True) as staged:
        (staged.tmp / "a").write_text("mine")
        (tmp_path / "review").mkdir()
        (tmp_path / "review" / "b").write_text("theirs")
    assert (info.value.target, info.value.kept) == (tmp_path / "review", tmp_path / "review-3")
    assert isinstance(info.value, FileExistsError)
    assert str(info.value) == (f"{tmp_path / 'review'} was created by another process while "
                               f"this one worked; it is left as it is, and the files written are "
                               f"in {tmp_path / 'review-3'}")
    assert [(p.name, sorted(f.read_text() for f in p.iterdir())) for p in sorted(tmp_path.iterdir())] == [
        ("review", ["theirs"]), ("review-2", []), ("review-3", ["mine"])]


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


@pytest.fixture(params=["renameat2", "check then rename"])
def rename_kind(request, monkeypatch):
    """Both ways `rename_new` works: RENAME_NOREPLACE, and the fallback without it."""
    from dlforge import atomic

    if request.param == "renameat2" and atomic._renameat2() is None:
        pytest.skip("no renameat2 in this C library")
    if request.param != "renameat2":
        monkeypatch.setattr(atomic, "_renameat2", lambda: None)
    return request.param


def test_a_dangling_symlink_target_is_taken_not_an_internal_error(tmp_path, rename_kind):
    """rename() onto it failed with ENOTDIR: an internal error, and the work was deleted."""
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    with staged_dir(tmp_path / "out", numbered=True) as staged:
        (staged.tmp / "a").write_text("mine")
    assert staged.path == tmp_path / "out-2"
    assert (tmp_path / "out").is_symlink() and (tmp_path / "out-2" / "a").read_text() == "mine"
    with pytest.raises(FileExistsError, match="out already exists"), staged_dir(tmp_path / "out"):
        pytest.fail("the block ran for a target that exists")


def test_rename_new_never_replaces_an_empty_folder_made_after_any_check(tmp_path, monkeypatch):
    """An empty folder made between exists() and rename() was replaced without a word; with
    RENAME_NOREPLACE the kernel refuses it (without renameat2 that gap remains)."""
    from dlforge import atomic

    if atomic._renameat2() is None:
        pytest.skip("no renameat2 in this C library")
    (tmp_path / "mine").mkdir()
    (tmp_path / "theirs").mkdir()
    monkeypatch.setattr(atomic.os.path, "lexists", lambda path: pytest.fail("checked"))
    assert atomic.rename_new(tmp_path / "mine", tmp_path / "theirs") is False
    assert atomic.rename_new(tmp_path / "mine", tmp_path / "free") is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["free", "theirs"]


def test_without_renameat2_a_symlink_made_after_the_check_is_taken_not_an_error(tmp_path,
                                                                               monkeypatch):
    """rename() onto a non-directory fails with ENOTDIR, which was an internal error."""
    from dlforge import atomic

    monkeypatch.setattr(atomic, "_renameat2", lambda: None)
    real_lexists, real_rename = atomic.os.path.lexists, atomic.os.rename
    checks = iter([False])  # the up-front check sees nothing; the link is made after it
    monkeypatch.setattr(atomic.os.path, "lexists",
                        lambda path: next(checks) if checks.__length_hint__() else real_lexists(path))
    renamed = []
    monkeypatch.setattr(atomic.os, "rename", lambda src, dst: (renamed.append(os.path.basename(dst)),
                                                               real_rename(src, dst)))
    (tmp_path / "mine").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    assert atomic.rename_new(tmp_path / "mine", tmp_path / "link") is False
    assert renamed == ["link"]  # the rename was tried and refused, not skipped by the check
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "mine"]


@pytest.mark.parametrize("code", [errno.ENOENT, errno.EACCES], ids=errno.errorcode.get)
def test_a_real_renameat2_error_is_raised_even_when_the_name_is_taken(tmp_path, monkeypatch, code):
    """A missing source or no permission was reported as "taken" when something was at the
    destination: callers then said another process had made the folder."""
    from dlforge import atomic

    def failing(*args):
        ctypes.set_errno(code)
        return -1

    monkeypatch.setattr(atomic, "_renameat2", lambda: failing)
    (tmp_path / "theirs").mkdir()
    with pytest.raises(OSError) as info:
        atomic.rename_new(tmp_path / "mine", tmp_path / "theirs")
    assert (info.value.errno, info.value.filename, info.value.filename2) == (
        code, str(tmp_path / "mine"), str(tmp_path / "theirs"))


def test_a_parent_that_is_not_a_directory_is_an_error_not_a_taken_name(tmp_path, rename_kind,
                                                                       monkeypatch):
    """ENOTDIR was read as "taken": rename_new said False, and `_publish(numbered=True)` tried
    out-2, out-3, ... for ever."""
    from dlforge import atomic

    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError) as info:
        atomic.rename_new(tmp_path / "f" / "tmp", tmp_path / "free")
    assert (info.value.filename, info.value.filename2) == (
        str(tmp_path / "f" / "tmp"), str(tmp_path / "free"))
    tried = []
    real = atomic.rename_new

    def counting(src, dst):
        tried.append(dst.name)
        if len(tried) > 3:
            pytest.fail(f"still looking for a free name after {tried}")
        return real(src, dst)

    monkeypatch.setattr(atomic, "rename_new", counting)
    with pytest.raises(NotADirectoryError):
        atomic._publish(tmp_path / "f" / "tmp", tmp_path / "out", numbered=True)
    assert tried == ["out"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM],
                         ids=errno.errorcode.get)
def test_a_renameat2_that_fails_falls_back_to_check_then_rename(tmp_path, monkeypatch, code):
    """Only ENOSYS and EINVAL fell back: a file system without the flag (EOPNOTSUPP) or a
    seccomp filter (EPERM) failed every bundle save, export and extraction."""
    from dlforge import atomic

    calls = []

    def failing(*args):
        calls.append(args[1])
        ctypes.set_errno(code)
        return -1

    monkeypatch.setattr(atomic, "_renameat2", lambda: failing)
    for name in ("mine", "theirs"):
        (tmp_path / name).mkdir()
    assert atomic.rename_new(tmp_path / "mine", tmp_path / "theirs") is False
    assert atomic.rename_new(tmp_path / "mine", tmp_path / "free") is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["free", "theirs"]
    assert calls == [os.fsencode(tmp_path / "mine")] * 2


def test_check_absent_refuses_anything_at_the_name_as_a_usage_error(tmp_path):
    from dlforge.atomic import check_absent
    from dlforge.errors import ConfigError

    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("dir", "file", "dangling"):
        with pytest.raises(ConfigError) as info:
            check_absent(tmp_path / name, "--out")
        assert str(info.value) == (f"--out: {tmp_path / name} already exists; remove it or "
                                   f"choose another directory")
    assert check_absent(tmp_path / "free", "--out") is None
