"""A workspace path that cannot be a directory is one config error line (exit 2), not a crash."""

from __future__ import annotations

import pytest

from dlforge.cli import main
from dlforge.errors import ConfigError
from dlforge.workspace import resolve_workspace


def test_a_file_is_refused_and_left_alone(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    with pytest.raises(ConfigError) as err:
        resolve_workspace(file)
    assert str(err.value) == (f"workspace: {str(file)!r} is a file, not a directory; give "
                              "--workspace (or $DLFORGE_WORKSPACE) a directory, or a path where "
                              "one can be made")
    assert file.read_text() == "keep me"


@pytest.mark.parametrize("command", [["models", "list"], ["runs", "list"]])
def test_cli_under_a_file_exits_2_in_one_line(tmp_path, capsys, command):
    (tmp_path / "f").write_text("x")
    below = tmp_path / "f" / "ws"
    assert main(["-w", str(below), *command]) == 2
    assert capsys.readouterr().err == (
        f"error: workspace: {str(below)!r} cannot be created (Not a directory); give "
        "--workspace (or $DLFORGE_WORKSPACE) a directory, or a path where one can be made\n")


def test_env_workspace_that_is_a_file(tmp_path, capsys, monkeypatch):
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("DLFORGE_WORKSPACE", str(tmp_path / "f"))
    assert main(["models", "list"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["name", "under"])
def test_a_name_too_long_exits_2_like_a_path_under_a_file(tmp_path, capsys, where):
    # exited 1 through main()'s OSError line while a path under a file exits 2
    long = "a" * 300
    given = str(tmp_path / long) if where == "name" else str(tmp_path / long / "ws")
    assert main(["-w", given, "models", "list"]) == 2
    assert capsys.readouterr().err == (
        f"error: workspace: {given[:117] + '...'!r} cannot be looked up (File name too long); "
        "give --workspace (or $DLFORGE_WORKSPACE) a directory, or a path where one can be made\n")
    assert list(tmp_path.iterdir()) == []
