"""Ctrl-C in a command that keeps no state to resume, and a path the system refuses: one line each."""

from __future__ import annotations

import os

import pytest

import dlforge.config
from dlforge.cli import main

RERUN = ("error: interrupted: stopped before the command finished; nothing was left half-written "
         "(files appear whole or not at all, the store commits whole changes): run it again\n")


@pytest.mark.parametrize("command", [["config", "check", "x.yaml"], ["data", "inspect", "x.yaml"]])
def test_ctrl_c_without_a_resume_hint_says_to_run_again(monkeypatch, capsys, command):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dlforge.config, "load_config", interrupted)
    assert main(command) == 130
    assert capsys.readouterr().err == RERUN


def test_ctrl_c_with_a_resume_hint_keeps_it(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("run abc stopped; resume it with `dlforge run --resume abc`")

    monkeypatch.setattr(dlforge.config, "load_config", interrupted)
    assert main(["config", "check", "x.yaml"]) == 130
    assert capsys.readouterr().err == \
        "error: interrupted: run abc stopped; resume it with `dlforge run --resume abc`\n"


def test_a_config_path_the_system_refuses_is_a_config_error_like_a_missing_one(tmp_path, capsys):
    # "internal error: OSError: [Errno 36] File name too long: '/.../aaaa...aaa.yaml'", then
    # exit 1 through main()'s OSError line while a missing config file exits 2
    long = tmp_path / ("a" * 5000 + ".yaml")
    assert main(["config", "check", str(long)]) == 2
    assert capsys.readouterr().err == (
        f"error: config file {str(long)[:117] + '...'!r} cannot be read (File name too long); "
        "check the path and its permissions\n")


def test_an_os_error_naming_a_path_no_check_caught_points_to_debug(monkeypatch, capsys):
    # it may be a file dlforge keeps, not one the user named: the line said only to check it
    monkeypatch.setattr(dlforge.config, "load_config", _fails_with(
        PermissionError(13, "Permission denied", "/srv/ws/cache/index.json")))
    assert main(["config", "check", "x.yaml"]) == 1
    assert capsys.readouterr().err == (
        "error: cannot use the path '/srv/ws/cache/index.json': Permission denied; check the "
        "path and its permissions (rerun with --debug for the traceback)\n")


def _fails_with(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc
    return fail


def test_an_os_error_naming_no_path_is_the_internal_error_line(monkeypatch, capsys):
    monkeypatch.setattr(dlforge.config, "load_config",
                        _fails_with(OSError(5, "Input/output error")))
    assert main(["config", "check", "x.yaml"]) == 1
    assert capsys.readouterr().err == (
        "error: internal error: OSError: [Errno 5] Input/output error (rerun with --debug "
        "for the traceback)\n")


@pytest.mark.parametrize(("code", "filename", "line"), [
    # a disk full (`dlforge models list > /dev/full`) was an "internal error" line
    (28, None, "no space left on device (errno 28): free space and run it again"),
    (28, "/srv/ws/runs/abc/model.pt",
     "no space left on device (errno 28): free space and run it again"),
    (122, None, "disk quota exceeded (errno 122): free space or raise the disk quota and run it "
                "again"),
])
def test_a_full_disk_is_said_plainly_with_the_fix(monkeypatch, capsys, code, filename, line):
    monkeypatch.setattr(dlforge.config, "load_config",
                        _fails_with(OSError(code, os.strerror(code), filename)))
    assert main(["config", "check", "x.yaml"]) == 1
    assert capsys.readouterr().err == f"error: {line}\n"


def test_a_broken_pipe_ends_the_command_silently(monkeypatch, capsys):
    # the README promised an "internal error" line; click ends the command quietly, exit 1
    monkeypatch.setattr(dlforge.config, "load_config", _fails_with(BrokenPipeError(32, "Broken pipe")))
    assert main(["config", "check", "x.yaml"]) == 1
    assert capsys.readouterr().err == ""


def test_debug_reraises_an_os_error_naming_no_path(monkeypatch):
    monkeypatch.setattr(dlforge.config, "load_config",
                        _fails_with(ConnectionRefusedError(111, "Connection refused")))
    with pytest.raises(ConnectionRefusedError):
        main(["--debug", "config", "check", "x.yaml"])


@pytest.mark.parametrize("name", ["a" * 300, "missing"])
def test_a_watch_folder_the_system_refuses_exits_2_like_a_missing_one(tmp_path, capsys, name):
    # a name too long exited 1 through main()'s OSError line; a missing folder exits 2
    folder = str(tmp_path / name)
    assert main(["-w", str(tmp_path / "ws"), "update", "m@1", "--watch", folder]) == 2
    why = (f"{folder[:117] + '...'!r} cannot be looked up (File name too long)" if len(name) > 9
           else f"{folder!r} is not a folder")
    assert capsys.readouterr().err == (
        f"error: Invalid value for '--watch': {why} (see 'dlforge update -h')\n")
