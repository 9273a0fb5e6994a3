"""`dlforge ui`: binds 127.0.0.1 by default, takes the token from the config, checks options."""

from __future__ import annotations

import uvicorn

from dlforge.cli import main


def test_defaults_to_loopback_and_takes_the_token_from_set(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, token=app.state.token))
    assert main(["-w", str(tmp_path), "ui", "--set", "serve.token=abc"]) == 0
    assert seen == {"host": "127.0.0.1", "port": 8080, "log_level": "warning", "token": "abc"}


def test_bad_log_level_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line in click's error box
    assert main(["-w", str(tmp_path), "ui", "--log-level", "loud"]) == 2
    assert "must be one of critical, error, warning, info, debug (got 'loud')" in capsys.readouterr().err
