"""`dlforge ui`: binds 127.0.0.1 by default, takes the token from the config, checks options."""

from __future__ import annotations

import pytest
import uvicorn

from dlforge.cli import listen, main


def test_defaults_to_loopback_and_takes_the_token_from_set(tmp_path, monkeypatch, served):
    wheres = []
    monkeypatch.setattr(listen, "bind_listeners", lambda where: wheres.append(where) or [])  # 8080 may be in use
    assert main(["-w", str(tmp_path), "ui", "--set", "serve.token=abc"]) == 0
    assert wheres == [listen.Where("127.0.0.1", 8080, "--host", "--port")]
    (run,) = served
    assert (run["config"].host, run["config"].port, run["config"].log_level) == ("127.0.0.1", 8080, "warning")
    assert run["config"].app.state.token == "abc"


def test_bad_log_level_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line in click's error box
    assert main(["-w", str(tmp_path), "ui", "--log-level", "loud"]) == 2
    assert "must be one of critical, error, warning, info, debug (got 'loud')" in capsys.readouterr().err


def test_a_port_in_use_is_one_line_before_the_banner(tmp_path, capsys, monkeypatch):
    """uvicorn printed the banner, then logged the bind error and exited 3 (drift's code)."""
    import socket

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: pytest.fail("started"))
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
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: pytest.fail("started"))
    assert main(["-w", str(tmp_path), "ui", "--host", "nosuch.invalid"]) == 1
    assert capsys.readouterr().err.startswith("error: --host: 'nosuch.invalid' does not resolve (")


def test_the_dashboard_serves_on_the_sockets_it_bound_and_stops_on_ctrl_c(tmp_path):
    """A real uvicorn on the handed-over socket: a page, then SIGINT is exit 0, no traceback."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ui = subprocess.Popen([sys.executable, "-m", "dlforge", "-w", str(tmp_path), "ui", "--port", str(port)],
                          stderr=subprocess.PIPE, text=True)
    try:
        deadline, status = time.monotonic() + 60, None
        while status is None and time.monotonic() < deadline and ui.poll() is None:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status
            except OSError:
                time.sleep(0.1)
        ui.send_signal(signal.SIGINT)
        assert (status, ui.wait(timeout=30)) == (200, 0)
    finally:
        ui.kill()
        ui.wait()
    assert ui.stderr.read() == f"dlforge ui for sqlite:///{tmp_path}/dlforge.db on http://127.0.0.1:{port}\n"
