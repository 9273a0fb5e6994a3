"""`dlforge ui`: binds 127.0.0.1 by default, takes the token from the config, checks options."""

from __future__ import annotations

import pytest
import uvicorn

from dlforge.cli import main, ui_cmds


def test_defaults_to_loopback_and_takes_the_token_from_set(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, token=app.state.token))
    monkeypatch.setattr(ui_cmds, "check_port", lambda host, port: None)  # 8080 may be in use
    assert main(["-w", str(tmp_path), "ui", "--set", "serve.token=abc"]) == 0
    assert seen == {"host": "127.0.0.1", "port": 8080, "log_level": "warning", "token": "abc"}


def test_bad_log_level_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line in click's error box
    assert main(["-w", str(tmp_path), "ui", "--log-level", "loud"]) == 2
    assert "must be one of critical, error, warning, info, debug (got 'loud')" in capsys.readouterr().err


def test_a_port_in_use_is_one_line_before_the_banner(tmp_path, capsys, monkeypatch):
    """uvicorn printed the banner, then logged the bind error and exited 3 (drift's code)."""
    import socket

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("started"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in (["ui"], ["serve"]):
            assert main(["-w", str(tmp_path), *command, "--port", str(port)]) == 1
            assert capsys.readouterr().err == (
                f"error: --port: cannot listen on 127.0.0.1:{port} (Address already in use); "
                f"another server (a dlforge ui or serve?) may hold it: choose another --port\n")


def test_a_host_that_is_not_this_machines_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("started"))
    assert main(["-w", str(tmp_path), "ui", "--host", "nosuch.invalid"]) == 1
    assert capsys.readouterr().err.startswith("error: --host: 'nosuch.invalid' does not resolve (")
